"""``neuralsmith pretrain dbn|sda``, ``evaluate`` and ``sample`` on a greedily pre-trained stack.

A run greedily pre-trains a Deep Belief Network (a stack of RBMs; Hinton, Osindero & Teh 2006)
or stacked denoising autoencoders (Vincent et al. 2010) into a run folder
(:class:`neuralsmith.runfolder.RunFolder`): ``config.toml``, ``results.json``, ``metrics.csv``
(one row per layer and epoch), ``checkpoints/stack.*`` (the stack, safetensors + JSON, with the
data source and binarization in its metadata), the per-layer checkpoints a killed run resumes
from (``--resume``), ``figures/filters.png`` and, for a DBN, ``figures/samples.png``.

The training settings of each kind have one home: a DBN's layers are trained by the RBM
family's :class:`~neuralsmith.rbm.learning.Settings` (this command starts from 10 epochs of
CD-1 in batches of 20), an SdA's by :class:`DAESettings`; :data:`TRAINING` names both.

Example:
    >>> Config(kind="sda", arch=(500, 500)).train.corruption  # one level for every layer
    (0.2,)
    >>> defaults("sda")["lr"], defaults("dbn")["lr"]
    (0.1, 0.05)
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from neuralsmith import data as data_api
from neuralsmith import limits, plots, precision as precision_mod, seeds, tracking
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run
from neuralsmith.experiments.sampling import SampleSettings, Target, draw
from neuralsmith.rbm.learning import Settings, reconstruction_error
from neuralsmith.rbm.tempering import dbn_down
from neuralsmith.runfolder import RunFolder, write_json
from neuralsmith.settings import check_count, flat_defaults, from_flat
from neuralsmith.stack import (DBN, StackedDAE, greedy_pretrain_dbn, greedy_pretrain_sda, load_stack,
                               save_stack)

KINDS = ("dbn", "sda")
BINARIZE = ("none", "threshold", "stochastic")


@dataclass(frozen=True)
class DAESettings:
    """How each layer of a stacked DAE is trained: SGD on its denoising loss; checked on creation.

    Attributes:
        epochs: passes over the data, per layer.
        lr: SGD learning rate.
        batch_size: examples per update.
        corruption: masking level(s): one for every layer, or one per layer (Vincent et al.
            2010 use 0.1 to 0.4).
        precision: ``fp32``, or ``bf16`` (the products under ``torch.autocast``; see
            :mod:`neuralsmith.precision`).
    """

    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 20
    corruption: tuple[float, ...] = (0.2,)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        precision_mod.check_precision(self.precision)
        for name, what in (("epochs", "passes over the data"), ("batch_size", "examples per update")):
            check_count(name, getattr(self, name), 1, what)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if not self.corruption or not all(0.0 <= c <= 1.0 for c in self.corruption):
            raise ValueError("corruption takes masking levels in [0, 1], one for every layer or one "
                             f"per layer, e.g. 0.2 or 0.1,0.2,0.3; got {list(self.corruption)}")


#: run kind -> its training settings with this command's defaults (their one home)
TRAINING: dict[str, Callable[[], Settings | DAESettings]] = {
    "dbn": lambda: Settings(epochs=10, batch_size=20),
    "sda": DAESettings,
}


@dataclass(frozen=True)
class Config:
    """The settings of one ``pretrain dbn|sda`` run (written to ``config.toml``); checked on creation.

    ``train`` left out (None) takes the kind's defaults from :data:`TRAINING`.
    """

    kind: str = "dbn"
    data: str = "digits"
    binarize: str = "none"
    arch: tuple[int, ...] = (500, 500, 2000)
    seed: int = 0
    device: str = "auto"
    train: Settings | DAESettings | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be dbn or sda; got {self.kind!r}")
        if self.train is None:
            object.__setattr__(self, "train", TRAINING[self.kind]())
        expected = type(TRAINING[self.kind]())
        if not isinstance(self.train, expected):
            raise ValueError(f"a {self.kind} run is trained by {expected.__name__}; got {self.train!r}")
        if self.binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE)}; got {self.binarize!r}")
        if not self.arch or min(self.arch) < 1:
            raise ValueError(f"arch must be hidden sizes >= 1, as in 500-500-2000; got {list(self.arch)}")
        if self.kind == "sda" and len(self.train.corruption) not in (1, len(self.arch)):
            raise ValueError(f"corruption needs one level, or one per layer ({len(self.arch)}); "
                             f"got {list(self.train.corruption)}")
        seeds.resolve_seed(self.seed)
        resolve_device(self.device)
        self.check_size(1)

    def check_size(self, n_in: int) -> None:
        """Refuse a stack on ``n_in`` inputs too large for memory (:mod:`neuralsmith.limits`)."""
        limits.check_network([n_in, *self.arch], f"the {self.kind.upper()}", self.train.batch_size)

    def levels(self) -> list[float]:
        """An SdA's corruption level of every layer."""
        levels = list(self.train.corruption)
        return levels * len(self.arch) if len(levels) == 1 else levels


def _of_kind(kind: str) -> Callable[..., Config]:
    """:class:`Config` with ``kind`` fixed, for :func:`flat_defaults` and :func:`from_flat`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be dbn or sda; got {kind!r}")
    factory = functools.partial(Config, kind=kind)
    factory.__name__ = f"{kind} Config"  # type: ignore[attr-defined]
    return factory


def defaults(kind: str) -> dict[str, Any]:
    """Every leaf setting of a ``kind`` run by name, with its default (what the CLI offers)."""
    return flat_defaults(_of_kind(kind))  # type: ignore[arg-type]


def config_from_flat(kind: str, values: Mapping[str, Any]) -> Config:
    """A ``kind`` run's :class:`Config` from flat values (command-line options); the rest default."""
    return from_flat(_of_kind(kind), values)  # type: ignore[arg-type]


def load_data(config: Config) -> data_api.Dataset:
    """The run's data set, binarized as its config says (the seed drives stochastic binarization)."""
    binarize = None if config.binarize == "none" else config.binarize
    return data_api.load(config.data, binarize=binarize, seed=config.seed)


def build(config: Config, n_in: int, generator: torch.Generator) -> DBN | StackedDAE:
    """The untrained stack ``config`` describes on ``n_in`` inputs (weights drawn from ``generator``)."""
    sizes = [n_in, *config.arch]
    if config.kind == "dbn":
        return DBN(sizes, generator=generator)
    return StackedDAE(sizes, levels=config.levels(), generator=generator)


def run(config: Config, out: str | os.PathLike, *, mode: str = "new",
        progress: bool = True, tensorboard: Any = None) -> dict[str, Any]:
    """Greedily pre-train the stack ``config`` describes into run folder ``out``.

    ``mode``: new, resume or overwrite (:meth:`neuralsmith.runfolder.RunFolder.open`). A
    resumed run continues at the layer (and, for a DBN, the epoch) it had reached and ends as
    an uninterrupted one.

    Returns:
        The results written to results.json.
    """
    device = resolve_device(config.device)
    ds = load_data(config)
    config.check_size(ds.n_features)
    with open_run(out, config, mode) as run_:
        start = time.perf_counter()
        model, histories = _pretrain(config, ds.x_train, run_, device, progress, tensorboard,
                                     ds.image_shape)
        run_.write_metrics([{"layer": l + 1, **row} for l, h in enumerate(histories) for row in h])
        save_stack(model, run_.checkpoints, {"data": config.data, "binarize": config.binarize,
                                             "dataset": ds.info(), "image_shape": list(ds.image_shape)})
        _figures(run_, model, ds.image_shape, config, device)
        results = {"kind": config.kind, "arch": list(config.arch), "epochs": [len(h) for h in histories],
                   "final": [h[-1] for h in histories], "seconds": round(time.perf_counter() - start, 3),
                   "device": str(device), "data": ds.info()}
        run_.write_results(results, seed=config.seed)
    return results


def _pretrain(config: Config, x: torch.Tensor, run: RunFolder, device: torch.device,
              progress: bool, tensorboard: Any = None, image_shape: Any = None,
              ) -> tuple[DBN | StackedDAE, list[list[dict[str, Any]]]]:
    """Build the stack and train it layer by layer on ``device``, checkpointed in the run folder.

    The initial weights come from a CPU generator seeded with the run's seed (the same start
    on every device); on the CPU that generator goes on to drive training, elsewhere a
    generator on ``device`` with the same seed does.
    """
    init = seeds.generator(config.seed)
    g = init if device.type == "cpu" else seeds.generator(config.seed, device)
    model = build(config, x.shape[1], init).to(device)
    common = dict(generator=g, checkpoint_dir=run.checkpoints, progress=progress)
    layers = list(model.rbms if isinstance(model, DBN) else model.layers)
    track = tracking.for_run(run, tensorboard, image_shape=image_shape, stages=layers)
    if isinstance(model, DBN):  # each layer's epochs are tracked as they end
        histories = greedy_pretrain_dbn(model, x.to(device), **dataclasses.asdict(config.train),
                                        callbacks=[track], **common)
    else:  # a DAE's training takes no callbacks: its epochs are tracked once it is done
        t = config.train
        histories = greedy_pretrain_sda(model, x.to(device), epochs=t.epochs, lr=t.lr,
                                        batch_size=t.batch_size, precision=t.precision, **common)
        track.replay([(l + 1, rows) for l, rows in enumerate(histories)])
    track.close()
    return model, histories


def _figures(run: RunFolder, model: DBN | StackedDAE, image_shape: tuple[int, int], config: Config,
             device: torch.device) -> None:
    """First-layer filters; for a DBN also 100 samples (1000 Gibbs steps in the top RBM)."""
    first = model.rbms[0].weight if isinstance(model, DBN) else model.layers[0].weight
    plots.save(plots.image_grid(first.detach()[:100].cpu(), image_shape,
                                f"{config.kind}: first-layer filters"), run.figures / "filters.png")
    if isinstance(model, DBN):
        _samples(model, image_shape, run.figures / "samples.png", 100, 1000,
                 seeds.generator(config.seed, device))


def _samples(dbn: DBN, image_shape: tuple[int, int], path: Path, n: int, gibbs_steps: int,
             generator: torch.Generator) -> Path:
    """Draw ``n`` samples from ``dbn`` (:meth:`DBN.sample`) into the PNG ``path``."""
    x = dbn.sample(n, gibbs_steps, generator).cpu()
    fig = plots.image_grid(x, tuple(image_shape), f"DBN samples ({gibbs_steps} Gibbs steps)",
                           normalize=False)
    return plots.save(fig, path)


def sample(run_dir: Path, config: Config, settings: SampleSettings) -> dict[str, Any]:
    """Sample a pre-trained DBN's run: chains in the top RBM (Gibbs or parallel tempering), then
    one down pass through the directed layers (:func:`neuralsmith.rbm.tempering.sample_dbn`).

    Writes ``figures/samples.png`` (``samples-pt.png``) and the diagnostics of
    :func:`neuralsmith.experiments.sampling.draw`. Everything is checked before a file is
    written: a folder that is not a run is left as it was.

    Raises:
        FileNotFoundError: ``run_dir`` holds no finished stack.
        ValueError: a run that is not a DBN, or a damaged stack.
    """
    if config.kind != "dbn":
        raise ValueError(f"{run_dir}: a stacked DAE is not a generative model; sample from a DBN run")
    model, meta = load_stack(RunFolder(run_dir).checkpoints)
    dbn = model.to(resolve_device(settings.device))
    ds = load_data(config)

    def decode(top_v: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return dbn_down(dbn, top_v, g)

    target = Target(dbn.rbms[-1], decode, tuple(meta["image_shape"]), title="DBN samples",
                    base_data=_top_input(dbn, ds.x_train[:10000].to(dbn.rbms[0].weight.device)))
    return draw(Path(run_dir), target, settings, (ds.x_train, ds.y_train, ds.n_classes))


@torch.no_grad()
def _top_input(dbn: DBN, x: torch.Tensor) -> torch.Tensor:
    """The mean-field up pass of ``x`` to the top RBM's visible layer (its base rates' data)."""
    for rbm in dbn.rbms[:-1]:
        x = rbm.hidden_probs(x)
    return x


def evaluate(run_dir: Path, config: Config, *, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Score each layer of a pre-trained stack on the run's own test set (its data, binarized alike).

    Layer l sees the test rows mapped up by the layers below (hidden means / clean codes).

    * DBN: each RBM's mean-field reconstruction error,
      :math:`\\frac{1}{nD}\\sum (v - E[v \\mid h = E[h \\mid v]])^2`
      (:func:`neuralsmith.rbm.learning.reconstruction_error`), as ``reconstruction_error``.
    * SdA: each DAE's reconstruction :math:`z` of its clean input, as the cross-entropy
      :math:`-\\sum_i x_i \\log z_i + (1 - x_i)\\log(1 - z_i)` (mean over rows; the training
      loss without corruption) and the squared error per unit (``reconstruction_error``).

    ``seed`` is accepted as by every evaluation; these scores draw nothing at random.
    The result is also written to ``RUN/evaluation.json``.

    Raises:
        FileNotFoundError: ``run_dir`` holds no finished stack.
    """
    model, _ = load_stack(Path(run_dir) / "checkpoints")
    model, x = model.to(resolve_device(device)), load_data(config).x_test.to(resolve_device(device))
    out: dict[str, Any] = {"kind": config.kind, "n_test": len(x)}
    with torch.no_grad():
        out.update(_dbn_errors(model, x) if isinstance(model, DBN) else _sda_errors(model, x))
    write_json(Path(run_dir) / "evaluation.json", out)
    return out


def _dbn_errors(dbn: DBN, x: torch.Tensor) -> dict[str, list[float]]:
    errors = []
    for rbm in dbn.rbms:
        errors.append(reconstruction_error(rbm, x))
        x = rbm.hidden_probs(x)
    return {"reconstruction_error": errors}


def _sda_errors(sda: StackedDAE, x: torch.Tensor) -> dict[str, list[float]]:
    cross_entropy, squared = [], []
    for dae in sda.layers:
        logits = dae.decode_logits(dae.encode(x))
        cross_entropy.append(float(F.binary_cross_entropy_with_logits(logits, x, reduction="none")
                                   .sum(1).mean()))
        squared.append(float((dae.reconstruct(x) - x).square().mean()))
        x = dae.encode(x)
    return {"cross_entropy": cross_entropy, "reconstruction_error": squared}
