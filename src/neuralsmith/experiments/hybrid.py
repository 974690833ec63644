"""``neuralsmith classrbm`` and ``neuralsmith hybrid``: single-stage hybrid classifiers in a run folder.

Three run kinds: ``classrbm`` (a classification RBM, :class:`Config`), ``dhbm`` and ``dhda``
(deep hybrid models, every layer an expert on the labels, :class:`DeepConfig`). Both configs
embed the family's :class:`~neuralsmith.rbm.classrbm.ClassSettings` as ``train``; each states
its own starting point there (a ClassRBM: 10 paired epochs; a deep model: one online pass).

The run folder (:class:`neuralsmith.runfolder.RunFolder`, opened by
:func:`neuralsmith.experiments.open_run`) holds ``config.toml`` (with the kind),
``metrics.csv`` (per epoch), ``results.json`` (``test_error`` in percent, like every
classifier run), ``checkpoints/`` (``last``: the training state a killed run resumes from;
``best``: the best-validation parameters; ``model``: the kept model) and
``figures/learning_curves.png`` and ``figures/filters.png``.

With ``labeled < 1`` only a seeded, class-stratified fraction of the training labels is kept
(:func:`neuralsmith.data.split_labeled`); the supervised objectives ignore the other rows, the
semi-supervised one uses them without labels. The validation split is carved from the training
set first and keeps its labels (it selects the epoch).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch

from neuralsmith import checkpoint, hybrid, plots, seeds, tracking
from neuralsmith import data as data_api
from neuralsmith.device import DEVICES, resolve_device
from neuralsmith.experiments import open_run
from neuralsmith.rbm import classrbm
from neuralsmith.rbm.classrbm import ClassRBM, ClassSettings, class_scores, train_classrbm
from neuralsmith.runfolder import RunFolder, write_json
from neuralsmith.settings import check_count, default_of

#: the run kinds of this module: a ClassRBM, or a deep hybrid model of hybrid.KINDS
MODELS = ("classrbm", *hybrid.KINDS)
#: the checkpoint of the training state (a run killed before its model was kept)
LAST = "last"
#: ClassSettings fields a ClassRBM does not use (ClassSettings refuses other values)
INERT = frozenset({"sparsity_target", "sparsity_cost", "fast_lr", "n_temperatures",
                   "temperature_spacing", "beta_min", "tempering_base"})
#: ClassSettings fields fixed for a deep model (DeepConfig refuses other values)
DEEP_FIXED = frozenset({"method", "n_chains", "supervised"})


def _check_common(config: Any) -> None:
    """The checks both configs share: fractions, patience, seed, device, labels to withhold."""
    if not 0.0 < config.labeled <= 1.0:
        raise ValueError(f"labeled must be a fraction in (0, 1] (e.g. 0.1); got {config.labeled}")
    if not 0.0 <= config.validation < 1.0:
        raise ValueError(f"validation must be a fraction in [0, 1); got {config.validation}")
    check_count("patience", config.patience, 0, "epochs without a better validation error; 0: never stop")
    if config.device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {config.device!r}")
    seeds.resolve_seed(config.seed)
    if config.train.objective == "semisupervised" and config.labeled >= 1.0:
        raise ValueError("objective='semisupervised' needs unlabeled rows: keep fewer labels, "
                         "e.g. --labeled 0.1")


@dataclass(frozen=True)
class Config:
    """The settings of one ``classrbm`` run (written to ``config.toml``); checked on creation.

    ``train`` is the family's :class:`~neuralsmith.rbm.classrbm.ClassSettings` (the home of
    its defaults); this command starts from 10 paired epochs, batches of 20, momentum 0.9.
    """

    kind: ClassVar[str] = "classrbm"
    data: str = "digits"
    hidden: int = 500
    labeled: float = 1.0
    validation: float = 0.1
    patience: int = 0
    seed: int = 0
    device: str = "auto"
    train: ClassSettings = field(default_factory=lambda: ClassSettings(
        epochs=10, batch_size=20, momentum=0.9, weight_decay=0.0))

    def __post_init__(self) -> None:
        check_count("hidden", self.hidden, 1, "hidden units")
        _check_common(self)


@dataclass(frozen=True)
class DeepConfig:
    """The settings of one ``hybrid`` run, a DHBM or DHDA; checked on creation.

    ``kind`` is ``dhbm`` (Boltzmann experts) or ``dhda`` (denoising-autoencoder experts, with
    masking ``corruption``); ``arch`` the hidden sizes. ``train`` starts from one online pass
    (``stream`` batching) by CD; the supervised part is always ``hybrid``.
    """

    kind: str = "dhbm"
    data: str = "digits"
    arch: tuple[int, ...] = (500, 500)
    labeled: float = 1.0
    validation: float = 0.1
    patience: int = 0
    corruption: float = 0.2
    top_down: bool = True
    combine: str = "mean"
    seed: int = 0
    device: str = "auto"
    train: ClassSettings = field(default_factory=lambda: ClassSettings(
        epochs=1, batch_size=20, momentum=0.9, weight_decay=0.0, batching="stream"))

    def __post_init__(self) -> None:
        if self.kind not in hybrid.KINDS:
            raise ValueError(f"model must be one of {', '.join(hybrid.KINDS)}; got {self.kind!r}")
        if not self.arch or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.arch):
            raise ValueError(f"arch must be hidden sizes >= 1, e.g. 500-500; got {list(self.arch)}")
        if not 0.0 <= self.corruption < 1.0:
            raise ValueError(f"corruption must be a masking level in [0, 1); got {self.corruption}")
        if self.combine not in hybrid.COMBINE:
            raise ValueError(f"combine must be one of {', '.join(hybrid.COMBINE)}; got {self.combine!r}")
        if self.train.method != "cd":
            raise ValueError(f"deep hybrid models learn by CD; got method={self.train.method!r}")
        if self.train.supervised != "hybrid":
            raise ValueError("a deep hybrid model's supervised part is hybrid (set alpha for its "
                             f"weight); got supervised={self.train.supervised!r}")
        _check_common(self)


#: run kind -> its config class (read by :func:`neuralsmith.experiments.read_run`)
CONFIGS: dict[str, type] = {"classrbm": Config, **{kind: DeepConfig for kind in hybrid.KINDS}}


def default_objective(labeled: float) -> str:
    """The objective ``neuralsmith hybrid`` takes when none is given: semisupervised when
    labels are withheld (``labeled < 1``), else the family default (hybrid)."""
    return "semisupervised" if labeled < 1.0 else default_of(ClassSettings, "objective")


def load_split(config: Config | DeepConfig):
    """The data set, its labeled rows and labels, and its unlabeled rows (None if all are labeled)."""
    ds = data_api.load(config.data, validation=config.validation, seed=config.seed)
    if config.labeled >= 1.0:
        return ds, ds.x_train, ds.y_train, None
    xl, yl, xu = data_api.split_labeled(ds.x_train, ds.y_train, config.labeled, config.seed)
    return ds, xl, yl, xu


def build_model(config: Config | DeepConfig, xl: torch.Tensor, yl: torch.Tensor, n_classes: int,
                generator: torch.Generator) -> torch.nn.Module:
    """The untrained model, biases set from the labeled rows."""
    if config.kind == "classrbm":
        return ClassRBM.from_data(xl, yl, config.hidden, n_classes=n_classes, generator=generator)
    extra = {"level": config.corruption} if config.kind == "dhda" else {}
    model = hybrid.build(config.kind, [xl.shape[1], *config.arch], n_classes,
                         top_down=config.top_down, combine=config.combine, generator=generator,
                         device=xl.device, **extra)
    return model.init_biases_(xl, yl)


def run(config: Config | DeepConfig, out: str | os.PathLike, *, mode: str = "new",
        progress: bool = True, tensorboard: Any = None) -> dict[str, Any]:
    """Train the model ``config`` describes into run folder ``out`` (``mode``: new, resume, overwrite).

    A resumed run continues from the folder's last checkpoint and ends as an uninterrupted one.

    Returns:
        The results written to results.json.
    """
    device = resolve_device(config.device)
    ds, xl, yl, xu = load_split(config)
    with open_run(out, config, mode) as run_:
        g = seeds.generator(config.seed, device)
        xl, yl = xl.to(device), yl.to(device)
        model = build_model(config, xl, yl, ds.n_classes, g)
        start = time.perf_counter()
        track = tracking.for_run(run_, tensorboard, image_shape=ds.image_shape)
        history = _train(model, config, xl, yl, xu, ds, run_, g, progress, track)
        track.close()
        results = _results(model, config, history, ds, xl, xu, time.perf_counter() - start)
        run_.write_metrics(history.rows)  # whole, also after a resume
        _save_model(model, run_.checkpoints, {"data": ds.info()})
        _figures(model, history, run_, ds.image_shape)
        run_.write_results(results, seed=config.seed)
    return results


def _train(model, config: Config | DeepConfig, xl, yl, xu, ds, run_: RunFolder,
           g: torch.Generator, progress: bool, track: tracking.Tracking) -> classrbm.ClassHistory:
    """Call the family's training function with ``config.train`` and the run's data."""
    fit = train_classrbm if config.kind == "classrbm" else hybrid.train_hybrid
    device, has_valid = xl.device, len(ds.x_valid) > 0
    return fit(model, xl, yl, **_keywords(config.train, config.kind),
               x_unlabeled=None if xu is None else xu.to(device),
               x_valid=ds.x_valid.to(device) if has_valid else None,
               y_valid=ds.y_valid.to(device) if has_valid else None,
               patience=config.patience or None, generator=g, checkpoint_dir=run_.checkpoints,
               progress=progress, callbacks=[run_.log_metrics, track])


def _keywords(settings: ClassSettings, kind: str) -> dict[str, Any]:
    """``settings`` as the training function's keywords, less those fixed for ``kind`` (which
    the configs check: no sparsity or fast weights; a deep model learns by CD, hybrid)."""
    fixed = INERT | (set() if kind == "classrbm" else DEEP_FIXED)
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in fixed}


def _results(model, config: Config | DeepConfig, history, ds, xl, xu,
             seconds: float) -> dict[str, Any]:
    return {**_scores(model, ds.x_test, ds.y_test),
            "valid_error": history.best_valid_error, "best_epoch": history.best_epoch,
            "epochs": len(history), "diverged": history.diverged,
            "stopped_early": history.stopped_early, "seconds": round(seconds, 3),
            "n_labeled": len(xl), "n_unlabeled": 0 if xu is None else len(xu),
            "objective": config.train.objective, "weights": list(config.train.weights()),
            "device": str(xl.device), "data": ds.info(), "model": model.config()}


@torch.no_grad()
def _scores(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Test error (%) and mean negative log-likelihood of p(y|x); per expert for a deep model."""
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    test_nll, test_error = class_scores(model, x, y)
    out: dict[str, Any] = {"test_error": test_error, "test_nll": test_nll}
    if isinstance(model, hybrid.DeepHybrid):
        wrong = model.expert_log_probs(x).argmax(-1) != y  # (L, n_test)
        out["expert_test_errors"] = (100.0 * wrong.float().mean(1)).tolist()
    return out


def _save_model(model: torch.nn.Module, folder: Path, meta: dict[str, Any]) -> None:
    if isinstance(model, ClassRBM):
        classrbm.save(model, folder, "model", meta)
    else:
        hybrid.save(model, folder, "model", meta)


def _figures(model, history, run_: RunFolder, image_shape: tuple[int, int]) -> None:
    """Error curves per epoch, and the first layer's filters as images."""
    curves = {name: history.column(f"{name}_error") for name in ("train", "valid")}
    curves = {k: v for k, v in curves.items() if v and v[0] is not None}
    plots.save(plots.learning_curves(curves, "error (%)", f"{model.config().get('kind', 'classrbm')}"
                                     " error by epoch"), run_.figures / "learning_curves.png")
    first = model if isinstance(model, ClassRBM) else model.layers[0]
    if image_shape[0] * image_shape[1] == first.n_visible:
        plots.save(plots.image_grid(first.weight.detach()[:100], image_shape,
                                    "filters (first 100 hidden units)"), run_.figures / "filters.png")


def evaluate(run_dir: Path, config: Config | DeepConfig, *, seed: int = 0,
             device: str = "auto") -> dict[str, Any]:
    """Score a trained run on the test set of its own data (read from its config).

    The model is the kept one (``checkpoints/model``), or the last training state of a run
    that was interrupted. ``seed`` is accepted for the common interface (scoring draws nothing).
    The result is also written to ``RUN/evaluation.json``.

    Returns:
        ``kind``, ``n_test``, ``test_error`` (percent), ``test_nll``, and for a deep model
        ``expert_test_errors`` (each expert alone).

    Raises:
        FileNotFoundError: if ``run_dir`` holds no trained model.
    """
    seeds.resolve_seed(seed)
    model = _load_model(Path(run_dir) / "checkpoints", config.kind).to(resolve_device(device))
    ds, _, _, _ = load_split(config)
    out = {"kind": config.kind, "n_test": len(ds.x_test), **_scores(model, ds.x_test, ds.y_test)}
    write_json(Path(run_dir) / "evaluation.json", out)
    return out


def _load_model(folder: Path, kind: str) -> torch.nn.Module:
    """Checkpoint ``model``, or the model inside the training state ``last`` (interrupted run)."""
    if checkpoint.exists(folder, "model"):
        return (classrbm.load if kind == "classrbm" else hybrid.load)(folder, "model")
    if checkpoint.exists(folder, LAST):
        tensors, meta = checkpoint.load(folder, LAST)
        return _from_state(kind, meta["rbm"], tensors)
    raise FileNotFoundError(f"{folder}: no trained model (model or last checkpoint); train one "
                            f"with `neuralsmith {'classrbm' if kind == 'classrbm' else 'hybrid'} --out RUN`")


def _from_state(kind: str, model_config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
                ) -> torch.nn.Module:
    """The model a training state holds: its config, and its tensors under ``rbm.``."""
    state = {k.removeprefix("rbm."): v for k, v in tensors.items() if k.startswith("rbm.")}
    g = torch.Generator()  # the draws are overwritten; leaves the global RNG alone
    if kind == "classrbm":
        model = ClassRBM(**model_config, generator=g, dtype=state["weight"].dtype)
    else:
        model = hybrid.build(**model_config, generator=g, dtype=state["layers.0.weight"].dtype)
    model.load_state_dict(state)
    return model
