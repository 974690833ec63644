"""``neuralsmith pretrain dbm``, evaluating a DBM run (``evaluate RUN --ais``) and sampling from it.

A run trains a Deep Boltzmann Machine (Salakhutdinov & Hinton 2009): greedy pre-training of
the paper's doubled RBMs, then joint training (mean field + persistent chains), both by
:mod:`neuralsmith.rbm.dbm_learning`, whose :class:`~neuralsmith.rbm.dbm_learning.Settings` is
the one home of the training defaults. The run folder holds config.toml, metrics.csv (one row
per phase and epoch: ``phase`` is ``layer-<l>`` or ``joint``), ``checkpoints/stack.*`` (the DBM,
safetensors + JSON, a stack of kind ``dbm``: ``finetune RUN`` starts from it), the checkpoints
a killed run resumes from (``--resume``), ``figures/filters.png``, ``figures/samples.png`` and
results.json.

Example:
    >>> Config().train.n_chains, Config().arch
    (100, (500, 1000))
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from neuralsmith import data as data_api
from neuralsmith import experiments, limits, plots, seeds, tracking
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run
from neuralsmith.rbm import units
from neuralsmith.experiments.sampling import SampleSettings, Target, draw
from neuralsmith.rbm.dbm import DBM, MAX_ENUMERATED, Chains, exact_log_partition, log_likelihood
from neuralsmith.rbm.dbm_ais import ais_log_partition, variational_bound
from neuralsmith.rbm.dbm_learning import Settings, train
from neuralsmith.rbm.partition import default_betas
from neuralsmith.runfolder import RunFolder, write_json
from neuralsmith.settings import check_count
from neuralsmith.stack import load_stack, save_stack

BINARIZE = ("none", "threshold", "stochastic")
FIGURE_SWEEPS = 1000  # Gibbs sweeps behind figures/samples.png


@dataclass(frozen=True)
class Config:
    """The settings of one ``pretrain dbm`` run (written to ``config.toml``); checked on creation.

    ``arch`` is the hidden sizes (the paper's MNIST DBM: 500-1000); ``visible`` is
    ``bernoulli`` or ``gaussian`` (the data then standardized with the training mean and std).
    """

    kind: ClassVar[str] = "dbm"
    data: str = "digits"
    arch: tuple[int, ...] = (500, 1000)
    visible: str = "bernoulli"
    binarize: str = "none"
    seed: int = 0
    device: str = "auto"
    train: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        if self.binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE)}; got {self.binarize!r}")
        if not self.arch or any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in self.arch):
            raise ValueError(f"arch must be hidden sizes >= 1, as in 500-1000; got {list(self.arch)}")
        if self.train.pretrain_epochs == 0 and self.train.epochs == 0:
            raise ValueError("pretrain_epochs and epochs are both 0: nothing would train; give one "
                             "of them >= 1")
        units.get(self.visible, "visible")
        seeds.resolve_seed(self.seed)
        resolve_device(self.device)
        self.check_size(1)

    def check_size(self, n_in: int) -> None:
        """Refuse a DBM on ``n_in`` inputs too large for memory (:mod:`neuralsmith.limits`)."""
        limits.check_network([n_in, *self.arch], "the DBM", max(self.train.batch_size, self.train.n_chains))


def load_data(config: Config) -> data_api.Dataset:
    """The run's data set, binarized as its config says; standardized for Gaussian visibles."""
    binarize = None if config.binarize == "none" else config.binarize
    ds = data_api.load(config.data, binarize=binarize, seed=config.seed)
    if config.visible == "gaussian":
        mean, std = ds.x_train.mean(0), ds.x_train.std(0).clamp(min=1e-3)
        ds = dataclasses.replace(ds, x_train=(ds.x_train - mean) / std, x_test=(ds.x_test - mean) / std)
    return ds


def run(config: Config, out: str | os.PathLike, *, mode: str = "new", progress: bool = True,
        tensorboard: Any = None) -> dict[str, Any]:
    """Train the DBM ``config`` describes into run folder ``out`` (``mode``: new, resume or overwrite).

    The initial weights come from a CPU generator seeded with the run's seed (the same start on
    every device); training draws from a generator on the device with that seed. A resumed run
    continues at the layer, phase and epoch it had reached and ends as an uninterrupted one.

    Returns:
        The results written to results.json.
    """
    device = resolve_device(config.device)
    ds = load_data(config)
    config.check_size(ds.n_features)
    with open_run(out, config, mode) as run_:
        start = time.perf_counter()
        init = seeds.generator(config.seed)
        g = init if device.type == "cpu" else seeds.generator(config.seed, device)
        dbm = DBM([ds.n_features, *config.arch], visible=config.visible, generator=init).to(device)
        layers, joint = train(dbm, ds.x_train.to(device), config.train, generator=g,
                              checkpoint_dir=run_.checkpoints, progress=progress)
        rows = [{"phase": f"layer-{l + 1}", **row} for l, h in enumerate(layers) for row in h]
        run_.write_metrics(rows + [{"phase": "joint", **row} for row in joint.rows])
        track = tracking.for_run(run_, tensorboard, image_shape=ds.image_shape)  # once training is done
        track.replay([(l + 1, h) for l, h in enumerate(layers)]
                     + [("joint", [{"phase": "joint", **row} for row in joint.rows])])
        track.close()
        save_stack(dbm, run_.checkpoints, {"data": config.data, "binarize": config.binarize,
                                           "dataset": ds.info(), "image_shape": list(ds.image_shape)})
        _figures(run_, dbm, ds.image_shape, seeds.generator(config.seed, device))
        results = {"kind": "dbm", "sizes": dbm.sizes, "pretrain_epochs": [len(h) for h in layers],
                   "joint_epochs": len(joint), "diverged": joint.diverged,
                   "final": joint.rows[-1] if joint.rows else (layers[-1][-1] if layers else {}),
                   "seconds": round(time.perf_counter() - start, 3), "device": str(device),
                   "data": ds.info()}
        run_.write_results(results, seed=config.seed)
    return results


def gibbs_draw(dbm: DBM, n: int, gibbs_sweeps: int, generator: torch.Generator) -> torch.Tensor:
    r"""``n`` visible means :math:`E[v \mid h^1]` after ``gibbs_sweeps`` sweeps from random states."""
    with torch.no_grad():
        state = dbm.init_state(n, generator)
        for _ in range(gibbs_sweeps):
            state = dbm.gibbs_sweep(state, generator=generator)
        return dbm.conditional([None, state[1]], 0)


def _figures(run: RunFolder, dbm: DBM, image_shape: tuple[int, int], g: torch.Generator) -> None:
    """First-layer filters, and 100 samples (1000 Gibbs sweeps)."""
    plots.save(plots.image_grid(dbm.weights[0].detach()[:100].cpu(), image_shape, "dbm: first-layer filters"),
               run.figures / "filters.png")
    _samples(dbm, image_shape, run.figures / "samples.png", 100, FIGURE_SWEEPS, g)


def _samples(dbm: DBM, image_shape: tuple[int, int], path: Path, n: int, gibbs_steps: int,
             generator: torch.Generator) -> Path:
    x = gibbs_draw(dbm, n, gibbs_steps, generator).cpu()
    fig = plots.image_grid(x, tuple(image_shape), f"DBM samples ({gibbs_steps} Gibbs sweeps)",
                           normalize=dbm.visible != "bernoulli")
    return plots.save(fig, path)


def load_model(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> DBM:
    """The trained DBM of a dbm run folder.

    Raises:
        FileNotFoundError: the run did not finish (no ``checkpoints/stack``).
    """
    model, _ = load_stack(Path(run_dir) / "checkpoints")
    return model.to(device)


def sample(run_dir: Path, config: Config, settings: SampleSettings) -> dict[str, Any]:
    """Sample a DBM run by Gibbs sweeps or parallel tempering (:func:`neuralsmith.experiments.sampling.draw`).

    The chains run over every layer (:class:`neuralsmith.rbm.dbm.Chains`, odd layers then
    even); the figure shows :math:`E[v \\mid \\mu^1]`, with :math:`\\mu^1` the mean-field posterior of
    the first hidden layer given each chain's visible state.

    Raises:
        FileNotFoundError: ``run_dir`` holds no finished DBM.
        ValueError: ``tempering_base="data"`` (a DBM tempers towards the uniform distribution).
    """
    if settings.tempering_base != "uniform":
        raise ValueError("a DBM tempers towards the uniform distribution; drop --tempering-base data")
    dbm = load_model(run_dir, resolve_device(settings.device))
    ds = load_data(config)

    def decode(v: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return dbm.conditional([None, dbm.mean_field(v)[0]], 0)

    target = Target(Chains(dbm), decode, tuple(ds.image_shape), title="DBM samples")
    return draw(Path(run_dir), target, settings, (ds.x_train, ds.y_train, ds.n_classes))


def evaluate(run_dir: Path, config: Config, *, ais: bool = False, ais_runs: int = 100,
             ais_steps: int = 14500, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    r"""Score a DBM run on its own test set.

    Always: the mean-field reconstruction error and variational free energy
    :math:`E_q[E] - \mathcal{H}(q)` (no :math:`\log Z`). Where one parity of layers holds at
    most 24 units, the exact :math:`\log Z` and the exact mean-field lower bound on the test
    log-likelihood (and the exact test log-likelihood, when the even hidden layers are that
    small). With ``ais``: the AIS estimate of :math:`\log Z` (``ais_runs`` runs, ``ais_steps``
    temperatures spaced as the paper's, base rates of the training data) and the paper's
    estimate of the test log-likelihood, the mean-field bound with it. Likelihoods need
    Bernoulli visibles on binarized data. The result is also written to ``RUN/evaluation.json``.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no trained DBM.
    """
    target = resolve_device(device)
    dbm = load_model(run_dir, target)
    ds = load_data(config)
    x_train, x_test = (x.to(target, dbm.weights[0].dtype) for x in (ds.x_train, ds.x_test))
    bound0 = variational_bound(dbm, x_test, 0.0)
    with torch.no_grad():
        mu1 = dbm.mean_field(x_test)[0]
        recon = float((x_test - dbm.conditional([None, mu1], 0)).square().mean())
    out: dict[str, Any] = {"kind": "dbm", "n_test": len(x_test), "reconstruction_error": recon,
                           "variational_free_energy": float(-bound0.mean())}
    if config.binarize == "none" or config.visible != "bernoulli":
        out["log_likelihood_note"] = "needs Bernoulli visibles on binarized data (--binarize)"
    else:
        out.update(_likelihoods(dbm, x_train, x_test, float(bound0.mean()), ais, ais_runs, ais_steps, seed))
    write_json(Path(run_dir) / "evaluation.json", out)
    return out


def _likelihoods(dbm: DBM, x_train: torch.Tensor, x_test: torch.Tensor, bound0: float, ais: bool,
                 ais_runs: int, ais_steps: int, seed: int) -> dict[str, Any]:
    """Exact log Z and bound where enumerable; AIS log Z and the bound with it if asked."""
    out: dict[str, Any] = {}
    if min(sum(dbm.sizes[0::2]), sum(dbm.sizes[1::2])) <= MAX_ENUMERATED:
        log_z = exact_log_partition(dbm)
        out.update(exact_log_z=log_z, exact_test_log_likelihood_bound=bound0 - log_z)
        if sum(dbm.sizes[2::2]) <= MAX_ENUMERATED and len(x_test) * 2 ** sum(dbm.sizes[2::2]) <= 2**26:
            out["exact_test_log_likelihood"] = log_likelihood(dbm, x_test, log_z)
    if ais:
        g = seeds.generator(seed, dbm.weights[0].device)
        est = ais_log_partition(dbm, n_runs=ais_runs, betas=default_betas(ais_steps), data=x_train, generator=g)
        out.update(ais_log_z=est.log_z, ais_log_z_std=est.std, ais_log_z_lower=est.lower,
                   ais_log_z_upper=est.upper, ais_runs=ais_runs, ais_steps=ais_steps,
                   ais_test_log_likelihood_bound=bound0 - est.log_z)
        if math.isfinite(est.lower):  # a larger log Z lowers the bound: the cautious end
            out["ais_test_log_likelihood_bound_low"] = bound0 - est.upper
    return out
