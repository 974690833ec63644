"""Single-stage hybrid classifiers trained into a run folder: a ClassRBM, a DHBM or a DHDA.

The ``neuralsmith classrbm`` and ``neuralsmith hybrid`` commands are thin layers over
:func:`run`. The run folder (:class:`neuralsmith.runfolder.RunFolder`) holds ``config.toml``,
``metrics.csv`` (per epoch), ``results.json`` (``test_error`` in percent, like every
classifier run), ``checkpoints/`` (``last``: the training state a killed run resumes from;
``best``: the best-validation parameters; ``model``: the kept model) and
``figures/learning_curves.png`` and ``figures/filters.png``.

With ``labeled < 1`` only a seeded, class-stratified fraction of the training labels is kept
(:func:`neuralsmith.data.labeled_subset`); the supervised objectives ignore the other rows, the
semi-supervised one uses them without labels. The validation split is carved from the training
set first and keeps its labels (it selects the epoch).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from neuralsmith import data as data_api
from neuralsmith import hybrid, plots
from neuralsmith.device import resolve_device
from neuralsmith.rbm import classrbm
from neuralsmith.rbm.classrbm import ClassRBM, ClassSettings, class_scores, train_classrbm
from neuralsmith.runfolder import RunFolder

MODELS = ("classrbm", *hybrid.KINDS)


@dataclass(frozen=True)
class HybridRunConfig:
    """The resolved settings of one run (written to ``config.toml``); checked on creation."""

    model: str = "classrbm"
    data: str = "digits"
    layers: tuple[int, ...] = (500,)
    objective: str = "hybrid"
    alpha: float = 0.01
    beta: float = 0.1
    supervised: str = "hybrid"
    unsupervised: str = "likelihood"
    labeled: float = 1.0
    validation: float = 0.1
    epochs: int = 10
    lr: float = 0.05
    schedule: str = "constant"
    batch_size: int = 20
    k: int = 1
    method: str = "cd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    batching: str = "paired"
    unlabeled_ratio: int = 1
    patience: int = 0
    corruption: float = 0.2
    top_down: bool = True
    combine: str = "mean"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}; got {self.model!r}")
        if not self.layers or min(self.layers) < 1:
            raise ValueError(f"layers must be hidden sizes >= 1, e.g. 500,500; got {list(self.layers)}")
        if self.model == "classrbm" and len(self.layers) != 1:
            raise ValueError(f"a ClassRBM has one hidden layer; got {list(self.layers)}")
        if not 0.0 < self.labeled <= 1.0:
            raise ValueError(f"labeled must be a fraction in (0, 1] (e.g. 0.1); got {self.labeled}")
        if not 0.0 <= self.validation < 1.0:
            raise ValueError(f"validation must be a fraction in [0, 1); got {self.validation}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0 epochs (0: no early stopping); got {self.patience}")
        if self.model != "classrbm" and self.method != "cd":
            raise ValueError(f"deep hybrid models learn by CD; got method={self.method!r}")
        self.settings()  # every training setting checked before anything is written

    def settings(self) -> ClassSettings:
        return ClassSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, k=self.k,
                             method=self.method, momentum=self.momentum,
                             weight_decay=self.weight_decay, schedule=self.schedule,
                             objective=self.objective,
                             alpha=self.alpha, beta=self.beta, supervised=self.supervised,
                             unsupervised=self.unsupervised,
                             batching=self.batching, unlabeled_ratio=self.unlabeled_ratio)


def load_split(config: HybridRunConfig):
    """The data set and its labeled rows, unlabeled rows (None if all are labeled)."""
    ds = data_api.load(config.data, validation=config.validation, seed=config.seed)
    if config.labeled >= 1.0:
        return ds, ds.x_train, ds.y_train, None
    xl, yl, xu = data_api.split_labeled(ds.x_train, ds.y_train, config.labeled, config.seed)
    return ds, xl, yl, xu


def build_model(config: HybridRunConfig, xl: torch.Tensor, yl: torch.Tensor, n_classes: int,
                generator: torch.Generator) -> torch.nn.Module:
    """The untrained model, biases set from the labeled rows."""
    if config.model == "classrbm":
        return ClassRBM.from_data(xl, yl, config.layers[0], n_classes=n_classes, generator=generator)
    extra = {"level": config.corruption} if config.model == "dhda" else {}
    model = hybrid.build(config.model, [xl.shape[1], *config.layers], n_classes,
                         top_down=config.top_down, combine=config.combine, generator=generator,
                         device=xl.device, **extra)
    return model.init_biases_(xl, yl)


def run(out: str | os.PathLike, config: HybridRunConfig, *, resume: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Train the model ``config`` describes into run folder ``out``; return the results.

    Without ``resume`` an earlier run's checkpoints and metrics in ``out`` are cleared first.
    """
    device = resolve_device(config.device)
    ds, xl, yl, xu = load_split(config)
    folder = RunFolder(out)
    if not resume:
        folder.clear_training_state()
    folder.write_config(asdict(config))
    g = torch.Generator(device=device).manual_seed(config.seed)
    xl, yl = xl.to(device), yl.to(device)
    model = build_model(config, xl, yl, ds.n_classes, g)
    start = time.perf_counter()
    history = _train(model, config, xl, yl, xu, ds, folder, g, device, progress)
    results = _results(model, config, history, ds, xl, xu, device, time.perf_counter() - start)
    folder.write_metrics([{k: "" if v is None else v for k, v in r.items()} for r in history.rows])
    _save_model(model, folder, ds)
    _figures(model, history, folder, ds.image_shape)
    folder.write_results(results, seed=config.seed)
    return results


def _train(model, config: HybridRunConfig, xl, yl, xu, ds, folder: RunFolder, g, device,
           progress: bool) -> classrbm.ClassHistory:
    kw = dict(epochs=config.epochs, objective=config.objective, alpha=config.alpha,
              beta=config.beta, unsupervised=config.unsupervised,
              x_unlabeled=None if xu is None else xu.to(device),
              batching=config.batching, unlabeled_ratio=config.unlabeled_ratio,
              batch_size=config.batch_size, lr=config.lr, k=config.k,
              momentum=config.momentum, weight_decay=config.weight_decay, schedule=config.schedule,
              x_valid=ds.x_valid.to(device) if len(ds.x_valid) else None,
              y_valid=ds.y_valid.to(device) if len(ds.x_valid) else None,
              patience=config.patience or None, generator=g, checkpoint_dir=folder.checkpoints,
              progress=progress, callbacks=[lambda row: folder.log_metrics(
                  {k: "" if v is None else v for k, v in row.items()})])
    if config.model == "classrbm":
        return train_classrbm(model, xl, yl, supervised=config.supervised, method=config.method, **kw)
    return hybrid.train_hybrid(model, xl, yl, **kw)


def _results(model, config: HybridRunConfig, history, ds, xl, xu, device,
             seconds: float) -> dict[str, Any]:
    x_test, y_test = ds.x_test.to(device), ds.y_test.to(device)
    test_nll, test_error = class_scores(model, x_test, y_test)
    results = {"test_error": test_error, "test_nll": test_nll,
               "valid_error": history.best_valid_error, "best_epoch": history.best_epoch,
               "epochs": len(history), "diverged": history.diverged,
               "stopped_early": history.stopped_early, "seconds": round(seconds, 3),
               "n_labeled": len(xl), "n_unlabeled": 0 if xu is None else len(xu),
               "objective": config.objective, "weights": list(config.settings().weights()),
               "device": str(device), "data": ds.info(), "model": model.config()}
    if isinstance(model, hybrid.DeepHybrid):
        wrong = model.expert_log_probs(x_test).argmax(-1) != y_test  # (L, n_test)
        results["expert_test_errors"] = (100.0 * wrong.float().mean(1)).tolist()
    return results


def _save_model(model, folder: RunFolder, ds) -> None:
    meta = {"data": ds.info()}
    if isinstance(model, ClassRBM):
        classrbm.save(model, folder.checkpoints, "model", meta)
    else:
        hybrid.save(model, folder.checkpoints, "model", meta)


def _figures(model, history, folder: RunFolder, image_shape: tuple[int, int]) -> None:
    """Error curves per epoch, and the first layer's filters as images."""
    curves = {name: history.column(f"{name}_error") for name in ("train", "valid")}
    curves = {k: v for k, v in curves.items() if v and v[0] is not None}
    plots.save(plots.learning_curves(curves, "error (%)", f"{model.config().get('kind', 'classrbm')}"
                                     " error by epoch"), folder.figures / "learning_curves.png")
    first = model if isinstance(model, ClassRBM) else model.layers[0]
    if image_shape[0] * image_shape[1] == first.n_visible:
        plots.save(plots.image_grid(first.weight.detach()[:100], image_shape,
                                    "filters (first 100 hidden units)"), folder.figures / "filters.png")
