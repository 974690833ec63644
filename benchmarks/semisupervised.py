"""Semi-supervised against supervised-only, with 1% and 10% of the Fashion-MNIST labels.

For each model (ClassRBM, DHBM, DHDA) and labeled fraction, two runs on the same seeded,
class-stratified labeled subset, the same updates and the same seed: the supervised-only
version (hybrid objective on the labeled rows alone) and the semi-supervised one (the same
plus ``beta`` times the unsupervised term on the other training rows, their labels unused:
``--unsupervised entropy``, the entropy of p(y|x), Grandvalet & Bengio 2005, or
``likelihood``, -log p(x) by CD, Larochelle et al. 2012; Ororbia et al. 2015). Both use
``paired`` batches, so they make the *same* labeled updates and differ only by the unlabeled
term (``--unlabeled-ratio`` unlabeled rows per labeled row). 5 000 labeled rows held out for
validation pick the epoch; given several ``--beta`` values, each model and fraction takes the
one of lowest median validation error. Writes ``benchmarks/results/semisupervised.json``.

    python benchmarks/semisupervised.py --layers 250,250 --beta 0.3,1 --jobs 2   # the README's run
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
    p.add_argument("--unsupervised", default="entropy", help="the unlabeled term: entropy or likelihood")
    p.add_argument("--unlabeled-ratio", type=int, default=1, help="unlabeled rows per labeled row")
    return _hybrid.parse_common(p)


def main() -> None:
    a = parse()
    layers, betas = [int(s) for s in a.layers.split(",")], [float(b) for b in str(a.beta).split(",")]
    ds, tasks = _hybrid.load(0, a.valid), []
    for fraction in map(float, a.fractions.split(",")):
        for seed in range(a.seeds):
            n_labeled = len(data.split_labeled(ds.x_train, ds.y_train, fraction, seed)[0])
            epochs = max(1, round(a.updates * a.batch_size / n_labeled))
            for model in a.models.split(","):
                base = dict(model=model, layers=layers[:1] if model == "classrbm" else layers, seed=seed,
                            fraction=fraction, unlabeled=True, epochs=epochs, alpha=a.alpha, lr=a.lr,
                            schedule=a.schedule, batch_size=a.batch_size, progress=False,
                            unsupervised=a.unsupervised, unlabeled_ratio=a.unlabeled_ratio)
                tasks += [dict(base, objective="hybrid", beta=0.0),
                          *(dict(base, objective="semisupervised", beta=b) for b in betas)]
    start = time.perf_counter()
    done = _hybrid.run_all(tasks, a, lambda r: print(
        f"{r['fraction']:5.0%} seed {r['seed']} {r['model']:8s} {r['objective']:15s} beta {r['beta']:<5g} "
        f"test {r['test_error']:.2f}%  valid {min(r['valid_curve']):.2f}%  ({r['n_labeled']} labels, "
        f"{r['epochs']} epochs, {r['train_seconds']:.0f} s)", flush=True))
    summary = [_summary(done, key) for key in dict.fromkeys((r["fraction"], r["model"]) for r in done)]
    for r in summary:
        print(f"{r['fraction']:5.0%} {r['model']:8s} median test error: supervised-only "
              f"{r['supervised']:.2f}%, semi-supervised {r['semisupervised']:.2f}% (beta {r['beta']:g})")
    _hybrid.write("semisupervised", {"args": vars(a), "median_test_error": summary, "runs": done,
                                     "wall_seconds": round(time.perf_counter() - start, 1)})


def _summary(done: list[dict], key: tuple[float, str]) -> dict:
    """Median test errors of one (fraction, model) over seeds: supervised-only, and
    semi-supervised with the beta of lowest median validation error (test errors per seed)."""
    runs = [r for r in done if (r["fraction"], r["model"]) == key]
    semi = {}
    for r in runs:
        if r["objective"] == "semisupervised":
            semi.setdefault(r["beta"], []).append(r)
    valid = {b: _hybrid.median([min(r["valid_curve"]) for r in rs]) for b, rs in semi.items()}
    beta = min(valid, key=valid.get)
    sup = [r for r in runs if r["objective"] == "hybrid"]
    return {"fraction": key[0], "model": key[1], "beta": beta, "valid_by_beta": valid,
            "supervised": _hybrid.median([r["test_error"] for r in sup]),
            "semisupervised": _hybrid.median([r["test_error"] for r in semi[beta]]),
            "supervised_by_seed": [r["test_error"] for r in sup],
            "semisupervised_by_seed": [r["test_error"] for r in semi[beta]]}


if __name__ == "__main__":
    main()
