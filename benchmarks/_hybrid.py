"""Shared by the hybrid-model benchmarks: data, one training run, a time budget, summaries.

Benchmark-only helper: every run goes through the public API (``train_classrbm``,
``train_hybrid``), selects the epoch on the same validation rows, and reports the test error
of the kept parameters in percent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from neuralsmith import data, hybrid
from neuralsmith.rbm import ClassRBM, train_classrbm
from neuralsmith.rbm.classrbm import class_scores

RESULTS = Path(__file__).parent / "results"
FIGURES = Path(__file__).parent.parent / "docs" / "figures"


def load(subset: int, valid: int, seed: int = 0):
    """Fashion-MNIST with ``valid`` training rows held out; the first ``subset`` others (0: all)."""
    ds = data.load("fashion-mnist", validation=valid / 60000, seed=seed)
    if subset:
        ds = replace(ds, x_train=ds.x_train[:subset], y_train=ds.y_train[:subset])
    return ds


def parse_common(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options the deep-hybrid and semi-supervised benchmarks share, then parse."""
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--beta", default="0.1", help="weight of the unsupervised term (semisupervised.py: "
                   "a comma list, picked by validation error)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--schedule", default="linear", help="learning rate over the epochs: constant, linear, cosine")
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--valid", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each in its own process")
    return p.parse_args()


class Budget:
    """Callback: stop once the epochs' training seconds reach ``seconds`` (None: never)."""

    def __init__(self, seconds: float | None):
        self.seconds, self.used = seconds, 0.0

    def __call__(self, row: dict) -> bool:
        self.used += row["seconds"]
        return self.seconds is not None and self.used >= self.seconds


def run(model_kind: str, layers: list[int], ds, xl, yl, xu, seed: int, *, objective: str,
        seconds: float | None = None, **kw) -> dict:
    """Train one model; return test error (%), kept epoch, training seconds and the curves."""
    g = torch.Generator().manual_seed(seed)
    if model_kind == "classrbm":
        model = ClassRBM.from_data(xl, yl, layers[0], n_classes=ds.n_classes, generator=g)
        fit = train_classrbm
    else:
        model = hybrid.build(model_kind, [ds.n_features, *layers], ds.n_classes, generator=g)
        model.init_biases_(xl, yl)
        fit = hybrid.train_hybrid
    budget = Budget(seconds)
    start = time.perf_counter()
    hist = fit(model, xl, yl, objective=objective, x_unlabeled=xu, x_valid=ds.x_valid,
               y_valid=ds.y_valid, generator=g, callbacks=[budget], **kw)
    wall = time.perf_counter() - start
    _, test_error = class_scores(model, ds.x_test, ds.y_test)
    out = {"test_error": test_error, "best_epoch": hist.best_epoch, "epochs": len(hist),
           "train_seconds": round(budget.used, 1), "wall_seconds": round(wall, 1),
           "valid_curve": hist.column("valid_error"), "train_curve": hist.column("train_error")}
    if isinstance(model, hybrid.DeepHybrid):
        wrong = model.expert_log_probs(ds.x_test).argmax(-1) != ds.y_test
        out["expert_test_errors"] = (100.0 * wrong.float().mean(1)).tolist()
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def write(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# --- many runs, several processes at a time -------------------------------------------------

_DATA = None  # each worker's copy of the data set


def _load_worker(subset: int, valid: int, threads: int) -> None:
    global _DATA
    torch.set_num_threads(threads)
    _DATA = load(subset, valid)


def _task(task: dict) -> dict:
    """One run described by ``task``: model, layers, seed, objective, the labeled ``fraction``
    (None: every training label) and whether the other rows go in unlabeled, then ``run``'s
    keywords."""
    t = dict(task)
    model, layers, seed, fraction = t.pop("model"), t.pop("layers"), t.pop("seed"), t.pop("fraction")
    unlabeled = t.pop("unlabeled")
    ds = _DATA
    if fraction is None:
        xl, yl, xu = ds.x_train, ds.y_train, None
    else:
        xl, yl, xu = data.split_labeled(ds.x_train, ds.y_train, fraction, seed)
    return {**task, "n_labeled": len(xl),
            **run(model, layers, ds, xl, yl, xu if unlabeled else None, seed, **t)}


def run_all(tasks: list[dict], a: argparse.Namespace, report) -> list[dict]:
    """Run every task (see ``_task``), ``a.jobs`` processes at a time with ``a.threads``
    threads each; call ``report(result)`` as each finishes; return the results in task order."""
    init = (getattr(a, "subset", 0), a.valid, a.threads)
    if a.jobs <= 1:
        _load_worker(*init)
        results = []
        for t in tasks:
            results.append(_task(t))
            report(results[-1])
        return results
    with ProcessPoolExecutor(a.jobs, initializer=_load_worker, initargs=init) as pool:
        futures = [pool.submit(_task, t) for t in tasks]
        for f in futures:
            report(f.result())  # in task order; later ones may already be done
        return [f.result() for f in futures]
