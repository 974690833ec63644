r"""Learning an RBM: CD-k, PCD, fast PCD and parallel tempering, one loop for every method and unit type.

The log-likelihood gradient of an RBM is a difference of two expectations of the free-energy
gradient,

.. math::
    \frac{\partial \log p(v)}{\partial \theta}
    = -\Big\langle \frac{\partial F}{\partial \theta} \Big\rangle_{\text{data}}
      + \Big\langle \frac{\partial F}{\partial \theta} \Big\rangle_{\text{model}},
    \qquad -\frac{\partial F}{\partial W} = E[h \mid v]\, t(v)^\top,

and the methods differ only in where the model samples come from:

* ``"cd"``: k Gibbs steps from the data (Hinton, 2002);
* ``"pcd"``: k steps of persistent chains that carry over between updates (Tieleman, 2008;
  SML, Younes, 1989);
* ``"fpcd"``: persistent chains run on the regular plus *fast* parameters, which learn with
  the same gradient but decay by 19/20 each update (Tieleman & Hinton, 2009);
* ``"pt"``: persistent chains run by parallel tempering, ``n_temperatures`` replicas of each
  at inverse temperatures from ``beta_min`` to 1 exchanging states after each of the k sweeps;
  the :math:`\beta = 1` replicas give the model samples (Desjardins et al., 2010; Cho, Raiko &
  Ilin, 2010; :mod:`neuralsmith.rbm.tempering`).

The statistics are written out (no autograd), block by block, model rows and data rows: the
hidden probabilities of both come from one GEMM over the stacked rows where the weights allow
it (PCD), and the weight gradient :math:`\langle h t(v)^\top\rangle_{\text{data}} -
\langle h t(v)^\top\rangle_{\text{model}}` is one GEMM per block, weighted :math:`\pm 1/n`,
accumulated straight into the weights (``addmm_``). CD writes its two phases into stacked row
buffers as it computes them (the model rows' t(v) negated), so its weight gradient is a single
GEMM of twice the depth, which reads and writes the weight-sized target once. With momentum
:math:`\mu` the weights take the heavy-ball form of the same update (Polyak, 1964),

.. math::
    W_{t+1} = (1 + \mu - \epsilon\lambda)\, W_t - \mu\, W_{t-1} + \epsilon\, G_t
    \quad\Big(= W_t + \Delta_{t+1},\ \Delta_{t+1} = \mu \Delta_t + \epsilon (G_t - \lambda W_t)\Big),

formed in the buffer that held :math:`W_{t-1}` (the GEMMs scale it by :math:`-\mu` as they add
:math:`\epsilon G_t`), then one pass adds :math:`W_t`: the velocity form's two passes over W
(decay into the velocity, velocity into W) become one. The learning rate :math:`\epsilon` may
decay over the epochs (``schedule``: linear or cosine to 0, :func:`neuralsmith.train.lr_at`);
both forms stay equal with :math:`\epsilon` changing between updates. A CD-1 or PCD-1 update is thus the work
of the five textbook GEMMs and one pass over the weights. As in
scikit-learn's BernoulliRBM, the persistent chains keep the hidden sample drawn at the end of
the previous update.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, NamedTuple

import torch
from torch import Generator, Tensor

from neuralsmith import checkpoint, precision as precision_mod
from neuralsmith.loop import CHECKPOINT, History, ShuffledEpochs, fit  # noqa: F401 (CHECKPOINT re-exported)
from neuralsmith.rbm import draws, tempering
from neuralsmith.rbm.model import RBM
from neuralsmith.seeds import resolve_generator
from neuralsmith.settings import check_count
from neuralsmith.train import SCHEDULES, lr_at

log = logging.getLogger(__name__)

METHODS = ("cd", "pcd", "fpcd", "pt")
TEMPERING_BASES = ("uniform", "data")  # PT's distribution at beta = 0: fair coins, or base rates
FAST_DECAY = 19 / 20  # fast weights shrink by this factor each update (Tieleman & Hinton, 2009)
SPARSITY_DECAY = 0.9  # running mean of hidden activity, q <- 0.9 q + 0.1 q_batch (Hinton, 2010)


@dataclass(frozen=True)
class Settings:
    """Everything :func:`train` needs besides the model and the data; checked on creation.

    Example:
        >>> Settings(epochs=2, method="pcd").n_chains_for(100)
        100
    """

    epochs: int
    batch_size: int = 100
    lr: float = 0.05
    k: int = 1
    method: str = "cd"
    n_chains: int | None = None
    momentum: float = 0.5
    weight_decay: float = 1e-4
    sparsity_target: float | None = None
    sparsity_cost: float = 0.1
    fast_lr: float | None = None
    monitor_size: int = 1000
    schedule: str = "constant"
    n_temperatures: int | None = None
    temperature_spacing: str = "linear"
    beta_min: float | None = None
    tempering_base: str = "uniform"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_count("epochs", self.epochs, 1, "passes over the data")
        check_count("batch_size", self.batch_size, 1, "examples per update")
        check_count("k", self.k, 1, "Gibbs steps per update")
        check_count("monitor_size", self.monitor_size, 1, "examples scored each epoch")
        _check_positive("lr", self.lr)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        self._check_chains()
        self._check_tempering()
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (0.5 to 0.9 is usual); got {self.momentum}")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0 (1e-4 is usual); got {self.weight_decay}")
        self._check_sparsity()
        precision_mod.check_precision(self.precision)
        if self.method == "pt" and self.precision != "fp32":
            raise ValueError("parallel tempering trains in fp32; give method='pcd' for "
                             f"precision={self.precision!r}, or precision='fp32' for method='pt'")

    def _check_chains(self) -> None:
        if self.n_chains is not None:
            if self.method == "cd":
                raise ValueError("n_chains applies to method='pcd', 'fpcd' or 'pt' (CD chains start "
                                 f"at each batch); got n_chains={self.n_chains} with method='cd'")
            check_count("n_chains", self.n_chains, 1, "persistent chains")
        if self.fast_lr is not None:
            if self.method != "fpcd":
                raise ValueError(f"fast_lr applies to method='fpcd'; got method={self.method!r}")
            _check_positive("fast_lr", self.fast_lr)

    def _check_tempering(self) -> None:
        for name in ("n_temperatures", "beta_min"):
            if getattr(self, name) is not None and self.method != "pt":
                raise ValueError(f"{name} applies to method='pt' (parallel tempering); got "
                                 f"{name}={getattr(self, name)} with method={self.method!r}")
        if self.n_temperatures is not None:
            check_count("n_temperatures", self.n_temperatures, 2,
                        "replicas per chain for parallel tempering; 10 is usual")
        tempering.check_spacing(self.temperature_spacing, self.beta_min)
        if self.tempering_base not in TEMPERING_BASES:
            raise ValueError(f"tempering_base must be one of {', '.join(TEMPERING_BASES)}; "
                             f"got {self.tempering_base!r}")

    def betas(self) -> Tensor:
        """Parallel tempering's inverse temperatures (:func:`neuralsmith.rbm.tempering.ladder`)."""
        return tempering.ladder(self.n_temperatures or tempering.N_TEMPERATURES,
                                self.temperature_spacing, self.beta_min)

    def _check_sparsity(self) -> None:
        if self.sparsity_target is not None and not 0.0 < self.sparsity_target < 1.0:
            raise ValueError("sparsity_target must be a fraction in (0, 1) (0.01 to 0.1 is usual);"
                             f" got {self.sparsity_target}")
        if not self.sparsity_cost >= 0.0:
            raise ValueError(f"sparsity_cost must be >= 0; got {self.sparsity_cost}")

    @property
    def persistent(self) -> bool:
        return self.method != "cd"

    def n_chains_for(self, batch_size: int) -> int:
        """How many persistent chains: ``n_chains``, or as many as a batch."""
        return self.n_chains or batch_size

    def lr_at(self, epoch: int) -> float:
        """The learning rate of (0-based) ``epoch``, as ``schedule`` says (:func:`neuralsmith.train.lr_at`)."""
        return lr_at(epoch, self.epochs, self.lr, self.schedule)

    def resume_key(self) -> dict[str, Any]:
        """The settings a resumed run must share with the interrupted one (all but epochs).

        The precision may change between the parts of a run (the state is fp32 either way).
        """
        return {k: v for k, v in asdict(self).items() if k not in ("epochs", "precision")}


def reconstruction_error(rbm: RBM, v: Tensor) -> float:
    r"""Mean squared error per unit of a mean-field reconstruction,
    :math:`\frac{1}{nD}\sum (v - E[v \mid h = E[h \mid v]])^2`.

    A cheap progress signal, not the objective (Hinton, 2010, section 5).

    Example:
        >>> rbm = RBM(4, 2)
        >>> round(reconstruction_error(rbm, torch.zeros(3, 4)), 2)  # reconstructs 0.5
        0.25
    """
    with torch.no_grad():
        r = rbm.visible_probs(rbm.hidden_probs(v))
        return float((v - r).square().mean())


class Block(NamedTuple):
    """Rows of one phase: visible states, their statistic t(v), E[h | v], and the row weight."""

    v: Tensor
    t: Tensor
    p: Tensor
    a: float


def add_statistics(target: Tensor, blocks: Iterable[Block], beta: float, alpha: float) -> Tensor:
    r""":math:`\beta\,\text{target} + \alpha \sum_{\text{blocks}} a\,p^\top t(v)`, in place.

    One ``addmm_`` a block (:func:`neuralsmith.precision.add_product`: bf16 blocks are
    multiplied in bf16 and added to the fp32 target). With ``beta = 0`` the target's old
    values are ignored, so an uninitialized buffer will do.
    """
    for k in blocks:
        precision_mod.add_product(target, k.p.t(), k.t, beta, alpha * k.a)  # (n_hidden, n_visible)
        beta = 1.0
    return target


def hidden_input(t: Tensor, w: Tensor, c: Tensor) -> Tensor:
    r"""The hidden units' total input :math:`x = t W^\top + c`, (rows, n_hidden).

    In bf16 it is formed transposed, :math:`x^\top = W t^\top + c`, and returned as a view:
    oneDNN runs both that product and the weight statistic :math:`p^\top t` that reads
    :math:`\sigma(x)` back (first operand contiguous) about 1.5x faster than in the row
    layout, and elementwise ops keep the layout. fp32 keeps the row layout (same sums, bit
    for bit, as ever).
    """
    if w.dtype != torch.bfloat16:
        return torch.addmm(c, t, w.t())
    return torch.addmm(c.unsqueeze(1), w, t.t()).t()


class Momentum:
    r"""Gradient ascent with momentum on named parameters, in the velocity or heavy-ball form.

    Every parameter takes the velocity form, :math:`\Delta \leftarrow \mu\Delta + \epsilon g`,
    :math:`\theta \leftarrow \theta + \Delta` (:meth:`step`), except those named in
    ``heavy_ball``, which keep :math:`W_{t-1}` instead of a velocity and move by
    :math:`W_{t+1} = (1 + \mu - \epsilon\lambda) W_t - \mu W_{t-1} + \epsilon G_t`
    (:meth:`heavy_ball`, Polyak 1964; the module docstring shows both are the same update).
    With :math:`\mu = 0` there is no state: :math:`\theta \leftarrow \theta + \epsilon g`.

    Example:
        >>> p = {"w": torch.zeros(2)}
        >>> m = Momentum(p, 0.5)
        >>> m.step("w", torch.ones(2), lr=1.0); m.step("w", torch.ones(2), lr=1.0)
        >>> p["w"].tolist()  # 1, then 1 + (0.5 * 1 + 1)
        [2.5, 2.5]
    """

    def __init__(self, params: dict[str, Tensor], momentum: float, heavy_ball: Iterable[str] = ()):
        self.params, self.momentum = params, momentum
        self.velocity: dict[str, Tensor] = {}
        self.previous: dict[str, Tensor] = {}  # W_{t-1} of the heavy-ball parameters
        if momentum > 0:
            self.velocity = {name: torch.zeros_like(p) for name, p in params.items()}
            for name in heavy_ball:  # W_{t-1} = W_t: no velocity yet
                self.previous[name] = self.velocity.pop(name).copy_(params[name])

    def step(self, name: str, grad: Tensor, lr: float) -> None:
        r"""Ascend parameter ``name`` along ``grad`` with learning rate ``lr`` (velocity form)."""
        p, vel = self.params[name], self.velocity.get(name)
        if vel is None:
            p.add_(grad, alpha=lr)
        else:
            p.add_(vel.mul_(self.momentum).add_(grad, alpha=lr))

    def heavy_ball(self, name: str, lr: float, weight_decay: float,
                   add_gradient: Callable[[Tensor, float, float], Tensor]) -> None:
        r"""Move parameter ``name`` (one of ``heavy_ball``) by the heavy-ball update.

        ``add_gradient(target, beta, alpha)`` forms :math:`\beta\,\text{target} + \alpha G_t`
        in place and returns the target: into the buffer of :math:`W_{t-1}` (then one pass
        adds :math:`W_t`), or straight into the weights without momentum.
        """
        w, mu = self.params[name], self.momentum
        previous = self.previous.get(name)
        if previous is None:
            add_gradient(w, 1.0 - lr * weight_decay, lr)
            return
        new = add_gradient(previous, -mu, lr)
        new.add_(w, alpha=1.0 + mu - lr * weight_decay)
        self.previous[name], w.data = w.data, new  # swap buffers: W_t becomes W_{t-1}

    def tensors(self) -> dict[str, Tensor]:
        """The state: ``velocity.NAME`` and ``previous.NAME`` tensors."""
        out = {f"velocity.{k}": v for k, v in self.velocity.items()}
        out.update({f"previous.{k}": v for k, v in self.previous.items()})
        return out

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Put a state from :meth:`tensors` back (after the parameters), in place."""
        for name, buf in self.velocity.items():
            buf.copy_(tensors[f"velocity.{name}"])
        for name, buf in self.previous.items():
            if f"previous.{name}" in tensors:
                buf.copy_(tensors[f"previous.{name}"])
            else:  # a checkpoint from the velocity form: W_{t-1} = W_t - velocity
                torch.sub(self.params[name], tensors[f"velocity.{name}"], out=buf)


class CDUpdater(ShuffledEpochs):
    """CD-k, PCD or FPCD on an RBM: the updater :func:`train` runs through :func:`neuralsmith.loop.fit`.

    It holds the training state (momentum, persistent chains, fast weights, the running
    sparsity mean, the generator) and implements the updater protocol of :mod:`neuralsmith.loop`.
    """

    def __init__(self, rbm: RBM, x: Tensor, x_valid: Tensor | None, settings: Settings,
                 generator: Generator):
        self.model = self.rbm = rbm
        self.x, self.x_valid = x, x_valid
        self.settings, self.generator = settings, generator
        self.epoch = 0
        self.params = dict(rbm.named_parameters())
        heavy = () if settings.method == "fpcd" else ("weight",)
        self.momentum = Momentum(self.params, settings.momentum, heavy)
        self.fast: dict[str, Tensor] = {}
        self.chain_h: Tensor | None = None
        self.tempering: tempering.ParallelTempering | None = None
        self._stacked: tuple[Tensor, Tensor] | None = None  # CD's row buffers, see cd_phases
        self._row_weight: tuple[tuple[int, int], Tensor] | None = None  # PCD's, in bf16
        self.sparsity_q: Tensor | None = None
        self.shadow = precision_mod.Shadow(self._compute_dtype())
        self.draws = draws.for_dtype(generator, self.shadow.dtype)  # the Gibbs draws
        self.x = x.to(self.shadow.dtype)  # binary data are exact in bf16; [0, 1] data rounded
        self._allocate()

    def _compute_dtype(self) -> torch.dtype:
        """The products' dtype: the model's, or bf16 (Bernoulli units only) where it is fast."""
        rbm, precision = self.rbm, self.settings.precision
        dtype = precision_mod.compute_dtype(precision, rbm.weight.device, rbm.weight.dtype)
        if dtype != rbm.weight.dtype and not (rbm.visible_units.name == rbm.hidden_units.name
                                              == "bernoulli"):
            raise ValueError(f"precision={precision!r} trains Bernoulli-Bernoulli RBMs; this one "
                             f"has {rbm.visible_units.name} visible and {rbm.hidden_units.name} "
                             "hidden units: use precision='fp32'")
        return dtype

    def _allocate(self) -> None:
        s, params = self.settings, self.params
        if s.method == "fpcd":
            self.fast = {name: torch.zeros_like(params[name])
                         for name in ("weight", "visible_bias", "hidden_bias")}
        n, w = s.n_chains_for(min(s.batch_size, len(self.x))), self.rbm.weight
        if s.method == "pt":  # every replica starts from v = 0, h = 0
            start = (w.new_zeros(n, self.rbm.n_visible), w.new_zeros(n, self.rbm.n_hidden))
            model = self.rbm
            if s.tempering_base == "data":
                from neuralsmith.rbm.partition import base_rate_bias

                model = tempering.BaseRate(self.rbm, base_rate_bias(self.x, self.rbm.n_visible))
            self.tempering = tempering.ParallelTempering(model, n, s.betas(), state=start,
                                                         generator=self.generator)
        elif s.persistent:  # chains start from h = 0: their first v comes from the biases
            self.chain_h = torch.zeros(n, self.rbm.n_hidden, dtype=self.shadow.dtype, device=w.device)
        if s.sparsity_target is not None:
            self.sparsity_q = torch.full_like(self.rbm.hidden_bias, s.sparsity_target)

    # --- one update -----------------------------------------------------------------------

    def products(self) -> tuple[Tensor, Tensor, Tensor]:
        """W, b, c as the products read them: the parameters, or this update's bf16 copies."""
        rbm, get = self.rbm, self.shadow.get
        return (get("weight", rbm.weight), get("visible_bias", rbm.visible_bias),
                get("hidden_bias", rbm.hidden_bias))

    def sampler(self) -> tuple[Tensor, Tensor, Tensor]:
        """The parameters the negative-phase chains run on: regular (+ fast for FPCD)."""
        rbm = self.rbm
        if not self.fast:
            return self.products()
        f, dtype = self.fast, self.shadow.dtype
        return ((rbm.weight + f["weight"]).to(dtype), (rbm.visible_bias + f["visible_bias"]).to(dtype),
                (rbm.hidden_bias + f["hidden_bias"]).to(dtype))

    def step(self, v0: Tensor) -> None:
        """One parameter update from the data batch ``v0`` (batch, n_visible)."""
        self.shadow.expire()  # the last update moved the parameters
        phases = {"pcd": self._phases_stacked, "cd": self.cd_phases, "fpcd": self._phases_fast,
                  "pt": self._phases_tempered}
        self.update(*phases[self.settings.method](v0))

    def _phases_stacked(self, v0: Tensor) -> tuple[Block, ...]:
        """PCD: chains and data meet the same weights, so their hidden inputs are one GEMM."""
        vk = self.gibbs(self.chain_h, self.settings.k, self.sampler())
        blocks, x = self._blocks(vk, v0)
        self.chain_h = self.rbm.hidden_units.sample(x, None, self.draws, blocks[0].p)
        return blocks

    def _phases_tempered(self, v0: Tensor) -> tuple[Block, ...]:
        """PT: k sweeps and swap rounds of the replicas; the beta = 1 ones are the model rows."""
        for _ in range(self.settings.k):
            self.tempering.step()
        return self._blocks(self.tempering.state_at(-1)[0], v0)[0]

    def _blocks(self, vk: Tensor, v0: Tensor) -> tuple[tuple[Block, ...], Tensor]:
        """The model block of chain states ``vk``, the data block of ``v0`` (in bf16 also their
        difference as one block), and the chains' hidden input."""
        rbm = self.rbm
        v = torch.cat([vk, v0])  # (chains + batch, n_visible): model rows, then data rows
        t = rbm.visible_units.stat(v, rbm.visible_std)
        w, _, c = self.products()
        x = hidden_input(t, w, c)  # (chains + batch, n_hidden)
        p = rbm.hidden_units.mean(x)
        n = len(vk)
        blocks = Block(v[:n], t[:n], p[:n], -1.0 / n), Block(v[n:], t[n:], p[n:], 1.0 / len(v0))
        if p.dtype != rbm.weight.dtype:
            # bf16: the two phases nearly cancel, so their difference is one GEMM of the stacked rows,
            # each weighted, summed in its fp32 accumulator and rounded once (as CD's joint block)
            blocks = (*blocks, Block(None, t, p * self._row_weights(n, len(v0), p), 1.0))
        return blocks, x[:n]

    def _row_weights(self, n: int, m: int, like: Tensor) -> Tensor:
        """A (n + m, 1) column: -1/n for the n chain rows, 1/m for the m data rows."""
        if self._row_weight is None or self._row_weight[0] != (n, m):
            column = torch.cat([like.new_full((n, 1), -1.0 / n), like.new_full((m, 1), 1.0 / m)])
            self._row_weight = ((n, m), column)
        return self._row_weight[1]

    def cd_phases(self, v0: Tensor) -> tuple[Block, Block, Block]:
        r"""CD-k, its rows written into stacked buffers so the weight statistic is one GEMM.

        Rows :math:`[0, m)` of the buffers hold the data phase (t(v), E[h | v]), rows
        :math:`[m, 2m)` the model phase with t(v) negated, so :math:`P^\top T / m` is
        :math:`\langle p\,t^\top\rangle_{\text{data}} - \langle p\,t^\top\rangle_{\text{model}}`:
        one GEMM of depth 2m instead of two of depth m, each reading and writing the whole
        weight-sized target. Returns the model and data blocks and that joint block.
        """
        rbm, g, hid, vis = self.rbm, self.draws, self.rbm.hidden_units, self.rbm.visible_units
        (w, b, c), std, m = self.products(), rbm.visible_std, len(v0)
        t, p = self._stack(m)
        t0 = t[:m].copy_(vis.stat(v0, std))
        x0 = hidden_input(t0, w, c)  # (batch, n_hidden)
        p0 = hid.mean_into(x0, p[:m])
        vk = self.gibbs(hid.sample(x0, None, g, p0), self.settings.k, (w, b, c))
        tk = vis.stat(vk, std)
        pk = hid.mean_into(hidden_input(tk, w, c), p[m:])
        torch.neg(tk, out=t[m:])
        return Block(vk, tk, pk, -1.0 / m), Block(v0, t0, p0, 1.0 / m), Block(None, t, p, 1.0 / m)

    def _stack(self, m: int) -> tuple[Tensor, Tensor]:
        """(2m, n_visible) and (2m, n_hidden) views of buffers kept between updates; in bf16
        the second is stored transposed, as :func:`hidden_input` and the statistic read it."""
        w, dtype = self.rbm.weight, self.shadow.dtype
        if self._stacked is None or len(self._stacked[0]) < 2 * m:
            p = (w.new_empty(w.shape[0], 2 * m, dtype=dtype).t() if dtype == torch.bfloat16
                 else w.new_empty(2 * m, w.shape[0], dtype=dtype))
            self._stacked = (w.new_empty(2 * m, w.shape[1], dtype=dtype), p)
        return self._stacked[0][:2 * m], self._stacked[1][:2 * m]

    def _phases_fast(self, v0: Tensor) -> tuple[Block, Block]:
        """FPCD: persistent chains that run on the regular plus the fast weights."""
        rbm, g, hid = self.rbm, self.draws, self.rbm.hidden_units
        std, (w, b, c), (w0, _, c0) = rbm.visible_std, self.sampler(), self.products()
        t0 = rbm.visible_units.stat(v0, std)
        p0 = hid.mean(torch.addmm(c0, t0, w0.t()))  # (batch, n_hidden)
        vk = self.gibbs(self.chain_h, self.settings.k, (w, b, c))
        tk = rbm.visible_units.stat(vk, std)
        xk = torch.addmm(c, tk, w.t())  # (chains, n_hidden)
        pk = hid.mean(xk)
        self.chain_h = hid.sample(xk, None, g, pk)
        return Block(vk, tk, pk, -1.0 / len(vk)), Block(v0, t0, p0, 1.0 / len(v0))

    def gibbs(self, h: Tensor, k: int, params: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """k Gibbs half-sweeps h -> v, with k - 1 v -> h between; returns the last v."""
        vis, hid, g = self.rbm.visible_units, self.rbm.hidden_units, self.draws
        std, (w, b, c) = self.rbm.visible_std, params
        for i in range(k):
            if i:
                h = hid.sample(torch.addmm(c, vis.stat(v, std), w.t()), None, g)
            v = vis.sample(torch.addmm(b, h, w), std, g)  # (chains, n_visible)
        return v

    def update(self, model: Block, data: Block, joint: Block | None = None) -> None:
        r"""Apply the CD statistics: each one a sum over the model and data rows, weighted.

        With row weights :math:`a = -1/m` (the m chain rows) and :math:`1/n` (the n data
        rows), every statistic is :math:`\sum_{\text{blocks}} a \sum_{\text{rows}}`: of
        :math:`p` (hidden biases), :math:`s_b(v)` (visible biases) and :math:`p^\top t(v)`
        (weights, one ``addmm_`` per block straight into the weights, or one for ``joint``, a
        block whose rows already carry both phases, signs included).
        """
        rbm, blocks = self.rbm, (model, data)
        std, vis, b = rbm.visible_std, rbm.visible_units, rbm.visible_bias
        total = functools.partial(precision_mod.column_sum, dtype=b.dtype)  # fp32 sums of bf16 rows
        grads = {"visible_bias": sum(k.a * total(vis.bias_stat(k.v, b, std)) for k in blocks),
                 "hidden_bias": sum(k.a * total(k.p) for k in blocks)}
        if self.sparsity_q is not None:
            grads["hidden_bias"] -= self._sparsity_penalty(data.p)
        if rbm.learn_std:
            grads["visible_log_std"] = sum(k.a * self._log_std_stat(k).sum(0) for k in blocks)
        self._update_weight(blocks if joint is None else (joint,))
        for name, grad in grads.items():
            self._apply(name, grad)

    def _update_weight(self, blocks: tuple[Block, ...]) -> None:
        r""":math:`\Delta W = \text{lr}\,(\sum a\,p^\top t - \lambda W)`, with momentum."""
        s, w = self.settings, self.rbm.weight
        if self.fast:  # the gradient feeds two sets of weights: form it once
            grad = add_statistics(torch.empty_like(w), blocks, beta=0.0, alpha=1.0)
            self.fast["weight"].mul_(FAST_DECAY).add_(grad, alpha=self._fast_lr())
            self._apply("weight", grad.add_(w, alpha=-s.weight_decay))
            return
        self.momentum.heavy_ball("weight", self.lr, s.weight_decay,
                                 lambda target, beta, alpha: add_statistics(target, blocks, beta, alpha))

    def _apply(self, name: str, grad: Tensor) -> None:
        """Gradient ascent with momentum on one parameter; fast copy for FPCD biases."""
        if name in self.fast and name != "weight":
            self.fast[name].mul_(FAST_DECAY).add_(grad, alpha=self._fast_lr())
        self.momentum.step(name, grad, self.lr)

    @property
    def lr(self) -> float:
        """The learning rate of the epoch being run, as ``settings.schedule`` says."""
        return self.settings.lr_at(self.epoch)

    def _fast_lr(self) -> float:
        return self.settings.fast_lr or self.settings.lr

    def _sparsity_penalty(self, ph0: Tensor) -> Tensor:
        r""":math:`\text{cost}\,(q - p)`, q a running mean of hidden activity (Hinton, 2010, s. 11)."""
        q, s = self.sparsity_q, self.settings
        q.mul_(SPARSITY_DECAY).add_(ph0.mean(0), alpha=1 - SPARSITY_DECAY)
        return s.sparsity_cost * (q - s.sparsity_target)

    def _log_std_stat(self, k: Block) -> Tensor:
        r""":math:`-\partial E/\partial\log\sigma` per row of one block (Cho et al., 2011)."""
        rbm = self.rbm
        u = k.p @ rbm.weight  # (rows, n_visible): W^T E[h | v]
        return rbm.visible_units.log_std_stat(k.v, u, rbm.visible_bias, rbm.visible_std)

    # --- the updater protocol of neuralsmith.loop -------------------------------------------

    def label(self) -> str:
        """What the progress bar calls this run."""
        return f"RBM {self.settings.method}-{self.settings.k}"

    def summary(self, row: dict[str, Any]) -> str:
        """The progress bar's text after an epoch with record ``row``."""
        text = f"rec {row['reconstruction_error']:.4f}"
        if row.get("pseudo_likelihood") is not None:
            text += f" PL {row['pseudo_likelihood']:.1f}"
        return text

    def monitor(self) -> dict[str, Any]:
        """The epoch's progress signals on up to ``monitor_size`` fixed examples."""
        from neuralsmith.rbm.partition import pseudo_likelihood

        m = self.settings.monitor_size
        v = self.x[:m].to(self.rbm.weight.dtype)
        row: dict[str, Any] = {"reconstruction_error": reconstruction_error(self.rbm, v),
                               "pseudo_likelihood": None, "free_energy_gap": None}
        with torch.no_grad():
            if self.rbm.visible_units.binary:
                g = torch.Generator(self.x.device).manual_seed(0)  # same flips every epoch
                row["pseudo_likelihood"] = float(pseudo_likelihood(self.rbm, v, generator=g).mean())
            if self.x_valid is not None:
                row["free_energy_gap"] = free_energy_gap(self.rbm, v, self.x_valid[:m])
        if self.tempering is not None:  # the hardest exchange so far
            row["swap_acceptance_min"] = float(self.tempering.acceptance().min())
        return row

    def finite(self) -> bool:
        """Whether every parameter (and chain state) is still finite."""
        tensors = list(self.params.values())
        if self.chain_h is not None:
            tensors.append(self.chain_h)
        if self.tempering is not None:
            tensors.extend(self.tempering.state)
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def tensors(self) -> dict[str, Tensor]:
        """Everything a resumed run needs, flat, for safetensors."""
        out = {f"rbm.{k}": v for k, v in self.rbm.state_dict().items()}
        out.update(self.momentum.tensors())
        out.update({f"fast.{k}": v for k, v in self.fast.items()})
        if self.chain_h is not None:
            out["chain_h"] = self.chain_h
        if self.tempering is not None:
            out.update(self.tempering.tensors())
        if self.sparsity_q is not None:
            out["sparsity_q"] = self.sparsity_q
        out["generator"] = checkpoint.generator_state(self.generator)
        return {k: v.detach().clone() for k, v in out.items()}

    @torch.no_grad()
    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Put a state from :meth:`tensors` back (in place, so buffers keep their identity)."""
        self.rbm.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rbm.")})
        self.momentum.load_tensors(tensors)
        for name, buf in self.fast.items():
            buf.copy_(tensors[f"fast.{name}"])
        if self.chain_h is not None:
            self.chain_h = tensors["chain_h"].to(self.chain_h).clone()
        if self.tempering is not None:
            self.tempering.load_tensors(tensors)
        if self.sparsity_q is not None:
            self.sparsity_q.copy_(tensors["sparsity_q"])
        checkpoint.restore_generator(self.generator, tensors["generator"])

    def meta(self) -> dict[str, Any]:
        """What a resumed run must share: the settings (all but epochs) and the RBM."""
        return {"settings": self.settings.resume_key(), "rbm": self.rbm.config()}


def free_energy_gap(rbm: RBM, v_train: Tensor, v_valid: Tensor) -> float:
    r""":math:`\overline{F}(\text{valid}) - \overline{F}(\text{train})`: grows when the model overfits.

    Hinton (2010), section 6: compare the average free energy of held-out data with that of
    an equally sized subset of the training data; the partition function cancels.
    """
    with torch.no_grad():
        return float(rbm.free_energy(v_valid).mean() - rbm.free_energy(v_train).mean())


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")


def train(rbm: RBM, x: Tensor, *, epochs: int, batch_size: int = 100, lr: float = 0.05,
          k: int = 1, method: str = "cd", n_chains: int | None = None, momentum: float = 0.5,
          weight_decay: float = 1e-4, sparsity_target: float | None = None,
          sparsity_cost: float = 0.1, fast_lr: float | None = None, schedule: str = "constant",
          n_temperatures: int | None = None, temperature_spacing: str = "linear",
          beta_min: float | None = None, tempering_base: str = "uniform", precision: str = "fp32",
          x_valid: Tensor | None = None, generator: Generator | None = None,
          callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
          checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
          monitor_size: int = 1000) -> History:
    r"""Train ``rbm`` in place on rows of ``x`` by CD-k, PCD, fast PCD or parallel tempering.

    Each update moves every parameter along the CD statistics (see the module docstring),

    .. math::
        \Delta\theta \leftarrow \mu\,\Delta\theta + \epsilon\,(\langle -\partial_\theta F\rangle_{\text{data}}
        - \langle -\partial_\theta F\rangle_{\text{chains}} - \lambda\,\theta_W),
        \qquad \theta \leftarrow \theta + \Delta\theta,

    with momentum :math:`\mu`, learning rate :math:`\epsilon` and weight decay :math:`\lambda`
    on the weights only (Hinton, 2010). Each epoch records the reconstruction error, the
    stochastic pseudo-likelihood (Bernoulli visibles) and, given ``x_valid``, the free-energy
    gap; with ``checkpoint_dir`` it saves a checkpoint (parameters, chains, fast weights,
    momentum, generator) that a later call with the same settings resumes from, ``epochs``
    counting the epochs already done. A non-finite parameter stops the run at the state
    before that epoch (``History.diverged``).

    Args:
        rbm: the model; its parameters change in place.
        x: training data (n, n_visible), in [0, 1] for Bernoulli visibles.
        epochs: total passes over the data (including any already checkpointed).
        batch_size, lr, k, momentum, weight_decay: as in the formula; k Gibbs steps.
        method: ``"cd"``, ``"pcd"``, ``"fpcd"`` or ``"pt"``.
        n_chains: persistent chains (PCD/FPCD; PT: at each temperature); default one per batch example.
        sparsity_target, sparsity_cost: pull the mean hidden activity toward a target.
        fast_lr: learning rate of the FPCD fast weights (default ``lr``).
        n_temperatures, temperature_spacing, beta_min: PT's replicas per chain (default 10),
            ``"linear"`` or ``"geometric"`` spacing in beta, and the lowest beta (default 0
            for linear, 0.01 for geometric); see :func:`neuralsmith.rbm.tempering.ladder`.
        tempering_base: PT's distribution at beta = 0: ``"uniform"`` (every unit a fair coin)
            or ``"data"`` (the pixel base rates of ``x``, :class:`~neuralsmith.rbm.tempering.BaseRate`).
        schedule: ``"constant"``, or ``"linear"`` / ``"cosine"`` decay of :math:`\epsilon` to 0
            over ``epochs`` (:func:`neuralsmith.train.lr_at`).
        precision: ``"fp32"``, or ``"bf16"``: the products in bfloat16 with fp32 accumulation,
            the parameters and momentum fp32 (:mod:`neuralsmith.precision`; Bernoulli units;
            fp32 with a warning where the hardware has no fast bf16).
        x_valid: held-out data for the free-energy gap.
        generator: every random draw (shuffles, Gibbs samples); a fresh seed if None.
        callbacks: called with each epoch's record; one returning True stops training.
        checkpoint_dir: where to save (and resume) the training state each epoch.
        progress: show a rich progress bar on stderr.
        monitor_size: examples the epoch metrics are computed on.

    Returns:
        The :class:`History` of all epochs (resumed ones included).

    Raises:
        ValueError: for a bad setting or data that do not fit the RBM (the message names the fix).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.bernoulli(torch.full((40, 6), 0.3), generator=g)
        >>> rbm = RBM.from_data(x, 4, generator=g)
        >>> hist = train(rbm, x, epochs=2, batch_size=10, generator=g, progress=False)
        >>> len(hist), hist.diverged
        (2, False)
    """
    settings = Settings(epochs=epochs, batch_size=batch_size, lr=lr, k=k, method=method,
                        n_chains=n_chains, momentum=momentum, weight_decay=weight_decay,
                        sparsity_target=sparsity_target, sparsity_cost=sparsity_cost,
                        fast_lr=fast_lr, monitor_size=monitor_size, schedule=schedule,
                        n_temperatures=n_temperatures, temperature_spacing=temperature_spacing,
                        beta_min=beta_min, tempering_base=tempering_base, precision=precision)
    x = check_data(rbm, x, "x")
    x_valid = None if x_valid is None else check_data(rbm, x_valid, "x_valid")
    updater = CDUpdater(rbm, x, x_valid, settings, resolve_generator(generator, x.device))
    return fit(updater, epochs=settings.epochs, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
               progress=progress)


def check_data(rbm: Any, x: Tensor, name: str) -> Tensor:
    """``x`` as a 2-D tensor on the model's dtype and device, checked against its units.

    ``rbm`` is any model with ``n_visible``, ``weight`` and ``visible_units`` (an RBM, a
    ClassRBM, the bottom expert of a stack).

    Raises:
        TypeError: ``x`` is not a tensor.
        ValueError: a wrong shape, NaN or inf, or values outside [0, 1] for Bernoulli units.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != rbm.n_visible or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n >= 1, {rbm.n_visible}) for this RBM; "
                         f"got {tuple(x.shape)}")
    x = x.to(dtype=rbm.weight.dtype, device=rbm.weight.device)
    lo, hi = (float(t) for t in torch.aminmax(x))  # one pass; NaN and inf show up here too
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} holds NaN or inf values; clean or impute them first")
    if rbm.visible_units.binary and (lo < 0 or hi > 1):
        raise ValueError(f"{name} must lie in [0, 1] for Bernoulli visible units; scale it, "
                         "or use visible='gaussian' on standardized data")
    return x
