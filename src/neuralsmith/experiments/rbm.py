"""``neuralsmith pretrain rbm`` and evaluating an RBM run: train into a run folder, score it.

The run folder (:class:`neuralsmith.runfolder.RunFolder`) holds config.toml, metrics.csv (per
epoch), checkpoints/ (``last``: the training state a killed run resumes from; ``model``: the
RBM), figures/filters.png and figures/samples.png, and results.json.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from neuralsmith import data as data_api
from neuralsmith import limits, plots, seeds, tracking
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run
from neuralsmith.experiments.sampling import SampleSettings, Target, draw
from neuralsmith.rbm import model as rbm_model
from neuralsmith.rbm import units
from neuralsmith.rbm.learning import Settings, reconstruction_error, train
from neuralsmith.rbm.model import RBM
from neuralsmith.rbm.partition import ais_log_partition, default_betas, exact_is_tractable, \
    exact_log_partition, log_likelihood
from neuralsmith.runfolder import RunFolder, write_json
from neuralsmith.settings import check_count

log = logging.getLogger(__name__)

BINARIZE = ("none", "threshold", "stochastic")


@dataclass(frozen=True)
class Config:
    """The settings of one ``pretrain rbm`` run (written to ``config.toml``); checked on creation.

    ``train`` is the RBM family's :class:`~neuralsmith.rbm.learning.Settings` (the home of its
    defaults); this command starts from 20 epochs of PCD.
    """

    kind: ClassVar[str] = "rbm"
    data: str = "digits"
    hidden: int = 500
    visible: str = "bernoulli"
    hidden_units: str = "bernoulli"
    binarize: str = "none"
    validation: float = 0.1
    seed: int = 0
    device: str = "auto"
    train: Settings = field(default_factory=lambda: Settings(epochs=20, method="pcd"))

    def __post_init__(self) -> None:
        if self.binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE)}; got {self.binarize!r}")
        if not 0.0 <= self.validation < 1.0:
            raise ValueError(f"validation must be a fraction in [0, 1); got {self.validation:g}")
        check_count("hidden", self.hidden, 1, "hidden units")
        self.check_size(1)
        seeds.resolve_seed(self.seed)
        resolve_device(self.device)
        units.get(self.visible, "visible")
        units.get(self.hidden_units, "hidden")
        self._check_tempering()

    def _check_tempering(self) -> None:
        """Parallel tempering's sweeps need Bernoulli hidden units, and beta > 0 for Gaussian visibles."""
        if self.train.method != "pt":
            return
        if self.hidden_units != "bernoulli":
            raise ValueError("method pt tempers Bernoulli hidden units only; use --hidden-units "
                             f"bernoulli or another method (got {self.hidden_units!r})")
        if self.visible == "gaussian" and self.train.tempering_base != "uniform":
            raise ValueError("--tempering-base data needs Bernoulli visible units (base rates "
                             "of pixels); use --tempering-base uniform with --beta-min > 0")
        if self.visible == "gaussian" and float(self.train.betas()[0]) == 0.0:
            raise ValueError("Gaussian visible units have no distribution at beta = 0: give "
                             "--beta-min > 0 (e.g. 0.01) with --method pt")

    def check_size(self, n_visible: int) -> None:
        """Refuse an RBM on ``n_visible`` inputs too large for memory (:mod:`neuralsmith.limits`)."""
        limits.check_network([n_visible, self.hidden], "the RBM", self.train.batch_size)


def load_data(config: Config) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The data set and its train / validation / test rows, as the RBM sees them.

    Gaussian visibles get the rows standardized with the training mean and standard deviation.
    """
    binarize = None if config.binarize == "none" else config.binarize
    ds = data_api.load(config.data, binarize=binarize, validation=config.validation, seed=config.seed)
    x_train, x_valid, x_test = ds.x_train, ds.x_valid, ds.x_test
    if config.visible == "gaussian":
        mean, std = x_train.mean(0), x_train.std(0).clamp(min=1e-3)
        x_train, x_valid, x_test = ((x - mean) / std for x in (x_train, x_valid, x_test))
    return ds, x_train, x_valid, x_test


def run(config: Config, out: str | os.PathLike, *, mode: str = "new",
        progress: bool = True, tensorboard: Any = None) -> dict[str, Any]:
    """Train an RBM into run folder ``out`` (``mode``: new, resume or overwrite).

    A resumed run continues from the folder's last checkpoint and ends as an uninterrupted one.
    Every epoch also goes to ``RUN/metrics.jsonl`` and, with ``tensorboard`` (a
    :class:`~neuralsmith.tracking.TensorBoard` or a folder), to TensorBoard.

    Returns:
        The results written to results.json.
    """
    device = resolve_device(config.device)
    ds, x, x_valid, _ = load_data(config)
    config.check_size(x.shape[1])
    with open_run(out, config, mode) as run_:
        g = seeds.generator(config.seed, device)
        rbm = RBM.from_data(x.to(device), config.hidden, visible=config.visible,
                            hidden=config.hidden_units, generator=g)
        start = time.perf_counter()
        track = tracking.for_run(run_, tensorboard, image_shape=ds.image_shape)
        history = train(rbm, x, **dataclasses.asdict(config.train),
                        x_valid=x_valid if len(x_valid) else None, generator=g,
                        callbacks=[run_.log_metrics, track], checkpoint_dir=run_.checkpoints,
                        progress=progress)
        run_.write_metrics(history.rows)  # whole, also after a resume
        track.close()
        rbm_model.save(rbm, run_.checkpoints, "model", {"data": ds.info()})
        _figures(run_, rbm, ds.image_shape, g)
        results = {"final": history.rows[-1] if history.rows else {}, "epochs": len(history),
                   "diverged": history.diverged, "stopped_early": history.stopped_early,
                   "seconds": round(time.perf_counter() - start, 3), "device": str(device),
                   "data": ds.info(), "rbm": rbm.config()}
        run_.write_results(results, seed=config.seed)
    return results


def _figures(run: RunFolder, rbm: RBM, image_shape: tuple[int, int], g: torch.Generator) -> None:
    """Filters (weight rows as images) and model samples (1000 Gibbs steps from the biases)."""
    filters = rbm.weight.detach()[:100]
    plots.save(plots.image_grid(filters, image_shape, "filters (first 100 hidden units)"),
               run.figures / "filters.png")
    with torch.no_grad():
        v = rbm.sample(64, steps=999, generator=g)
        means = rbm.visible_probs(rbm.sample_hidden(v, g))
    plots.save(plots.image_grid(means, image_shape, "samples (1000 Gibbs steps)",
                                normalize=rbm.visible_units.name != "bernoulli"),
               run.figures / "samples.png")


def evaluate(run_dir: Path, config: Config, *, ais: bool = False, ais_runs: int = 100,
             ais_steps: int = 14500, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Score a trained run on its test set: reconstruction error, free energy, log-likelihood.

    The exact log-likelihood is reported when a binary layer has at most 24 units; with
    ``ais`` also the AIS estimate of log Z (base rates of the training data) and the test
    log-likelihood it implies. The result is also written to ``RUN/evaluation.json``.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no trained model.
    """
    rbm = _load_model(run_dir / "checkpoints").to(resolve_device(device))
    _, x_train, _, x_test = load_data(config)
    x_train, x_test = (x.to(rbm.weight.device, rbm.weight.dtype) for x in (x_train, x_test))
    with torch.no_grad():
        out: dict[str, Any] = {"kind": config.kind, "n_test": len(x_test),
                               "reconstruction_error": reconstruction_error(rbm, x_test),
                               "free_energy": float(rbm.free_energy(x_test).mean())}
    out.update(_likelihoods(rbm, x_train, x_test, config, ais, ais_runs, ais_steps, seed))
    write_json(run_dir / "evaluation.json", out)
    return out


def sample(run_dir: Path, config: Config, settings: SampleSettings) -> dict[str, Any]:
    """Sample the run's RBM by Gibbs or parallel tempering (:func:`neuralsmith.experiments.sampling.draw`).

    Shown are :math:`E[v \\mid h]` of the chains' last hidden draws; class mixing is judged
    by a classifier fitted on the run's training data (as the RBM saw it).

    Raises:
        FileNotFoundError: ``run_dir`` holds no trained RBM.
    """
    rbm = _load_model(run_dir / "checkpoints").to(resolve_device(settings.device))
    ds, x_train, _, _ = load_data(config)

    def decode(v: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return rbm.visible_probs(rbm.sample_hidden(v, g))

    target = Target(rbm, decode, tuple(ds.image_shape), normalize=rbm.visible_units.name != "bernoulli",
                    title="RBM samples", base_data=x_train)
    return draw(run_dir, target, settings, (x_train, ds.y_train, ds.n_classes))


def _load_model(folder: Path) -> RBM:
    for name in ("model", "last"):  # "last" when training was interrupted
        if (folder / f"{name}.json").is_file():
            return rbm_model.load(folder, name)
    raise FileNotFoundError(f"{folder}: no trained RBM (model or last checkpoint); run "
                            "`neuralsmith pretrain rbm --out RUN` first")


def _likelihoods(rbm: RBM, x_train: torch.Tensor, x_test: torch.Tensor, config: Config,
                 ais: bool, ais_runs: int, ais_steps: int, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    binary_data = config.binarize != "none" and rbm.visible_units.binary
    if not binary_data:
        out["log_likelihood_note"] = "needs Bernoulli visibles on binarized data (--binarize)"
        return out
    if exact_is_tractable(rbm):
        log_z = exact_log_partition(rbm)
        out.update(exact_log_z=log_z, exact_test_log_likelihood=log_likelihood(rbm, x_test, log_z))
    if ais:
        g = torch.Generator(rbm.weight.device).manual_seed(seed)
        est = ais_log_partition(rbm, n_runs=ais_runs, betas=default_betas(ais_steps),
                                data=x_train, generator=g)
        out.update(ais_log_z=est.log_z, ais_log_z_std=est.std, ais_log_z_lower=est.lower,
                   ais_log_z_upper=est.upper,
                   ais_test_log_likelihood=log_likelihood(rbm, x_test, est.log_z))
    return out
