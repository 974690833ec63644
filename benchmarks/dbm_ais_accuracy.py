"""DBM AIS against the exact log Z on a real-data DBM small enough to enumerate (784-20-20).

    python benchmarks/dbm_ais_accuracy.py        # a few minutes on one core

A 784-20-20 DBM is trained on 5 000 binarized Fashion-MNIST images (3 greedy + 3 joint
epochs); its exact log Z enumerates the 2^20 states of h1 (v and h2 summed out,
:func:`neuralsmith.rbm.dbm.exact_log_partition`); AIS (100 runs, base rates of the training
images) is run with several seeds and temperature counts. Writes
``benchmarks/results/dbm_ais_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from neuralsmith import data
from neuralsmith.rbm import dbm_ais
from neuralsmith.rbm.dbm import DBM, exact_log_partition
from neuralsmith.rbm.dbm_learning import Settings, train
from neuralsmith.rbm.partition import default_betas


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="1000,5000,20000")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dbm_ais_accuracy.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    x = data.load("fashion-mnist", binarize="threshold").x_train[:5000]
    g = torch.Generator().manual_seed(0)
    dbm = DBM([784, 20, 20], generator=g)
    train(dbm, x, Settings(pretrain_epochs=3, epochs=3), generator=g, progress=False)
    t = time.perf_counter()
    exact = exact_log_partition(dbm)
    out = {"sizes": dbm.sizes, "n_train": len(x), "exact_log_z": exact,
           "exact_seconds": round(time.perf_counter() - t, 1), "ais_runs": 100, "ais": []}
    print(f"exact log Z {exact:.3f} ({out['exact_seconds']} s)", flush=True)
    for steps in (int(s) for s in a.steps.split(",")):
        for seed in range(1, a.seeds + 1):
            t = time.perf_counter()
            est = dbm_ais.ais_log_partition(dbm, n_runs=100, betas=default_betas(steps), data=x,
                                            generator=torch.Generator().manual_seed(seed))
            out["ais"].append({"steps": steps, "seed": seed, "log_z": est.log_z, "minus_exact": est.log_z - exact,
                               "std": est.std, "exact_inside_3_sigma": est.lower <= exact <= est.upper,
                               "seconds": round(time.perf_counter() - t, 1)})
            r = out["ais"][-1]
            print(f"{steps:6d} temperatures, seed {seed}: {est.log_z:.3f} ({r['minus_exact']:+.3f}) ± {est.std:.3f}, "
                  f"inside 3 sigma {r['exact_inside_3_sigma']}, {r['seconds']} s", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
