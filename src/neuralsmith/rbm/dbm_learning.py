r"""Learning a Deep Boltzmann Machine: greedy pre-training, then joint training (Salakhutdinov & Hinton, 2009).

**Greedy pre-training** (section 3.1) trains one RBM per layer, bottom up, each on the
hidden probabilities of the one below, with the paper's modifications so that the composed
DBM does not count the evidence twice:

* the first RBM has its visible layer doubled (two tied copies of v): :math:`2W_1` up,
  :math:`W_1` down;
* the last RBM has its hidden layer doubled: :math:`W_L` up, :math:`2W_L` down;
* a middle RBM is an ordinary RBM whose weights stand for :math:`2W_l` both ways: they are
  halved when the DBM is composed.

A doubled layer is two tied copies, so each such RBM is an ordinary RBM on the copies whose
weight blocks (and biases) are kept equal: :class:`TiedCopies` runs the RBM family's CD
updater (:class:`~neuralsmith.rbm.learning.CDUpdater`) and averages the copies after every
update, which is the tied model's update (the gradient of a tied weight is the mean of its
copies' gradients, as the learning rate counts it here).

**Joint training** (section 3.2) ascends the variational lower bound: the data-dependent
statistics come from mean field, the model's from persistent Gibbs chains (stochastic
approximation, PCD/SML: Younes 1989, Tieleman 2008),

.. math::
    \Delta W_l = \epsilon_t\big(\langle \mu_l \mu_{l-1}^\top \rangle_{\text{data}}
        - \langle s_l s_{l-1}^\top \rangle_{\text{chains}} - \lambda W_l\big),

with the paper's schedule: 100 persistent chains ("fantasy particles"), 5 Gibbs sweeps of
them per update, an initial learning rate of 0.005 decreased to 0 (linearly over the
epochs here). :class:`JointUpdater` runs it through the one training engine
:func:`neuralsmith.loop.fit` (checkpoint, resume, divergence roll-back).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Generator, Tensor

from neuralsmith import checkpoint, stack
from neuralsmith.loop import History, ShuffledEpochs, fit
from neuralsmith.rbm.dbm import DBM
from neuralsmith.rbm.learning import CDUpdater, Momentum, check_data
from neuralsmith.rbm.learning import Settings as RBMSettings
from neuralsmith.rbm.model import RBM
from neuralsmith.seeds import resolve_generator
from neuralsmith.settings import check_count
from neuralsmith.train import SCHEDULES, lr_at


@dataclass(frozen=True)
class Settings:
    """How a DBM is trained: greedy pre-training, then joint training; checked on creation.

    Attributes:
        pretrain_epochs: CD-1 passes over the data per layer RBM (0: no pre-training).
        pretrain_lr: learning rate of the layer RBMs.
        epochs: joint-training passes over the data (0: the composed pre-trained DBM).
        lr: initial joint learning rate (paper: 0.005).
        schedule: the joint learning rate over the epochs (paper: decreased to 0, ``linear``).
        batch_size: examples per update (both phases; paper: 100).
        n_chains: persistent Gibbs chains of the joint phase (paper: 100).
        k: Gibbs sweeps of the chains per joint update (paper: 5).
        mf_iters: mean-field sweeps per joint update (at most; stops earlier at a fixed point).
        momentum: of every update.
        weight_decay: L2 decay of the weights (lambda).
        monitor_size: training examples each epoch's numbers are computed on.

    Example:
        >>> Settings(epochs=2).lr_at(1)  # half-way down the linear decay
        0.0025
    """

    pretrain_epochs: int = 10
    pretrain_lr: float = 0.05
    epochs: int = 10
    lr: float = 0.005
    schedule: str = "linear"
    batch_size: int = 100
    n_chains: int = 100
    k: int = 5
    mf_iters: int = 10
    momentum: float = 0.5
    weight_decay: float = 2e-4
    monitor_size: int = 1000

    def __post_init__(self) -> None:
        check_count("pretrain_epochs", self.pretrain_epochs, 0, "passes per layer RBM; 0: none")
        check_count("epochs", self.epochs, 0, "joint-training passes; 0: none")
        for name, what in (("batch_size", "examples per update"), ("n_chains", "persistent chains"),
                           ("k", "Gibbs sweeps per update"), ("mf_iters", "mean-field sweeps"),
                           ("monitor_size", "examples scored each epoch")):
            check_count(name, getattr(self, name), 1, what)
        for name in ("lr", "pretrain_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number; got {value!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (0.5 to 0.9 is usual); got {self.momentum}")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0 (2e-4 is usual); got {self.weight_decay}")

    def lr_at(self, epoch: int) -> float:
        """The joint learning rate of (0-based) ``epoch`` (:func:`neuralsmith.train.lr_at`)."""
        return lr_at(epoch, self.epochs, self.lr, self.schedule)

    def layer_settings(self) -> RBMSettings:
        """What each layer RBM is trained with: CD-1 for ``pretrain_epochs``."""
        return RBMSettings(epochs=max(1, self.pretrain_epochs), batch_size=self.batch_size,
                           lr=self.pretrain_lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, monitor_size=self.monitor_size)

    def resume_key(self) -> dict[str, Any]:
        """The settings a resumed joint phase must share (all but its epochs)."""
        return {k: v for k, v in asdict(self).items() if k != "epochs"}


# --- greedy pre-training -------------------------------------------------------------------------


def copies(l: int, n_layers: int) -> tuple[int, int]:
    """(visible copies, hidden copies) of layer RBM ``l`` (0-based) of an ``n_layers`` DBM.

    Example:
        >>> [copies(l, 3) for l in range(3)], copies(0, 1)
        ([(2, 1), (1, 1), (1, 2)], (1, 1))
    """
    if n_layers == 1:
        return 1, 1
    return (2 if l == 0 else 1), (2 if l == n_layers - 1 else 1)


def doubled_rbm(dbm: DBM, l: int, generator: Generator) -> RBM:
    """Layer ``l``'s RBM with its copies, the weight blocks equal (one N(0, 0.01^2) draw, tiled)."""
    vc, hc = copies(l, dbm.n_layers)
    n_in, n_out = dbm.sizes[l], dbm.sizes[l + 1]
    w = dbm.weights[0]
    rbm = RBM(vc * n_in, hc * n_out, visible=dbm.units[l].name, generator=generator,
              dtype=w.dtype, device=w.device)
    with torch.no_grad():
        rbm.weight.copy_(rbm.weight[:n_out, :n_in].repeat(hc, vc))
    return rbm


class TiedCopies(CDUpdater):
    """CD on an RBM whose visible and/or hidden layer is ``copies`` tied copies of one layer.

    After each update of :class:`~neuralsmith.rbm.learning.CDUpdater` the copies' weight
    blocks, biases and momentum buffers are replaced by their means, so they stay equal.
    """

    def __init__(self, rbm: RBM, x: Tensor, settings: RBMSettings, generator: Generator,
                 copies: tuple[int, int]):
        self.copies = copies
        super().__init__(rbm, x.repeat(1, copies[0]), None, settings, generator)

    def step(self, v0: Tensor) -> None:
        super().step(v0)
        self.tie()

    @torch.no_grad()
    def tie(self) -> None:
        """Average the copies of every parameter and momentum buffer, in place."""
        buffers = {**self.params, **self.momentum.tensors()}
        for name, t in buffers.items():
            param = name.rsplit(".", 1)[-1]
            shape = {"weight": (self.copies[1], -1, self.copies[0], t.shape[-1] // self.copies[0]),
                     "visible_bias": (self.copies[0], -1), "hidden_bias": (self.copies[1], -1)}[param]
            view = t.view(shape)
            view.copy_(view.mean(dim=(0, 2) if param == "weight" else 0, keepdim=True).expand_as(view))

    def label(self) -> str:
        vc, hc = self.copies
        return f"DBM layer RBM (visible x{vc}, hidden x{hc})"


def compose(dbm: DBM, rbms: list[RBM]) -> DBM:
    """Put the layer RBMs into ``dbm``: weights (middle ones halved) and biases, in place.

    A hidden layer between two RBMs takes the mean of its two biases (the hidden bias of the
    RBM below, the visible bias of the one above).
    """
    L = dbm.n_layers
    with torch.no_grad():
        for l, rbm in enumerate(rbms):
            n_in, n_out = dbm.sizes[l], dbm.sizes[l + 1]
            scale = 0.5 if 0 < l < L - 1 else 1.0  # middle RBMs stand for 2 W both ways
            dbm.weights[l].copy_(rbm.weight[:n_out, :n_in] * scale)
        dbm.biases[0].copy_(rbms[0].visible_bias[:dbm.sizes[0]])
        dbm.biases[L].copy_(rbms[-1].hidden_bias[:dbm.sizes[L]])
        for l in range(1, L):
            n = dbm.sizes[l]
            dbm.biases[l].copy_((rbms[l - 1].hidden_bias[:n] + rbms[l].visible_bias[:n]) / 2)
    return dbm


def greedy_pretrain(dbm: DBM, x: Tensor, settings: Settings, *, generator: Generator | None = None,
                    checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                    callbacks: Iterable[Callable[[dict[str, Any]], Any]] = ()) -> list[list[dict[str, Any]]]:
    r"""Pre-train ``dbm`` layer by layer with the paper's doubled RBMs, then compose it (in place).

    RBM l trains on :math:`E[h^l \mid \text{input}]` of the RBM below (its doubled input
    included: :math:`\sigma(b_1 + 2 W_1 v)` after the first). With ``checkpoint_dir`` each
    layer's epochs are checkpointed (``layer-<l>-epochs/``) and each finished layer saved
    (``layer-<l>``, :func:`neuralsmith.stack.greedy_pretrain`), so a killed run resumes where
    it was, bit for bit.

    Returns:
        One history (list of epoch records) per layer.
    """
    generator = resolve_generator(generator, dbm.weights[0].device)
    x = check_data(_Visible(dbm), x, "x")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    rbms = [doubled_rbm(dbm, l, generator) for l in range(dbm.n_layers)]
    layer_settings = settings.layer_settings()

    def train_layer(l: int, rbm: RBM, inputs: Tensor) -> list[dict[str, Any]]:
        vc = copies(l, dbm.n_layers)[0]
        if l == 0:
            rbm.init_biases_(inputs.repeat(1, vc))  # visible biases log(p / (1 - p)) (Hinton 2010)
        updater = TiedCopies(rbm, inputs, layer_settings, generator, copies(l, dbm.n_layers))
        return fit(updater, epochs=settings.pretrain_epochs, callbacks=callbacks, progress=progress,
                   checkpoint_dir=folder / f"layer-{l}-epochs" if folder else None).rows

    def represent(rbm: RBM, inputs: Tensor) -> Tensor:
        l = next(i for i, r in enumerate(rbms) if r is rbm)
        vc = copies(l, dbm.n_layers)[0]
        return rbm.hidden_probs(inputs.repeat(1, vc))[:, :dbm.sizes[l + 1]]  # one hidden copy

    histories = stack.greedy_pretrain(rbms, x, train_layer, represent, folder, generator)
    compose(dbm, rbms)
    return histories


class _Visible:
    """The bottom layer of a DBM as :func:`~neuralsmith.rbm.learning.check_data` reads it."""

    def __init__(self, dbm: DBM):
        self.n_visible, self.weight, self.visible_units = dbm.sizes[0], dbm.weights[0], dbm.units[0]


# --- joint training ---------------------------------------------------------------------------


class JointUpdater(ShuffledEpochs):
    """Mean field for the data, persistent chains for the model: the DBM updater of :func:`neuralsmith.loop.fit`."""

    def __init__(self, dbm: DBM, x: Tensor, settings: Settings, generator: Generator):
        self.model = self.dbm = dbm
        self.x, self.settings, self.generator = x, settings, generator
        self.epoch = 0
        self.params = dict(dbm.named_parameters())  # weights.<l-1>, biases.<l>
        self.momentum = Momentum(self.params, settings.momentum)
        self.chains = list(dbm.init_state(settings.n_chains, generator))

    def step(self, v: Tensor) -> None:
        """One update from the data batch ``v`` (batch, n_visible)."""
        dbm, s = self.dbm, self.settings
        data = [v, *dbm.mean_field(v, s.mf_iters)]
        state = tuple(self.chains)
        for _ in range(s.k):
            state = dbm.gibbs_sweep(state, generator=self.generator)
        self.chains = list(state)
        lr = s.lr_at(self.epoch)
        for l in range(len(dbm.sizes)):
            grad = (dbm.units[l].bias_stat(data[l], dbm.biases[l]).mean(0)
                    - dbm.units[l].bias_stat(state[l], dbm.biases[l]).mean(0))
            self.momentum.step(f"biases.{l}", grad, lr)
        for l in range(1, len(dbm.sizes)):
            w = dbm.weights[l - 1]
            grad = data[l].t() @ data[l - 1] / len(v)  # (n_l, n_{l-1})
            grad.addmm_(state[l].t(), state[l - 1], alpha=-1.0 / len(state[0])).add_(w, alpha=-s.weight_decay)
            self.momentum.step(f"weights.{l - 1}", grad, lr)

    # --- the updater protocol of neuralsmith.loop ---------------------------------------------

    def monitor(self) -> dict[str, Any]:
        r"""Mean-field reconstruction error and :math:`E_q[E] - \mathcal{H}(q)` on fixed training rows.

        The second is the variational free energy without :math:`\log Z` (which moves as the
        model learns): a progress signal, not a likelihood.
        """
        from neuralsmith.rbm.dbm_ais import variational_bound

        v = self.x[:self.settings.monitor_size]
        mu = self.dbm.mean_field(v, self.settings.mf_iters)
        recon = self.dbm.conditional([None, mu[0]], 0)  # E[v | h1 = mu_1]
        bound = variational_bound(self.dbm, v, 0.0, n_iter=self.settings.mf_iters)
        return {"reconstruction_error": float((v - recon).square().mean()),
                "variational_free_energy": float(-bound.mean())}

    def finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in [*self.params.values(), *self.chains])

    def tensors(self) -> dict[str, Tensor]:
        out = {f"dbm.{k}": v for k, v in self.dbm.state_dict().items()}
        out.update(self.momentum.tensors())
        out.update({f"chain.{l}": s for l, s in enumerate(self.chains)})
        out["generator"] = checkpoint.generator_state(self.generator)
        return {k: v.detach().clone() for k, v in out.items()}

    @torch.no_grad()
    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.dbm.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("dbm.")})
        self.momentum.load_tensors(tensors)
        self.chains = [tensors[f"chain.{l}"].to(s).clone() for l, s in enumerate(self.chains)]
        checkpoint.restore_generator(self.generator, tensors["generator"])

    def meta(self) -> dict[str, Any]:
        return {"settings": self.settings.resume_key(), "dbm": self.dbm.config()}

    def label(self) -> str:
        return f"DBM joint (PCD-{self.settings.k}, {self.settings.n_chains} chains)"

    def summary(self, row: dict[str, Any]) -> str:
        return f"rec {row['reconstruction_error']:.4f} VFE {row['variational_free_energy']:.2f}"


def train_joint(dbm: DBM, x: Tensor, settings: Settings, *, generator: Generator | None = None,
                checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                callbacks: Iterable[Callable[[dict[str, Any]], Any]] = ()) -> History:
    """Train ``dbm`` jointly (in place) for ``settings.epochs`` (see the module docstring).

    With ``checkpoint_dir`` every epoch is checkpointed and a rerun resumes there, bit for bit.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.bernoulli(torch.full((30, 6), 0.3), generator=g)
        >>> dbm = DBM([6, 4, 3], generator=g)
        >>> hist = train_joint(dbm, x, Settings(epochs=2, batch_size=10, n_chains=10), generator=g, progress=False)
        >>> len(hist), hist.diverged
        (2, False)
    """
    x = check_data(_Visible(dbm), x, "x")
    updater = JointUpdater(dbm, x, settings, resolve_generator(generator, x.device))
    return fit(updater, epochs=settings.epochs, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
               progress=progress)


def train(dbm: DBM, x: Tensor, settings: Settings, *, generator: Generator | None = None,
          checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
          callbacks: Iterable[Callable[[dict[str, Any]], Any]] = ()) -> tuple[list[list[dict[str, Any]]], History]:
    """Greedy pre-training (if ``pretrain_epochs``), then joint training (if ``epochs``), in place.

    Checkpoints go to ``checkpoint_dir`` (the layers) and ``checkpoint_dir/joint`` (the joint phase).

    Returns:
        The per-layer pre-training histories and the joint-training history.
    """
    generator = resolve_generator(generator, dbm.weights[0].device)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    layers: list[list[dict[str, Any]]] = []
    if settings.pretrain_epochs:
        layers = greedy_pretrain(dbm, x, settings, generator=generator, checkpoint_dir=folder,
                                 progress=progress, callbacks=callbacks)
    joint = History()
    if settings.epochs:
        joint = train_joint(dbm, x, settings, generator=generator, progress=progress, callbacks=callbacks,
                            checkpoint_dir=folder / "joint" if folder else None)
    return layers, joint
