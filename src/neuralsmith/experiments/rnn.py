"""``neuralsmith rnn``: one Elman network on the adding problem or on images read as sequences.

The math (the network, the starts, the identity constraint, the tasks) is :mod:`neuralsmith.rnn`;
this module holds the run's settings (:class:`Config`, the only home of their defaults) and
:func:`run`, which trains into a run folder opened by the one policy
(:func:`neuralsmith.experiments.open_run`): config.toml, results.json (``test_mse`` for the
adding problem, ``test_error`` in percent for images), metrics.csv (per pass, with the step
count), ``checkpoints/`` (``mode="resume"`` continues a killed run there) and
``figures/learning_curve.png``.

Example:
    >>> config = Config(length=5, hidden=8, steps=4, n_train=32, n_test=8, device="cpu")
    >>> sorted(k for k in run(config, progress=False) if k.startswith("test"))
    ['test_mse']
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Generator

from neuralsmith import data as data_lib
from neuralsmith import init as init_lib
from neuralsmith import tracking
from neuralsmith.data import Dataset
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run
from neuralsmith.rnn import CELLS, CONSTRAINTS, READINGS, ElmanRNN, adding_problem, check_choice, \
    identity_objective, reading_shape, start, state_gradient_norms
from neuralsmith.runfolder import RunFolder
from neuralsmith.train import OPTIMIZERS, FinetuneResult, finetune, supervised_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """The settings of one recurrent run (what ``neuralsmith rnn`` takes; written to config.toml).

    Attributes:
        task: ``"adding"``, or a registered data source whose images are read as sequences.
        length: T of the adding problem (images: set by ``reading``).
        reading: ``"pixel"`` (one pixel a step) or ``"row"`` (one image row a step).
        cell: ``"relu"`` or ``"tanh"``.
        init: a scheme of :data:`neuralsmith.init.SCHEMES` for every weight (see
            :func:`neuralsmith.rnn.start`).
        init_std: ``identity``: the input and readout std (Le et al.: 0.001); any scheme with
            a ``std`` (``normal``, ``sparse``): that std. None: the scheme's own default
            (:meth:`neuralsmith.init.Scheme.defaults`; ``normal``: 0.01; ``identity``: LeCun normal).
        constraint: ``"none"``, ``"hard"`` (||W_hh - I||_F <= radius) or ``"soft"`` (+ penalty).
        radius, penalty: r of the hard constraint, lambda of the soft one.
        hidden: recurrent units (Le et al.: 100).
        steps: optimizer steps, rounded up to whole passes over the training set.
        lr, momentum, optimizer, batch_size, clip: the optimizer (Le et al.: SGD, lr 0.01
            for the IRNN, batch 16, gradient norm clipped at 1; None: no clipping).
        n_train, n_test: adding-problem sequences (Le et al.: 100 000 and 10 000).
        seed: seeds the task, the start and the data order.
        device: where the network trains (``auto``, ``cpu`` or ``cuda``); a resumed run may change it.
    """

    kind: ClassVar[str] = "rnn"
    task: str = "adding"
    length: int = 100
    reading: str = "pixel"
    cell: str = "relu"
    init: str = "identity"
    init_std: float | None = None
    constraint: str = "none"
    radius: float = 0.1
    penalty: float = 1e-3
    hidden: int = 100
    steps: int = 2000
    lr: float = 0.01
    momentum: float = 0.0
    optimizer: str = "sgd"
    batch_size: int = 16
    clip: float | None = 1.0
    n_train: int = 10_000
    n_test: int = 1_000
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_choice("cell", self.cell, CELLS)
        check_choice("constraint", self.constraint, CONSTRAINTS)
        check_choice("reading", self.reading, READINGS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.task != "adding" and self.task not in data_lib.list_sources():
            raise ValueError(f"task must be 'adding' or a data source ({', '.join(data_lib.list_sources())}); "
                             f"got {self.task!r}")
        if self.task == "adding" and self.length < 2:
            raise ValueError(f"length (steps T) must be >= 2 so that each half holds a marker; got {self.length}")
        self._check_numbers()
        resolve_device(self.device)
        self.init_options()  # refuses an unknown scheme or an option this command cannot give

    def _check_numbers(self) -> None:
        for name in ("steps", "hidden", "batch_size", "n_train", "n_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name, value in (("lr", self.lr), ("radius", self.radius), ("clip", self.clip)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0{' (or None: no clipping)' if name == 'clip' else ''}; "
                                 f"got {value}")
        if not self.penalty >= 0 or not self.momentum >= 0:
            raise ValueError(f"penalty and momentum must be >= 0; got {self.penalty} and {self.momentum}")

    def init_options(self) -> dict[str, Any]:
        """The keyword options :func:`neuralsmith.rnn.start` passes to the scheme.

        ``init_std`` goes under the scheme's name for it (``input_std`` for identity, else
        ``std``); an option the scheme requires and ``init_std`` leaves open takes the scheme's
        standard value (:meth:`neuralsmith.init.Scheme.defaults`, e.g. ``normal``: std 0.01).

        Raises:
            ValueError: an unknown scheme, ``init_std`` for a scheme without a std, or a required
                option with no standard value.
        """
        if self.init not in init_lib.SCHEMES:
            raise ValueError(f"unknown init scheme {self.init!r}; choose one of "
                             f"{', '.join(sorted(init_lib.SCHEMES))}")
        scheme = init_lib.SCHEMES[self.init]
        if self.init_std is not None and self.init != "identity" and "std" not in scheme.options():
            raise ValueError(f"--init-std sets the std of identity (its input weights), normal or sparse; "
                             f"{self.init!r} takes {scheme.options()}")
        key = "input_std" if self.init == "identity" else "std"
        given = {} if self.init_std is None else {key: self.init_std}
        standard = {p: v for p, v in scheme.defaults().items() if p in scheme.required()}
        missing = [p for p in scheme.required() if p not in {**standard, **given} and p != "batch"]
        if missing:
            raise ValueError(f"init {self.init!r} needs the option(s) {missing}, which `neuralsmith rnn` "
                             "does not take; call neuralsmith.rnn.start from Python")
        return {**standard, **given}


def load_task(config: Config, generator: Generator | None = None) -> tuple[Dataset, int]:
    """The task's Dataset and the features each step reads (2 for adding, 1 or the width for images).

    Example:
        >>> ds, features = load_task(Config(task="digits", reading="row"))
        >>> ds.x_train.shape[1] // features, features
        (8, 8)
    """
    if config.task == "adding":
        return adding_problem(config.length, config.n_train, config.n_test, generator=generator), 2
    ds = data_lib.load(config.task, seed=config.seed)
    return ds, reading_shape(ds, config.reading)[1]


def build(config: Config, ds: Dataset, features: int, generator: Generator | None = None) -> ElmanRNN:
    """The :class:`~neuralsmith.rnn.ElmanRNN` for ``ds``, started by ``config.init`` under ``config.constraint``.

    Example:
        >>> config = Config(length=4, n_train=8, n_test=2, constraint="hard")
        >>> net = build(config, *load_task(config))
        >>> net.rnn.weight_hh_l0.shape, net.readout.out_features
        (torch.Size([100, 100]), 1)
    """
    net = ElmanRNN(features, config.hidden, max(ds.n_classes, 1), config.cell)
    options = config.init_options()
    if config.init == "lsuv":
        options["batch"] = ds.x_train[:256]
    return start(net, config.init, constraint=config.constraint, radius=config.radius,
                 generator=generator, **options)


def run(config: Config, out: str | os.PathLike | None = None, *, mode: str = "new",
        progress: bool = True, tensorboard: Any = None) -> dict[str, Any]:
    """Train one recurrent net on its task; with ``out``, into a run folder (``mode``: new, resume, overwrite).

    A resumed run continues from the folder's last checkpoint and ends as an uninterrupted one;
    without ``out`` nothing is written.

    Returns:
        The results (also results.json): the test metric under its name, the budget used, and
        what the start did to the gradient through time and to the distance of W_hh from I.
    """
    tracking.need_folder(out, tensorboard)
    device = resolve_device(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    ds, features = load_task(config, generator)
    net = build(config, ds, features, generator)
    ratio = _gradient_ratio(net, ds)
    if out is None:
        return _summary(config, ds, net, _train(config, net, ds, None, progress, device), ratio)
    with open_run(out, config, mode) as folder:
        track = tracking.for_run(folder, tensorboard)
        result = _train(config, net, ds, folder, progress, device, track)
        track.close()
        results = _summary(config, ds, net, result, ratio)
        rows = [_metrics_row(rec, _steps_per_epoch(config, ds)) for rec in result.history]
        folder.write_metrics(rows)  # whole, also after a resume
        results["figure"] = str(_save_learning_curve(config, ds, rows, folder.figures / "learning_curve.png"))
        folder.write_results(results, seed=config.seed)
    return results


def _steps_per_epoch(config: Config, ds: Dataset) -> int:
    return math.ceil(ds.x_train.shape[0] / config.batch_size)


COLUMNS = ("epoch", "lr", "train_loss", "train_error", "valid_loss", "valid_error", "test_loss", "test_error",
           "seconds")


def _metrics_row(record: dict[str, Any], per_epoch: int) -> dict[str, Any]:
    """One metrics.csv row in a fixed column order (a resumed history comes back from JSON: None for NaN)."""
    values = {k: math.nan if record.get(k) is None else record[k] for k in COLUMNS}
    return {"step": int(record["epoch"]) * per_epoch, **values}


def _distance_to_identity(net: ElmanRNN) -> float:
    weight = net.rnn.weight_hh_l0.detach()
    return float(torch.linalg.matrix_norm(weight - torch.eye(weight.shape[0], device=weight.device)))


def _gradient_ratio(net: ElmanRNN, ds: Dataset) -> float:
    """g_1 / g_T of :func:`~neuralsmith.rnn.state_gradient_norms` on 256 test sequences: 1 keeps the first step in reach."""
    device = net.readout.weight.device
    norms = state_gradient_norms(net, ds.x_test[:256].to(device), ds.y_test[:256].to(device))
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else math.nan


def _summary(config: Config, ds: Dataset, net: ElmanRNN, result: FinetuneResult,
             ratio_at_start: float) -> dict[str, Any]:
    """results.json: the test metric under its name, the budget used, what the start did."""
    m, per_epoch = result.metrics, _steps_per_epoch(config, ds)
    regression = ds.n_classes == 0
    metric = {"test_mse": m["test_loss"], "train_mse": m["train_loss"]} if regression else \
        {"test_error": m["test_error"], "train_error": m["train_error"]}
    return {**metric, "metric": next(iter(metric)), "sequence_steps": ds.n_features // net.rnn.input_size,
            "steps": m["epochs"] * per_epoch, "epochs": m["epochs"], "best_step": m["best_epoch"] * per_epoch,
            "seconds": m["seconds"], "diverged": m["diverged"], "init_options": config.init_options(),
            "gradient_ratio_at_start": ratio_at_start, "gradient_ratio_at_end": _gradient_ratio(net, ds),
            "distance_to_identity": _distance_to_identity(net),
            "mean_predictor_mse": float(ds.y_test.float().var(unbiased=False)) if regression else None}


def _save_learning_curve(config: Config, ds: Dataset, rows: list[dict[str, float]], path: Path) -> Path:
    """Train and test loss (adding) or error (images) against steps, the mean predictor dotted."""
    from neuralsmith import plots  # matplotlib only when a figure is drawn

    regression = ds.n_classes == 0
    key, label = ("loss", "MSE") if regression else ("error", "error (%)")
    steps = [r["step"] for r in rows]
    curves = {f"{split} {label}": (steps, [r[f"{split}_{key}"] for r in rows]) for split in ("train", "test")}
    title = (f"{config.task}{'' if not regression else f', T = {config.length}'}: {config.cell}, "
             f"{config.init}, constraint {config.constraint}")
    reference = float(ds.y_test.float().var(unbiased=False)) if regression else None
    figure = plots.curves_by_step(curves, ylabel=label, title=title, log=regression, reference=reference,
                                  reference_label="always the mean")
    return plots.save(figure, path)


def _train(config: Config, net: ElmanRNN, ds: Dataset, folder: RunFolder | None, progress: bool,
           device: torch.device, track: tracking.Tracking | None = None) -> FinetuneResult:
    """``config.steps`` (rounded up to whole passes) of the shared loop, the soft penalty in the objective."""
    per_epoch = _steps_per_epoch(config, ds)
    objective = identity_objective(config.penalty) if config.constraint == "soft" else supervised_loss
    log_row = (lambda rec: folder.log_metrics(_metrics_row(rec, per_epoch))) if folder else None
    logger.info("rnn: %d passes of %d steps on %s", math.ceil(config.steps / per_epoch), per_epoch, ds.name)
    return finetune(net, ds, epochs=math.ceil(config.steps / per_epoch), lr=config.lr, momentum=config.momentum,
                    batch_size=config.batch_size, clip_grad=config.clip, optimizer=config.optimizer,
                    generator=torch.Generator().manual_seed(config.seed), loss=objective,
                    checkpoint_dir=folder.checkpoints if folder else None, callbacks=[log_row, track] if folder else [],
                    progress=progress, device=device)
