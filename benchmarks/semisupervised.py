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
    layers = [int(s) for s in a.layers.split(",")]
    ds, tasks = _hybrid.load(0, a.valid), []
    for fraction in map(float, a.fractions.split(",")):
        for seed in range(a.seeds):
            n_labeled = len(data.split_labeled(ds.x_train, ds.y_train, fraction, seed)[0])
            epochs = max(1, round(a.updates * a.batch_size / n_labeled))
            for model in a.models.split(","):
                for objective in ("hybrid", "semisupervised"):
                    tasks.append(dict(model=model, layers=layers[:1] if model == "classrbm" else layers,
                                      seed=seed, fraction=fraction, unlabeled=True, objective=objective,
                                      epochs=epochs, alpha=a.alpha, beta=a.beta, lr=a.lr,
                                      schedule=a.schedule, batch_size=a.batch_size, progress=False))
    start = time.perf_counter()
    done = _hybrid.run_all(tasks, a, lambda r: print(
        f"{r['fraction']:5.0%} seed {r['seed']} {r['model']:8s} {r['objective']:15s} test "
        f"{r['test_error']:.2f}%  valid {min(r['valid_curve']):.2f}%  ({r['n_labeled']} labels, "
        f"{r['epochs']} epochs, {r['train_seconds']:.0f} s)", flush=True))
    rows = [{"fraction": sup["fraction"], "seed": sup["seed"], "model": sup["model"],
             "n_labeled": sup["n_labeled"], "epochs": sup["epochs"], "supervised": sup, "semisupervised": semi}
            for sup, semi in zip(done[::2], done[1::2])]
    summary = _summary(rows)
    for (fraction, model), r in summary.items():
        print(f"{fraction:5.0%} {model:8s} median test error: supervised-only {r['supervised']:.2f}%, "
              f"semi-supervised {r['semisupervised']:.2f}%")
    _hybrid.write("semisupervised", {"args": vars(a), "median_test_error": [
        {"fraction": f, "model": m, **r} for (f, m), r in summary.items()], "rows": rows,
        "wall_seconds": round(time.perf_counter() - start, 1)})


def _summary(rows: list[dict]) -> dict[tuple[float, str], dict[str, float]]:
    """Median test error of each (fraction, model) pair of runs over seeds."""
    keys = dict.fromkeys((r["fraction"], r["model"]) for r in rows)
    return {k: {side: _hybrid.median([r[side]["test_error"] for r in rows if (r["fraction"], r["model"]) == k])
                for side in ("supervised", "semisupervised")} for k in keys}


if __name__ == "__main__":
    main()
