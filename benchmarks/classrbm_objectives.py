"""Generative, discriminative and hybrid ClassRBMs of one size and budget on Fashion-MNIST.

Larochelle, Mandel, Pascanu & Bengio (2012), table 1 on MNIST: generative 3.39%,
discriminative 1.81%, hybrid 1.28% test error. Here: Fashion-MNIST, 5 000 training rows held
out for validation (they pick each run's epoch), the same hidden size, epochs, learning rate
and seeds for each objective; the median test error over seeds. Prints a table, writes
``benchmarks/results/classrbm_objectives.json`` and ``docs/figures/classrbm_objectives.png``.

    python benchmarks/classrbm_objectives.py                       # full: 55k rows, 1500 hidden, 30 epochs, 3 seeds
    python benchmarks/classrbm_objectives.py --subset 10000 --hidden 500 --epochs 5   # what fits a small budget
"""

from __future__ import annotations

import argparse
import time

import torch

import _hybrid
from neuralsmith import plots

OBJECTIVES = ("generative", "discriminative", "hybrid")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=1500)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--subset", type=int, default=0, help="training rows used (0: all 55 000)")
    p.add_argument("--valid", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--progress", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = _hybrid.load(a.subset, a.valid)
    results: dict[str, list[dict]] = {name: [] for name in OBJECTIVES}
    start = time.perf_counter()
    for seed in range(a.seeds):
        for name in OBJECTIVES:
            r = _hybrid.run("classrbm", [a.hidden], ds, ds.x_train, ds.y_train, None, seed,
                            objective=name, alpha=a.alpha, epochs=a.epochs, lr=a.lr,
                            batch_size=a.batch_size, progress=a.progress)
            results[name].append(r)
            print(f"seed {seed} {name:15s} test {r['test_error']:.2f}%  best epoch {r['best_epoch']}"
                  f"  {r['train_seconds']:.0f} s", flush=True)
    table = {name: {"test_errors": [r["test_error"] for r in rs],
                    "median_test_error": _hybrid.median([r["test_error"] for r in rs]),
                    "median_train_seconds": _hybrid.median([r["train_seconds"] for r in rs])}
             for name, rs in results.items()}
    for name, row in table.items():
        print(f"{name:15s} median test error {row['median_test_error']:.2f}%  "
              f"({', '.join(f'{e:.2f}' for e in row['test_errors'])})")
    _figure(results, a)
    _hybrid.write("classrbm_objectives", {"args": vars(a), "n_train": len(ds.x_train), "table": table,
                                          "runs": results, "wall_seconds": round(time.perf_counter() - start, 1)})


def _figure(results: dict, a) -> None:
    curves = {f"{name} (valid)": [_hybrid.median(v) for v in zip(*(r["valid_curve"] for r in rs))]
              for name, rs in results.items()}
    title = f"ClassRBM on Fashion-MNIST, {a.hidden} hidden, alpha={a.alpha}: median of {a.seeds} seeds"
    _hybrid.FIGURES.mkdir(parents=True, exist_ok=True)
    plots.save(plots.learning_curves(curves, "validation error (%)", title),
               _hybrid.FIGURES / "classrbm_objectives.png")


if __name__ == "__main__":
    main()
