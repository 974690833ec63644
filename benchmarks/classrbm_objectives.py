"""Generative, discriminative and hybrid ClassRBMs of one size and budget on Fashion-MNIST.

Larochelle, Mandel, Pascanu & Bengio (2012), table 1 on MNIST: generative 3.39%,
discriminative 1.81%, hybrid 1.28% test error. Here: Fashion-MNIST, 5 000 training rows held
out for validation (they pick each run's epoch), the same hidden size, epochs, learning rate
(decaying linearly to 0 by default, ``--schedule``) and seeds for each objective; the median
test error over seeds. Given several ``--alpha`` values, the hybrid's alpha is the one with
the lowest median *validation* error (the hybrid row reports its test errors; every alpha's
runs are in the JSON), as Larochelle et al. chose their hyper-parameters. Prints a table,
writes ``benchmarks/results/classrbm_objectives.json``
and ``docs/figures/classrbm_objectives.png``.

    python benchmarks/classrbm_objectives.py --hidden 500 --alpha 0.003,0.01 --jobs 2   # the README's run
    python benchmarks/classrbm_objectives.py --subset 10000 --hidden 500 --epochs 5     # what fits a small budget
"""

from __future__ import annotations

import argparse
import time

import _hybrid
from neuralsmith import plots

OBJECTIVES = ("generative", "discriminative", "hybrid")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=1500)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--alpha", default="0.01", help="hybrid weight(s) of the generative term, comma-separated")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--schedule", default="linear", help="learning rate over the epochs: constant, linear, cosine")
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--subset", type=int, default=0, help="training rows used (0: all 55 000)")
    p.add_argument("--valid", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process")
    p.add_argument("--progress", action="store_true")
    return p.parse_args()


def main() -> None:
    a = parse()
    alphas = [float(x) for x in a.alpha.split(",")]
    tasks = [dict(model="classrbm", layers=[a.hidden], seed=seed, fraction=None, unlabeled=False,
                  objective=name, alpha=alpha, epochs=a.epochs, lr=a.lr, schedule=a.schedule,
                  batch_size=a.batch_size, progress=a.progress)
             for seed in range(a.seeds) for name, alpha in _variants(alphas)]
    start = time.perf_counter()
    done = _hybrid.run_all(tasks, a, lambda r: print(
        f"seed {r['seed']} {r['objective']:15s} alpha {r['alpha']:<6g} test {r['test_error']:.2f}%  "
        f"valid {min(r['valid_curve']):.2f}%  best epoch {r['best_epoch']}  {r['train_seconds']:.0f} s",
        flush=True))
    by_alpha = {alpha: [r for r in done if r["objective"] == "hybrid" and r["alpha"] == alpha] for alpha in alphas}
    valid = {alpha: _hybrid.median([min(r["valid_curve"]) for r in rs]) for alpha, rs in by_alpha.items()}
    chosen = min(alphas, key=valid.get)
    results = {name: [r for r in done if r["objective"] == name] for name in OBJECTIVES[:2]}
    results["hybrid"] = by_alpha[chosen]
    table = {name: _row(rs) for name, rs in results.items()}
    table["hybrid"]["alpha"] = chosen
    print(f"hybrid alpha {chosen} (median validation error by alpha: "
          f"{', '.join(f'{k:g}: {v:.2f}%' for k, v in valid.items())})")
    for name, row in table.items():
        print(f"{name:15s} median test error {row['median_test_error']:.2f}%  "
              f"({', '.join(f'{e:.2f}' for e in row['test_errors'])})")
    _figure(results, a, chosen)
    _hybrid.write("classrbm_objectives", {
        "args": vars(a), "n_train": done[0]["n_labeled"], "table": table,
        "hybrid_valid_error_by_alpha": {str(k): v for k, v in valid.items()},
        "runs": results, "other_alpha_runs": [r for alpha, rs in by_alpha.items() if alpha != chosen for r in rs],
        "wall_seconds": round(time.perf_counter() - start, 1)})


def _variants(alphas: list[float]) -> list[tuple[str, float]]:
    """(objective, alpha) runs of one seed, slowest first so the processes finish together."""
    return [*(("hybrid", alpha) for alpha in alphas), ("generative", 0.0), ("discriminative", 0.0)]


def _row(runs: list[dict]) -> dict:
    return {"test_errors": [r["test_error"] for r in runs],
            "median_test_error": _hybrid.median([r["test_error"] for r in runs]),
            "median_valid_error": _hybrid.median([min(r["valid_curve"]) for r in runs]),
            "median_train_seconds": _hybrid.median([r["train_seconds"] for r in runs])}


def _figure(results: dict, a, alpha: float) -> None:
    curves = {f"{name} (valid)": [_hybrid.median(v) for v in zip(*(r["valid_curve"] for r in rs))]
              for name, rs in results.items()}
    title = f"ClassRBM on Fashion-MNIST, {a.hidden} hidden, hybrid alpha={alpha:g}: median of {a.seeds} seeds"
    _hybrid.FIGURES.mkdir(parents=True, exist_ok=True)
    plots.save(plots.learning_curves(curves, "validation error (%)", title),
               _hybrid.FIGURES / "classrbm_objectives.png")


if __name__ == "__main__":
    main()
