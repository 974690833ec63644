"""Running a study: every (depth, start) trial, its seeds batched into one model.

Seeds are derived, not drawn in sequence: seed ``s`` of (depth, start) initializes from
``crc32(root seed, depth, start, s)`` and visits the data in the order of
``crc32(root seed, s)`` (the same order for every start: paired comparisons), both by
:func:`neuralsmith.seeds.derived_generator`. So a trial's
result does not depend on which trials ran before it, and a resumed study ends as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from neuralsmith.data import Dataset
from neuralsmith.ensemble import EnsembleMLP, finetune_ensemble
from neuralsmith.progress import progress_bar
from neuralsmith.seeds import derived_generator
from neuralsmith.study import starts
from neuralsmith.study.spec import StudySpec
from neuralsmith.study.store import TrialStore

log = logging.getLogger(__name__)

AT_CHANCE = 0.9  # a median test error at or above 90% of chance's (81% for 10 classes) is "at chance"


def function_space_inputs(spec: StudySpec, data: Dataset) -> torch.Tensor:
    """The fixed test examples whose outputs place a network in function space."""
    g = derived_generator(spec.seed, "function-space")
    n = min(spec.function_space_examples, data.x_test.shape[0])
    return data.x_test[torch.randperm(data.x_test.shape[0], generator=g)[:n]]


def _gradient_flow(models: list[torch.nn.Module], data: Dataset) -> dict[str, Any]:
    """Per-layer weight-gradient norms (mean over seeds), the median first/last ratio, the commonest verdict."""
    from neuralsmith.diagnostics import gradient_flow

    x, y = data.x_train[:256], data.y_train[:256]
    reports = [gradient_flow(m, x, y) for m in models]
    norms = [[layer.grad_norm for layer in r.layers] for r in reports]
    return {"grad_norm": [statistics.fmean(col) for col in zip(*norms)],
            "ratio": statistics.median(r.ratio for r in reports),
            "verdict": statistics.mode(r.verdict for r in reports)}


SPECTRUM_SAMPLES = 4  # training inputs per seed whose Jacobian spectra are pooled


def _spectrum(models: list[torch.nn.Module], data: Dataset) -> dict[str, Any]:
    """The input-output Jacobian spectrum at initialization, pooled over seeds (exact: small widths).

    Its summary (chi, spread, condition, verdict) and the density of log10 s for the report.
    """
    from neuralsmith.spectrum import Spectrum, jacobian_spectrum

    x = data.x_train[:SPECTRUM_SAMPLES]
    spectra = [jacobian_spectrum(m, x, method="exact") for m in models]
    pooled = Spectrum.from_values(torch.cat([s.values for s in spectra]), torch.cat([s.weights for s in spectra]),
                                  "exact", spectra[0].shape)
    edges, density = pooled.density()
    return {**pooled.summary(), "edges": edges.tolist(), "density": density.tolist()}


def _best_epoch(history: list[dict[str, Any]], member: int) -> dict[str, Any]:
    """The epoch early stopping would keep for ``member``: lowest validation error (else train loss)."""
    key = "valid_error" if not math.isnan(history[0]["valid_error"][member]) else "train_loss"
    return min(history, key=lambda h: h[key][member] if math.isfinite(h[key][member]) else math.inf)


def _best_valid_test_error(history: list[dict[str, Any]], member: int) -> float:
    """Test error of ``member`` at its best-validation epoch (early stopping's choice)."""
    return _best_epoch(history, member)["test_error"][member]


def _selection_score(history: list[dict[str, Any]], seeds: int) -> float:
    """Median over seeds of the validation error at each member's kept epoch (train loss without one).

    This is how a grid point is chosen, as Erhan et al. (2010) chose hyper-parameters on
    validation error: the test set plays no part. A point where most members diverged scores inf.
    """
    key = "valid_error" if not math.isnan(history[0]["valid_error"][0]) else "train_loss"
    finite = [v for v in (_best_epoch(history, s)[key][s] for s in range(seeds)) if math.isfinite(v)]
    return statistics.median(finite) if len(finite) * 2 > seeds else math.inf


def _finetune(spec: StudySpec, models: list[torch.nn.Module], data: Dataset, fs_inputs: torch.Tensor,
              lr: float, device: torch.device) -> tuple[list[dict[str, Any]], list[torch.Tensor], EnsembleMLP]:
    """Fine-tune copies of ``models`` as one batched ensemble at ``lr``: history, snapshots, ensemble."""
    ens = EnsembleMLP.from_models(models).to(device)  # stacks copies: ``models`` stay as they started
    fs_inputs = fs_inputs.to(device)
    snapshots = [torch.softmax(ens(fs_inputs), dim=2).detach().cpu()]
    history = finetune_ensemble(
        ens, data, [derived_generator(spec.seed, s) for s in range(spec.seeds)],
        epochs=spec.epochs, lr=lr, momentum=spec.momentum, batch_size=spec.batch_size,
        precision=spec.precision, progress=False, on_epoch=lambda e: snapshots.append(torch.softmax(e(fs_inputs), dim=2).detach().cpu()))
    return history, snapshots, ens


def _grid_point(spec: StudySpec, lr: float, history: list[dict[str, Any]], chance: float) -> dict[str, Any]:
    """One learning rate's outcome: selection score, median test error, whether it stayed at chance."""
    test = [_best_valid_test_error(history, s) for s in range(spec.seeds)]
    finite = [v for v in test if math.isfinite(v)]
    median = statistics.median(finite) if finite else math.nan
    return {"lr": lr, "selection_score": _selection_score(history, spec.seeds), "median_test_error": median,
            "at_chance": not finite or median >= AT_CHANCE * chance}


def run_trial(spec: StudySpec, depth: int, start: str, data: Dataset, fs_inputs: torch.Tensor,
              device: torch.device = torch.device("cpu")) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Start, fine-tune and measure ``spec.seeds`` networks; return the record and tensors.

    Initializer starts and the measurements run on the CPU; pre-training (``dbn``, ``sda``)
    and the batched fine-tuning run on ``device``. With a learning-rate grid
    (``spec.lr_grid``) the same started networks are fine-tuned once per rate and the rate
    with the lowest median validation error is kept; every point is in the record's ``grid``.
    """
    t0 = time.perf_counter()
    models = starts.build(start, spec, depth, data,
                          [derived_generator(spec.seed, depth, start, s) for s in range(spec.seeds)],
                          device=device)
    flow_init = _gradient_flow(models, data)
    spectrum_init = _spectrum(models, data)
    chance = 100.0 * (1.0 - 1.0 / data.n_classes)
    grid, kept = [], None
    for lr in spec.learning_rates():  # one rate held in memory at a time, besides the best so far
        run = _finetune(spec, models, data, fs_inputs, lr, device)
        grid.append(_grid_point(spec, lr, run[0], chance))
        if kept is None or grid[-1]["selection_score"] < kept[0]:  # ties: the first in the grid
            kept = (grid[-1]["selection_score"], lr, run)
    _, chosen, (history, snapshots, ens) = kept
    trained = ens.to_models()
    record = {
        "depth": depth, "start": start, "seeds": spec.seeds, "lr": chosen, "grid": grid,
        "test_error": [_best_valid_test_error(history, s) for s in range(spec.seeds)],
        "final_test_error": history[-1]["test_error"],
        "diverged": [not math.isfinite(v) for v in history[-1]["train_loss"]],
        "curves": {k: [h[k] for h in history] for k in ("train_loss", "valid_error", "test_error")},
        "gradient_flow_init": flow_init,
        "spectrum_init": spectrum_init,
        "gradient_flow_trained": _gradient_flow(trained, data),
        "seconds": time.perf_counter() - t0,
    }
    tensors = {"function_space": torch.stack(snapshots).flatten(2).half(),  # (epochs+1, S, n*C)
               "first_layer": trained[0][0].weight.detach()}
    return record, tensors


@dataclass
class Study:
    """One study's trials: its spec, its data set, where finished trials go, which failed.

    Attributes:
        label: prefix naming the study's trials in progress and logs (a suite's data set).
        failed: ``{"depth", "start", "error"}`` of each trial that failed on a cluster.
    """

    spec: StudySpec
    data: Dataset
    store: TrialStore
    label: str = ""
    failed: list[dict[str, Any]] = field(default_factory=list)

    def trials(self) -> list[tuple[int, str]]:
        """Every (depth, start) of the spec, in report order."""
        return [(d, s) for d in self.spec.depths for s in self.spec.starts]

    def todo(self) -> list[tuple[int, str]]:
        """The trials not yet on disk."""
        return [(d, s) for d, s in self.trials() if not self.store.done(d, s)]

    def records(self) -> list[dict[str, Any]]:
        """The finished trials' records, in report order."""
        return [self.store.load(d, s)[0] for d, s in self.trials() if self.store.done(d, s)]

    @staticmethod
    def median_error(record: dict[str, Any]) -> float:
        return statistics.median(record["test_error"])


def run_studies(studies: list[Study], *, progress: bool = True, device: torch.device = torch.device("cpu"),
                client: Any = None) -> None:
    """Run every unfinished trial of ``studies``, one progress bar over all of them.

    Serially (``client=None``) trials run here one after another; with a
    ``distributed.Client`` they run as tasks on its workers
    (:func:`neuralsmith.study.cluster.run_on_cluster`) and failures land in ``Study.failed``.
    Either way this process alone writes each finished trial, as it ends.
    """
    total = sum(len(s.trials()) for s in studies)
    todo = sum(len(s.todo()) for s in studies)
    with progress_bar("study", total=total, completed=total - todo, enabled=progress) as bar:
        if client is not None:
            from neuralsmith.study.cluster import run_on_cluster

            run_on_cluster(client, studies, bar, device=str(device))
            return
        for study in studies:
            fs_inputs = function_space_inputs(study.spec, study.data)
            for depth, start in study.todo():
                bar.describe(f"study: {study.label}depth {depth}, {start}")
                record, tensors = run_trial(study.spec, depth, start, study.data, fs_inputs, device)
                study.store.save(record, tensors)
                bar.advance({"median_test_error": study.median_error(record)})


def run_study(spec: StudySpec, data: Dataset, out: str | Path, *, progress: bool = True,
              device: torch.device = torch.device("cpu"), client: Any = None) -> Study:
    """Run every trial not yet finished in ``out/trials``; return the study (records, failures).

    The caller has opened ``out`` by the run-folder policy (:func:`neuralsmith.study.run`), so
    finished trials there belong to this very spec.

    Args:
        spec: what to run.
        data: the data set (with its validation split).
        out: the run folder; trials go to ``out/trials``.
        device: where pre-training and the batched fine-tuning run.
        client: a ``distributed.Client`` to run the trials on its workers (None: here).
    """
    study = Study(spec, data, TrialStore(out))
    run_studies([study], progress=progress, device=device, client=client)
    return study
