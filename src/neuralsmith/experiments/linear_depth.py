"""``neuralsmith linear-depth``: learning time of deep linear nets against depth, per start (Saxe et al. 2013).

The math (the task, the nets, the starts, :func:`~neuralsmith.linear_depth.learning_time`) is
:mod:`neuralsmith.linear_depth`; this module holds the sweep's settings (:class:`Config`, the
only home of their defaults) and :func:`run`, which trains every (depth, start) and, with
``out``, writes a run folder opened by the one policy (:func:`neuralsmith.experiments.open_run`):
config.toml, results.json, metrics.csv (the loss after every epoch of every cell),
``figures/learning_time.png``, and one record per finished cell in ``checkpoints/``, which a
resumed run (``mode="resume"``) reads instead of training the cell again.

Example:
    >>> config = Config(depths=(2, 4), inits=("orthogonal",), width=4, n_train=64,
    ...                 thresholds=(0.1,), max_epochs=50, device="cpu")
    >>> [(r["depth"], r["epochs"]["0.1"] is not None) for r in run(config, progress=False)["records"]]
    [(2, True), (4, True)]
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from neuralsmith import init as init_lib
from neuralsmith import tracking
from neuralsmith.data import Dataset
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run
from neuralsmith.linear_depth import LR_SCALINGS, PLAIN_STARTS, deep_linear, learning_time, linear_task, start
from neuralsmith.progress import progress_bar
from neuralsmith.runfolder import RunFolder, read_json, write_json


@dataclass(frozen=True)
class Config:
    """The settings of a depth sweep (what ``neuralsmith linear-depth`` takes; written to config.toml).

    Attributes:
        depths: numbers of weight layers (Saxe et al. count layers of units: depth + 1).
        inits: starts, each ``normal``, ``pretrained`` or a scheme name (see
            :func:`neuralsmith.linear_depth.start`).
        width: input, hidden and output size.
        n_train: training samples of :func:`~neuralsmith.linear_depth.linear_task`.
        lr: the learning rate of a depth-1 net; depth D trains at ``lr / D`` with ``lr_scaling="depth"``.
        lr_scaling: ``"depth"`` (Saxe et al.) or ``"none"`` (every depth at ``lr``).
        thresholds: loss levels (fractions of the targets' mean square); training stops at the
            lowest, and the epochs to reach each are recorded.
        max_epochs, batch_size: see :func:`~neuralsmith.linear_depth.learning_time`.
        seed: seeds the task, the starts and the data order (the same for every cell).
        device: where the nets train (``auto``, ``cpu`` or ``cuda``); the task and the starts are
            drawn on the CPU, so every device starts from the same weights.
    """

    kind: ClassVar[str] = "linear-depth"
    depths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    inits: tuple[str, ...] = ("normal", "orthogonal", "pretrained")
    width: int = 32
    n_train: int = 512
    lr: float = 1.0
    lr_scaling: str = "depth"
    thresholds: tuple[float, ...] = (0.05, 0.01)
    max_epochs: int = 300
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.depths or min(self.depths) < 1:
            raise ValueError(f"depths must be weight-layer counts >= 1, as in 2,4,8; got {self.depths}")
        if "pretrained" in self.inits and min(self.depths) < 2:
            raise ValueError("the pretrained start needs depth >= 2 (hidden layers to pre-train); drop depth 1")
        if not self.thresholds or min(self.thresholds) <= 0:
            raise ValueError(f"thresholds must be loss fractions > 0, as in 0.05,0.01; got {self.thresholds}")
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"lr_scaling must be one of {', '.join(LR_SCALINGS)}; got {self.lr_scaling!r}")
        for name in ("width", "n_train", "max_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        self._check_starts()
        resolve_device(self.device)

    def _check_starts(self) -> None:
        if not self.inits:
            raise ValueError("inits must name at least one start, as in normal,orthogonal,pretrained")
        for name in self.inits:
            if name not in PLAIN_STARTS and (name not in init_lib.SCHEMES or init_lib.SCHEMES[name].required()):
                plain = ", ".join(s for s, v in init_lib.SCHEMES.items() if not v.required())
                raise ValueError(f"unknown start {name!r}: use normal, pretrained or a scheme without "
                                 f"required options ({plain})")

    def layer_lr(self, depth: int) -> float:
        """The SGD rate at ``depth``: lr / depth (Saxe et al.'s 1 / N_l scaling) or lr."""
        return self.lr / depth if self.lr_scaling == "depth" else self.lr


def run(config: Config, out: str | os.PathLike | None = None, *, mode: str = "new",
        progress: bool = True, tensorboard: Any = None) -> dict[str, Any]:
    """Learning time against depth for every start; with ``out``, a run folder (``mode``: new, resume, overwrite).

    Returns:
        The results (also results.json): ``records``, one per (depth, start) with ``epochs``
        to each threshold (null: not reached) and the losses at start and end; and
        ``depth_ratio``, per threshold and start the epochs at the deepest depth over those at
        the shallowest.
    """
    tracking.need_folder(out, tensorboard)
    device = resolve_device(config.device)
    ds = linear_task(config.width, config.n_train, generator=torch.Generator().manual_seed(config.seed))
    if out is None:
        return _results(config, _sweep(config, ds, device, None, progress))
    with open_run(out, config, mode) as folder:
        records = _sweep(config, ds, device, folder, progress)
        track = tracking.for_run(folder, tensorboard)
        track.replay([(f"{r['init']}/depth{r['depth']}",
                       [{"init": r["init"], "depth": r["depth"], "epoch": e, "loss": loss}
                        for e, loss in enumerate(r["losses"])]) for r in records])
        track.close()
        results = _results(config, records)
        _write_outputs(folder, config, records, results)
    return results


def _sweep(config: Config, ds: Dataset, device: torch.device, folder: RunFolder | None,
           progress: bool) -> list[dict[str, Any]]:
    """Every cell's record, depth by depth (a cell an earlier run finished is read from ``folder``)."""
    cells = [(d, name) for d in config.depths for name in config.inits]
    records = []
    with progress_bar("depth sweep", total=len(cells), enabled=progress) as bar:
        for depth, name in cells:
            bar.describe(f"{name}, depth {depth}")
            records.append(_cached_cell(folder, config, ds, depth, name, device))
            bar.advance()
    return records


def _results(config: Config, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"records": [{k: v for k, v in r.items() if k != "losses"} for r in records],
            "depth_ratio": _depth_ratios(records, config)}


def _cell(config: Config, ds: Dataset, depth: int, name: str, device: torch.device) -> dict[str, Any]:
    """Train one (depth, start) and return its record, the loss curve included."""
    generator = torch.Generator().manual_seed(config.seed)
    net = start(deep_linear(config.width, depth), name, ds.x_train, generator=generator).to(device)
    on_device = dataclasses.replace(ds, x_train=ds.x_train.to(device), y_train=ds.y_train.to(device))
    _, losses = learning_time(net, on_device, lr=config.layer_lr(depth), threshold=min(config.thresholds),
                              max_epochs=config.max_epochs, batch_size=config.batch_size, generator=generator)
    scale = float(ds.y_train.pow(2).mean())
    epochs = {str(t): _first_below(losses, t * scale) for t in config.thresholds}
    return {"depth": depth, "init": name, "lr": config.layer_lr(depth), "epochs": epochs,
            "start_loss": losses[0], "final_loss": losses[-1], "losses": losses}


def _first_below(losses: list[float], level: float) -> int | None:
    """The first epoch whose loss is <= level (losses[0] is the start, epoch 0), or None."""
    return next((epoch for epoch, loss in enumerate(losses) if loss <= level), None)


def _cached_cell(folder: RunFolder | None, config: Config, ds: Dataset, depth: int, name: str,
                 device: torch.device) -> dict[str, Any]:
    """A cell's record from the run folder if an earlier run finished it, else trained and stored."""
    path = folder.checkpoints / f"{name}-depth{depth}.json" if folder else None
    if path is not None and path.is_file():
        return read_json(path)
    record = _cell(config, ds, depth, name, device)
    if path is not None:
        write_json(path, record)
    return record


def _depth_ratios(records: list[dict[str, Any]], config: Config) -> dict[str, dict[str, float | None]]:
    """Per threshold and start: epochs at the deepest depth over those at the shallowest (None: one missed)."""
    ratios: dict[str, dict[str, float | None]] = {}
    for t in map(str, config.thresholds):
        ratios[t] = {}
        for name in config.inits:
            mine = sorted((r for r in records if r["init"] == name), key=lambda r: r["depth"])
            first, last = mine[0]["epochs"][t], mine[-1]["epochs"][t]
            ratios[t][name] = last / first if first and last else None
    return ratios


def _write_outputs(folder: RunFolder, config: Config, records: list[dict[str, Any]],
                   results: dict[str, Any]) -> None:
    """metrics.csv (every epoch of every cell), the learning-time figure, results.json."""
    from neuralsmith import plots  # matplotlib only when a figure is drawn

    folder.write_metrics({"init": r["init"], "depth": r["depth"], "epoch": epoch, "loss": loss}
                         for r in records for epoch, loss in enumerate(r["losses"]))
    scaling = "lr / depth" if config.lr_scaling == "depth" else "lr"
    panels = {f"loss < {t:g} of E[y²], SGD at {scaling}": {
        name: {r["depth"]: r["epochs"][str(t)] for r in records if r["init"] == name} for name in config.inits}
        for t in config.thresholds}
    figure = plots.learning_time_by_depth(panels, cap=config.max_epochs)
    results["figure"] = str(plots.save(figure, folder.figures / "learning_time.png"))
    folder.write_results(results, seed=config.seed)
