"""Two layers against one at equal training time: deep hybrid models against the hybrid
ClassRBM on Fashion-MNIST with 10% of the labels.

Each model gets the same seconds of training, the same labeled subset, objective, learning
rate and seed; the epoch is picked on 5 000 held-out labeled rows. With a constant learning
rate epochs run until the budget is spent. A decaying one (``--schedule linear``, the default)
must know its epochs beforehand: one timed epoch of each model sets them to what fits the
budget, which still stops a run that goes slower. Writes ``benchmarks/results/deep_hybrid.json``
and ``docs/figures/deep_hybrid.png``.

    python benchmarks/deep_hybrid.py --seconds 200 --jobs 2            # the README's run: 500 / 500,500, 3 seeds
    python benchmarks/deep_hybrid.py --hidden 250 --seconds 40 --seeds 1 --valid 2000   # small budget
"""

from __future__ import annotations

import argparse
import time

import _hybrid
from neuralsmith import plots


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=500, help="units per layer")
    p.add_argument("--seconds", type=float, default=600.0, help="training time of each model")
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--objective", default="semisupervised")
    return _hybrid.parse_common(p)


def main() -> None:
    a = parse()
    models = {"classrbm": [a.hidden], "dhbm": [a.hidden] * 2, "dhda": [a.hidden] * 2}
    start = time.perf_counter()
    epochs = _epochs_in_budget(models, a)
    tasks = [_task(model, sizes, seed, a, epochs[model]) for seed in range(a.seeds)
             for model, sizes in models.items()]
    done = _hybrid.run_all(tasks, a, lambda r: print(
        f"seed {r['seed']} {r['model']:8s} {'-'.join(map(str, r['layers'])):8s} test {r['test_error']:.2f}%"
        f"  {r['epochs']} epochs in {r['train_seconds']:.0f} s"
        + (f"  experts {', '.join(f'{e:.2f}' for e in r['expert_test_errors'])}"
           if "expert_test_errors" in r else ""), flush=True))
    runs = {m: [r for r in done if r["model"] == m] for m in models}
    table = {m: _hybrid.median([r["test_error"] for r in rs]) for m, rs in runs.items()}
    print("median test error:", ", ".join(f"{m} {e:.2f}%" for m, e in table.items()))
    curves = {m: [_hybrid.median(v) for v in zip(*(r["valid_curve"] for r in rs))] for m, rs in runs.items()}
    plots.save(plots.learning_curves(curves, "validation error (%)",
                                     f"{a.fraction:.0%} labels, {a.seconds:.0f} s each (epochs differ)"),
               _hybrid.FIGURES / "deep_hybrid.png")
    _hybrid.write("deep_hybrid", {"args": vars(a), "median_test_error": table, "epochs": epochs,
                                  "runs": runs, "wall_seconds": round(time.perf_counter() - start, 1)})


def _task(model: str, sizes: list[int], seed: int, a: argparse.Namespace, epochs: int) -> dict:
    return dict(model=model, layers=sizes, seed=seed, fraction=a.fraction,
                unlabeled=a.objective == "semisupervised", objective=a.objective, seconds=a.seconds,
                epochs=epochs, alpha=a.alpha, beta=float(a.beta), lr=a.lr, schedule=a.schedule,
                batch_size=a.batch_size, progress=False)


def _epochs_in_budget(models: dict[str, list[int]], a: argparse.Namespace) -> dict[str, int]:
    """Epochs that fit ``a.seconds``: unbounded for a constant rate, else from one timed epoch
    of each model (run as the real runs are, ``a.jobs`` at a time)."""
    if a.schedule == "constant":
        return dict.fromkeys(models, 10**6)
    timed = _hybrid.run_all([_task(m, sizes, 0, a, 1) for m, sizes in models.items()], a, lambda r: None)
    return {r["model"]: max(1, int(a.seconds / max(r["train_seconds"], 0.1))) for r in timed}


if __name__ == "__main__":
    main()
