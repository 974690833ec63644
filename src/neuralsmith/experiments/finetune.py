"""``neuralsmith finetune``: fine-tune a pre-trained stack, or the same MLP from any initializer.

The start is either a ``pretrain dbn|sda|dbm`` run folder (``pretrained``: its stack's layers are
copied into an MLP with a fresh output layer, and its data set and binarization are read from
its config.toml) or hidden sizes ``arch`` filled by an initializer ``init``. Either way the
MLP is trained by :func:`neuralsmith.train.finetune` with the same budget
(:class:`~neuralsmith.train.FinetuneConfig`, the home of its defaults).

The run folder holds config.toml (with the data set resolved), metrics.csv (per epoch),
checkpoints/ (``finetune``: the training state a killed run resumes from; ``model``: the kept
MLP, its sizes and activation in the JSON), figures/learning_curves.png and results.json.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from neuralsmith import checkpoint, limits, nets, plots, seeds, stack, tracking, train
from neuralsmith import data as data_api
from neuralsmith.data import Dataset
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run, read_run
from neuralsmith.experiments.diagnose import check_init
from neuralsmith.experiments.rbm import BINARIZE
from neuralsmith.runfolder import RunFolder, write_json
from neuralsmith.train import FinetuneConfig

MODEL = "model"
LSUV_ROWS = 256  # the training rows LSUV (Mishkin & Matas 2016) measures variances on
NO_START = "give either a pre-trained RUN folder or --arch (hidden sizes, e.g. --arch 500-500)"


@dataclass(frozen=True)
class Config:
    """The settings of one ``finetune`` run (written to ``config.toml``); checked on creation.

    Give ``pretrained`` (a ``pretrain dbn|sda|dbm`` run folder; a DBM's weights go in plainly,
    :meth:`neuralsmith.rbm.dbm.DBM.to_mlp`) or ``arch`` (hidden sizes; the
    input and output sizes come from the data), not both (a config with neither is refused by
    :func:`resolve`, the first step of :func:`run`). ``data`` and ``binarize`` left None
    are the pre-trained run's (else ``digits`` and ``none``). ``validation`` is a fraction of
    the training set, or a count of examples if >= 1.
    """

    kind: ClassVar[str] = "finetune"
    pretrained: str | None = None
    arch: tuple[int, ...] | None = None
    init: str = "default"
    activation: str = "sigmoid"
    data: str | None = None
    binarize: str | None = None
    validation: float = 0.1
    seed: int = 0
    device: str = "auto"
    train: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        self._check_start()
        if self.binarize is not None and self.binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE)}; got {self.binarize!r}")
        if not self.validation >= 0 or (self.validation >= 1 and not float(self.validation).is_integer()):
            raise ValueError("validation must be a fraction in [0, 1) or a whole count of examples; "
                             f"got {self.validation}")
        seeds.resolve_seed(self.seed)
        resolve_device(self.device)

    def _check_start(self) -> None:
        if self.pretrained is not None and self.arch is not None:
            raise ValueError(NO_START + ", not both")
        if self.arch is not None and (not self.arch or min(self.arch) < 1):
            raise ValueError(f"arch must be hidden sizes >= 1, as in 500-500; got {list(self.arch)}")
        if self.pretrained is not None and self.init != "default":
            raise ValueError(f"--init {self.init} applies to --arch; a pre-trained RUN starts from its stack")
        choices = stack.ACTIVATIONS if self.pretrained is not None else nets.ACTIVATIONS
        if self.activation not in choices:
            raise ValueError(f"activation must be one of {', '.join(choices)}; got {self.activation!r}")
        check_init(self.init, {})
        if self.arch is not None:
            limits.check_network([1, *self.arch, 1], "the MLP", self.train.batch_size)


def resolve(config: Config) -> Config:
    """``config`` with its data set and binarization filled in (from the pre-trained run's config).

    Raises:
        ValueError: a config with no start (neither ``pretrained`` nor ``arch``; the default
            Config leaves both out, so this is checked here, before any data is loaded).
        FileNotFoundError: ``pretrained`` is not a run folder.
    """
    if config.pretrained is None and config.arch is None:
        raise ValueError(NO_START)
    if config.data is not None and config.binarize is not None:
        return config
    data, binarize = "digits", "none"
    if config.pretrained is not None:
        _, pre = read_run(config.pretrained)
        data, binarize = pre.data, getattr(pre, "binarize", None) or "none"
    return dataclasses.replace(config, data=config.data or data, binarize=config.binarize or binarize)


def validation_fraction(validation: float, n_train: int, data: str) -> float:
    """``validation`` as a fraction of ``n_train`` rows (it is a count of examples if >= 1).

    Raises:
        ValueError: a count that leaves no training rows.
    """
    if validation < 1:
        return validation
    if validation >= n_train:
        raise ValueError(f"validation asks for {int(validation)} examples but {data} has {n_train} "
                         f"training rows; give a fraction < 1 or a count below {n_train}")
    return validation / n_train


def load_data(config: Config) -> Dataset:
    """The run's data set, binarized, with its validation split (seeded by ``config.seed``)."""
    config = resolve(config)
    binarize = None if config.binarize == "none" else config.binarize
    ds = data_api.load(config.data, binarize=binarize, seed=config.seed)
    fraction = validation_fraction(config.validation, len(ds.x_train), config.data)
    return data_api.split_validation(ds, fraction, config.seed)


def build_model(config: Config, ds: Dataset, generator: torch.Generator) -> tuple[nn.Sequential, str]:
    """The MLP to fine-tune and the name of its start (``dbn``, ``sda`` or the initializer).

    Raises:
        FileNotFoundError: the pre-trained run holds no stack.
        ValueError: the stack's input size is not the data's, or a label exceeds the output layer.
    """
    check_labels(ds)
    if config.pretrained is None:
        sizes = [ds.n_features, *config.arch, ds.n_classes]
        limits.check_network(sizes, "the MLP", config.train.batch_size)
        options = {"batch": ds.x_train[:LSUV_ROWS]} if config.init == "lsuv" else {}
        return nets.mlp(sizes, config.activation, init=config.init, generator=generator, **options), config.init
    model, meta = stack.load_stack(Path(config.pretrained) / "checkpoints")
    if meta["sizes"][0] != ds.n_features:
        raise ValueError(f"the stack in {config.pretrained} takes {meta['sizes'][0]} inputs but "
                         f"{ds.name} has {ds.n_features} features; fine-tune on the data it was "
                         "pre-trained on (leave out --data)")
    return model.to_mlp(ds.n_classes, config.activation), meta["kind"]


def check_labels(ds: Dataset) -> None:
    """Refuse labels outside ``[0, n_classes)``: the output layer has ``n_classes`` units.

    Raises:
        ValueError: naming the data set, the label and the output size.
    """
    labels = [y for y in (ds.y_train, getattr(ds, "y_valid", None), ds.y_test) if y is not None and len(y)]
    low, high = min(int(y.min()) for y in labels), max(int(y.max()) for y in labels)
    if low < 0 or high >= ds.n_classes:
        bad = low if low < 0 else high
        raise ValueError(f"{ds.name}: label {bad} does not fit an output layer of {ds.n_classes} classes "
                         f"(labels must be 0..{ds.n_classes - 1}); check the data")


def run(config: Config, out: str | os.PathLike, *, mode: str = "new",
        progress: bool = True, tensorboard: Any = None) -> dict[str, Any]:
    """Fine-tune into run folder ``out`` (``mode``: new, resume or overwrite).

    The data and the model are made (and checked) before the folder is touched. A resumed run
    continues from the folder's last checkpoint and ends as an uninterrupted one. Every epoch
    also goes to ``RUN/metrics.jsonl`` and, with ``tensorboard``, to TensorBoard.

    Returns:
        The results written to results.json.
    """
    config = resolve(config)
    device = resolve_device(config.device)
    ds = load_data(config)
    g = seeds.generator(config.seed)
    model, start = build_model(config, ds, g)
    with open_run(out, config, mode) as run_:
        track = tracking.for_run(run_, tensorboard)
        result = train.finetune(model, ds, **dataclasses.asdict(config.train), generator=g,
                                checkpoint_dir=run_.checkpoints, callbacks=[run_.log_metrics, track],
                                progress=progress, device=device)
        run_.write_metrics(result.history)  # whole, also after a resume
        track.close()
        save_model(model, run_.checkpoints, config.activation, {"start": start, "data": ds.info()})
        _figure(run_, result.history, start)
        results = {"start": start, "pretrained": config.pretrained, **result.metrics,
                   "device": str(device), "data": ds.info(), "sizes": mlp_sizes(model)}
        run_.write_results(results, seed=config.seed)
    return results


def mlp_sizes(model: nn.Sequential) -> list[int]:
    """Layer widths of an MLP of ``nn.Linear`` layers, input first."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    return [linears[0].in_features, *(m.out_features for m in linears)]


def save_model(model: nn.Sequential, folder: Path, activation: str, meta: dict[str, Any]) -> Path:
    """Save a fine-tuned MLP as checkpoint ``model``: tensors, and sizes + activation in the JSON."""
    return checkpoint.save_module(model.cpu(), folder, MODEL,
                                  {**meta, "mlp": {"sizes": mlp_sizes(model), "activation": activation}})


def load_model(folder: str | os.PathLike) -> nn.Sequential:
    """The MLP saved by :func:`save_model` in ``folder``.

    Raises:
        FileNotFoundError: no fine-tuned model there (the run did not finish).
    """
    def build(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> nn.Sequential:
        spec = meta["mlp"]
        return nets.mlp(spec["sizes"], spec["activation"], generator=torch.Generator())

    model, _ = checkpoint.load_module(folder, MODEL, "mlp", build, what="fine-tuned MLP",
                                      origin="`neuralsmith finetune --out RUN`")
    return model


def _figure(run: RunFolder, history: list[dict[str, float]], start: str) -> None:
    curves = {s: [h[f"{s}_error"] for h in history] for s in ("train", "valid", "test")}
    plots.save(plots.learning_curves(curves, "error (%)", f"{start}: fine-tuning"),
               run.figures / "learning_curves.png")


def evaluate(run_dir: Path, config: Config, *, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Test error (percent) and loss of a fine-tuned run's kept MLP on its own data's test set.

    ``seed`` is accepted for the evaluate protocol; nothing here is drawn at random. The
    result is also written to ``RUN/evaluation.json``.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no fine-tuned model.
    """
    device = resolve_device(device)
    model = load_model(Path(run_dir) / "checkpoints").to(device)
    ds = load_data(config)
    loss, error = train.evaluate(model, ds.x_test.to(device), ds.y_test.to(device))
    out = {"kind": config.kind, "n_test": len(ds.x_test), "test_error": error, "test_loss": loss}
    write_json(Path(run_dir) / "evaluation.json", out)
    return out
