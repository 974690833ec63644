"""Semi-supervised against supervised-only, with 1% and 10% of the Fashion-MNIST labels.

For each model (ClassRBM, DHBM, DHDA) and labeled fraction, two runs on the same seeded,
class-stratified labeled subset, the same updates and the same seed: the supervised-only
version (hybrid objective on the labeled rows alone) and the semi-supervised one (the same
plus ``beta`` times the unsupervised term on the other training rows, their labels
unused; Larochelle et al. 2012; Ororbia et al. 2015). Both use ``paired`` batches, so they
make the *same* labeled updates and differ only by the unlabeled term. 5 000 labeled rows held
out for validation pick the epoch. Writes ``benchmarks/results/semisupervised.json``.

    python benchmarks/semisupervised.py                                     # full: 500,500 / 500, 10000 updates, 3 seeds
    python benchmarks/semisupervised.py --layers 250,250 --updates 1200 --seeds 1 --valid 2000   # small budget
"""

from __future__ import annotations

import argparse
import time

import torch

import _hybrid
from neuralsmith import data


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fractions", default="0.01,0.1")
    p.add_argument("--models", default="classrbm,dhbm,dhda")
    p.add_argument("--layers", default="500,500", help="deep models; the ClassRBM takes the first size")
    p.add_argument("--updates", type=int, default=10000, help="labeled mini-batches per run")
    return _hybrid.parse_common(p)


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    ds = _hybrid.load(0, a.valid)
    layers = [int(s) for s in a.layers.split(",")]
    rows, start = [], time.perf_counter()
    for fraction in map(float, a.fractions.split(",")):
        for seed in range(a.seeds):
            xl, yl, xu = data.split_labeled(ds.x_train, ds.y_train, fraction, seed)
            epochs = max(1, round(a.updates * a.batch_size / len(xl)))
            for model in a.models.split(","):
                sizes = layers[:1] if model == "classrbm" else layers
                pair = {obj: _hybrid.run(model, sizes, ds, xl, yl, xu, seed, objective=obj,
                                         epochs=epochs, alpha=a.alpha, beta=a.beta, lr=a.lr,
                                         batch_size=a.batch_size, progress=False)
                        for obj in ("hybrid", "semisupervised")}
                rows.append({"fraction": fraction, "seed": seed, "model": model, "n_labeled": len(xl),
                             "epochs": epochs, "supervised": pair["hybrid"], "semisupervised": pair["semisupervised"]})
                print(f"{fraction:5.0%} seed {seed} {model:8s} supervised-only "
                      f"{pair['hybrid']['test_error']:.2f}%  semi-supervised "
                      f"{pair['semisupervised']['test_error']:.2f}%  ({len(xl)} labels, {epochs} epochs, "
                      f"{pair['hybrid']['train_seconds'] + pair['semisupervised']['train_seconds']:.0f} s)", flush=True)
    _hybrid.write("semisupervised", {"args": vars(a), "rows": rows,
                                     "wall_seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()
