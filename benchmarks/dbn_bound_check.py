"""Does a DBN's likelihood bound rest on a converged log Z? Its top RBM annealed with 10x more temperatures.

    python benchmarks/dbn_bound_check.py        # about 1 minute on 2 cores

``benchmarks/dbm_fashion.py`` finds the bound of a 784-250-250 DBN about 90 nats above the
likelihood of its own first layer. The bound's one estimated term is the top RBM's log Z (AIS);
this trains the same DBN (same subset, seed and budget), anneals its top RBM with 5 000 and
50 000 temperatures, and prints log Z and the bound on 2 000 test images for each, then the
first layer's own log-likelihood (as an RBM, AIS with 5 000).
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import dbm_fashion  # noqa: E402

from neuralsmith import data  # noqa: E402
from neuralsmith.rbm.partition import ais_log_partition, default_betas, log_likelihood  # noqa: E402


def main() -> None:
    torch.set_num_threads(2)
    full = data.load("fashion-mnist", binarize="threshold")
    ds = data.split_validation(replace(full, x_train=full.x_train[:10000], y_train=full.y_train[:10000]), 0.1, 0)
    budget = types.SimpleNamespace(arch=[250, 250], pretrain_epochs=5, joint_epochs=5, progress=False)
    dbm_fashion.ARCH[:] = budget.arch
    dbn, _ = dbm_fashion.pretrain("dbn", ds.x_train, budget, 0)
    x_test = ds.x_test[:2000]
    for steps in (5000, 50000):
        t = time.perf_counter()
        est = ais_log_partition(dbn.rbms[1], n_runs=100, betas=default_betas(steps),
                                data=dbn.rbms[0].hidden_probs(ds.x_train), generator=torch.Generator().manual_seed(1))
        bound = dbm_fashion.dbn_bound(dbn, x_test, est.log_z, 10, torch.Generator().manual_seed(2))
        print(f"top RBM, {steps} temperatures: log Z {est.log_z:.3f} (3 sigma {est.bounds[0]:.2f} to "
              f"{est.bounds[1]:.2f}); DBN bound {bound:.2f} nats ({time.perf_counter() - t:.0f} s)")
    est = ais_log_partition(dbn.rbms[0], n_runs=100, betas=default_betas(5000), data=ds.x_train,
                            generator=torch.Generator().manual_seed(1))
    print(f"first layer as an RBM: log Z {est.log_z:.2f}, log-likelihood "
          f"{log_likelihood(dbn.rbms[0], x_test, est.log_z):.2f} nats")


if __name__ == "__main__":
    main()
