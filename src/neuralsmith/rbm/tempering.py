r"""Parallel tempering (replica exchange) for Boltzmann machines, and drawing samples with it.

K replicas of every chain run at inverse temperatures :math:`0 \le \beta_1 < \dots < \beta_K = 1`,
each a Gibbs chain of the tempered distribution :math:`p_\beta(x) \propto e^{-\beta E(x)}`; after
each sweep, neighbouring replicas propose to exchange their states, accepted with probability

.. math::
    a_{ij} = \min\Big(1, \frac{p_{\beta_i}(x_j)\, p_{\beta_j}(x_i)}{p_{\beta_i}(x_i)\, p_{\beta_j}(x_j)}\Big)
           = \min\big(1, e^{(\beta_i - \beta_j)(E(x_i) - E(x_j))}\big),

which keeps the product :math:`\prod_k p_{\beta_k}` invariant, so the :math:`\beta = 1` replica
samples the model while the hot ones carry it between modes (Swendsen & Wang, 1986; Geyer,
1991; for RBMs Desjardins, Courville, Bengio, Vincent & Delalleau, 2010, and Cho, Raiko &
Ilin, 2010). Pairs alternate: (1, 2), (3, 4), ... on even steps, (2, 3), (4, 5), ... on odd
ones, so no state takes part in two proposals at once.

The model is anything with the *chain protocol*:

* ``model.energy(*state)`` -> (rows,) energies :math:`E(x)`, ``state`` a tuple of (rows, units)
  tensors: ``(v, h)`` for an :class:`~neuralsmith.rbm.RBM`, ``(v, h1, ..., hL)`` for a deep
  Boltzmann machine;
* ``model.gibbs_sweep(state, beta, generator)`` -> the state after one Gibbs sweep of
  :math:`p_\beta`, ``beta`` one inverse temperature per row (rows,);
* ``model.initial_state(n, generator)`` -> a start for ``n`` chains.

The tempered family is :math:`p_\beta \propto e^{-\beta E}` (for an RBM at :math:`\beta = 0`
every unit a fair coin); :class:`BaseRate` turns an RBM into the family AIS anneals along,
:math:`p_\beta \propto e^{-\beta E(v, h)} p_A(v)^{1 - \beta}` with :math:`p_A` the data's
pixel base rates, whose hot replicas look like average images rather than noise: on images
this keeps the hot end of the ladder exchanging (Salakhutdinov & Murray, 2008).

Every replica of every chain is a row of one tensor (temperature-major: rows
:math:`[k n, (k+1) n)` are temperature k), so a sweep of all K x n replicas is the model's
few GEMMs, and a round of swaps is a handful of vector operations.

Example:
    >>> from neuralsmith.rbm import RBM
    >>> g = torch.Generator().manual_seed(0)
    >>> rbm = RBM(6, 3, generator=g)
    >>> pt = ParallelTempering(rbm, 4, ladder(5), generator=g)
    >>> pt.run(20)
    >>> pt.state_at(-1)[0].shape, pt.acceptance().shape
    (torch.Size([4, 6]), torch.Size([4]))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Generator, Tensor

from neuralsmith.settings import check_count

SPACINGS = ("linear", "geometric")
METHODS = ("gibbs", "pt")
N_TEMPERATURES = 10  # replicas per chain when none is asked for
GEOMETRIC_BETA_MIN = 0.01  # the hottest inverse temperature of a geometric ladder by default


def ladder(n_temperatures: int = N_TEMPERATURES, spacing: str = "linear",
           beta_min: float | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Inverse temperatures :math:`\beta_1 < \dots < \beta_K = 1`, from ``beta_min`` up.

    * ``"linear"`` (the default): evenly spaced in :math:`\beta`,
      :math:`\beta_k = \beta_{\min} + (1 - \beta_{\min})\frac{k-1}{K-1}`, from
      :math:`\beta_{\min} = 0` by default (Cho, Raiko & Ilin, 2010), whose replica draws
      exact uniform states;
    * ``"geometric"``: :math:`\beta_k = \beta_{\min}^{(K-k)/(K-1)}`, evenly spaced in
      :math:`\log\beta` (constant ratio), from :math:`\beta_{\min} = 0.01` by default.

    ``n_temperatures = 1`` gives ``[1.0]``: plain Gibbs sampling.

    Raises:
        ValueError: for fewer than 1 temperature, an unknown spacing, or ``beta_min`` outside
            [0, 1) ((0, 1) for geometric spacing).

    Example:
        >>> ladder(3).tolist(), ladder(3, "geometric").tolist()
        ([0.0, 0.5, 1.0], [0.01, 0.1, 1.0])
    """
    check_count("n_temperatures", n_temperatures, 1, "replicas per chain, 1 = plain Gibbs")
    beta_min = check_spacing(spacing, beta_min)
    if n_temperatures == 1:
        return torch.ones(1, dtype=dtype)
    if spacing == "linear":
        betas = torch.linspace(beta_min, 1.0, n_temperatures, dtype=dtype)
    else:
        betas = torch.logspace(math.log10(beta_min), 0.0, n_temperatures, dtype=dtype)
    betas[-1] = 1.0  # exactly: the last replica samples the model itself
    return betas


def check_spacing(spacing: str, beta_min: float | None) -> float:
    """``beta_min`` resolved for ``spacing`` (its default when None), checked; a ValueError else."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}; got {spacing!r}")
    if beta_min is None:
        return 0.0 if spacing == "linear" else GEOMETRIC_BETA_MIN
    low_ok = beta_min > 0.0 if spacing == "geometric" else beta_min >= 0.0
    if isinstance(beta_min, bool) or not isinstance(beta_min, (int, float)) \
            or not (low_ok and beta_min < 1.0):
        bound = "(0, 1)" if spacing == "geometric" else "[0, 1)"
        raise ValueError(f"beta_min must be in {bound} for {spacing} spacing (the hottest "
                         f"replica's inverse temperature); got {beta_min!r}")
    return float(beta_min)


def swap_log_acceptance(beta_i: Tensor, beta_j: Tensor, energy_i: Tensor, energy_j: Tensor) -> Tensor:
    r"""Log of the Metropolis ratio of exchanging the states of replicas i and j.

    .. math::
        \log r = \log\frac{p_{\beta_i}(x_j)\, p_{\beta_j}(x_i)}{p_{\beta_i}(x_i)\, p_{\beta_j}(x_j)}
               = (\beta_i - \beta_j)(E(x_i) - E(x_j));

    the swap is accepted with probability :math:`\min(1, r)` (the partition functions cancel).

    Example:
        >>> swap_log_acceptance(torch.tensor(0.5), torch.tensor(1.0), torch.tensor(-2.0),
        ...                     torch.tensor(-4.0)).item()  # the cold replica j holds the lower energy
        -1.0
    """
    return (beta_i - beta_j) * (energy_i - energy_j)


class ParallelTempering:
    """K tempered replicas of ``n`` chains of a model with the chain protocol, run together.

    Args:
        model: an object with ``energy``, ``gibbs_sweep`` and ``initial_state`` (module docstring).
        n: chains (at every temperature).
        betas: increasing inverse temperatures ending at 1 (:func:`ladder`).
        generator: every draw (starts, sweeps, swap decisions).
        state: a start for the ``n`` chains (default ``model.initial_state(n, generator)``),
            copied to every temperature.

    Attributes:
        state: the replicas, a tuple of (K * n, units) tensors, temperature-major.
        accepted, proposed: per neighbouring pair (K - 1,), swaps accepted and proposed so far.
        steps: sweeps run so far (the parity of the next swap round).
    """

    def __init__(self, model: Any, n: int, betas: Tensor, *, generator: Generator | None = None,
                 state: Sequence[Tensor] | None = None):
        check_count("n", n, 1, "chains")
        self.model, self.n, self.generator = model, n, generator
        start = model.initial_state(n, generator) if state is None else tuple(state)
        dtype, device = start[0].dtype, start[0].device
        self.betas = check_betas(betas).to(dtype=dtype, device=device)  # (K,)
        k = len(self.betas)
        self.state = tuple(s.repeat(k, 1) for s in start)  # (K * n, units) each
        self.row_betas = self.betas.repeat_interleave(n)  # (K * n,)
        self.accepted = torch.zeros(max(k - 1, 0), dtype=torch.float64, device=device)
        self.proposed = torch.zeros_like(self.accepted)
        self.steps = 0

    @property
    def n_temperatures(self) -> int:
        return len(self.betas)

    def state_at(self, k: int) -> tuple[Tensor, ...]:
        """The ``n`` chains at temperature index ``k`` (-1: :math:`\\beta = 1`), as views."""
        k = k % self.n_temperatures
        return tuple(s[k * self.n:(k + 1) * self.n] for s in self.state)

    def step(self) -> None:
        """One Gibbs sweep of every replica, then one round of swaps (when K > 1)."""
        self.state = tuple(self.model.gibbs_sweep(self.state, self.row_betas, self.generator))
        if self.n_temperatures > 1:
            self.swap(self.steps % 2)
        self.steps += 1

    def run(self, steps: int, every: Callable[[ParallelTempering], None] | None = None) -> None:
        """``steps`` times :meth:`step`; ``every(self)`` after each (to record the chains)."""
        for _ in range(steps):
            self.step()
            if every is not None:
                every(self)

    def swap(self, parity: int) -> Tensor:
        """Propose exchanges between temperatures (k, k+1), k = parity, parity + 2, ...

        Returns:
            The accept decisions, (pairs, n) booleans.
        """
        kk, n = self.n_temperatures, self.n
        lo = torch.arange(parity, kk - 1, 2, device=self.betas.device)  # (pairs,)
        if not len(lo):
            return torch.zeros(0, n, dtype=torch.bool, device=self.betas.device)
        energy = self.model.energy(*self.state).view(kk, n)  # (K, n)
        log_r = swap_log_acceptance(self.betas[lo, None], self.betas[lo + 1, None],
                                    energy[lo], energy[lo + 1])  # (pairs, n)
        u = torch.rand(log_r.shape, generator=self.generator, dtype=log_r.dtype, device=log_r.device)
        accept = torch.log(u) < log_r  # u < min(1, r)
        rows = torch.arange(kk * n, device=log_r.device).view(kk, n)
        order = rows.clone()
        order[lo] = torch.where(accept, rows[lo + 1], rows[lo])
        order[lo + 1] = torch.where(accept, rows[lo], rows[lo + 1])
        self.state = tuple(s[order.view(-1)] for s in self.state)
        self.accepted[lo] += accept.sum(1).to(self.accepted)
        self.proposed[lo] += n
        return accept

    def acceptance(self) -> Tensor:
        """Swap acceptance rate of each neighbouring pair so far, (K - 1,) (NaN: none proposed)."""
        return self.accepted / self.proposed

    def tensors(self, prefix: str = "pt.") -> dict[str, Tensor]:
        """The state (replicas, counts, step), flat, for a checkpoint."""
        out = {f"{prefix}state.{i}": s for i, s in enumerate(self.state)}
        out.update({f"{prefix}accepted": self.accepted, f"{prefix}proposed": self.proposed,
                    f"{prefix}steps": torch.tensor([self.steps], dtype=torch.int64)})
        return out

    def load_tensors(self, tensors: dict[str, Tensor], prefix: str = "pt.") -> None:
        """Put back a state from :meth:`tensors`."""
        self.state = tuple(tensors[f"{prefix}state.{i}"].to(s).clone() for i, s in enumerate(self.state))
        self.accepted.copy_(tensors[f"{prefix}accepted"])
        self.proposed.copy_(tensors[f"{prefix}proposed"])
        self.steps = int(tensors[f"{prefix}steps"][0])


class BaseRate:
    r"""An RBM tempered towards a base-rate model: the chain protocol for
    :math:`p_\beta(v, h) \propto e^{-\beta E(v, h) + (1 - \beta)\, b^{A\top} v}`.

    Its ``energy`` is :math:`E(v, h) - E_A(v) = E(v, h) + b^{A\top} v`, so the swap rule
    :math:`(\beta_i - \beta_j)(E_i - E_j)` of the module docstring holds for this family too.

    Args:
        rbm: an RBM with Bernoulli visible units.
        base_bias: the base-rate model's visible biases :math:`b^A` (n_visible,), e.g.
            :func:`neuralsmith.rbm.partition.base_rate_bias` of the training data.
    """

    def __init__(self, rbm: Any, base_bias: Tensor):
        if not rbm.visible_units.binary:
            raise ValueError("a base-rate tempering needs Bernoulli visible units; use the "
                             "uniform base (tempering_base='uniform')")
        self.rbm = rbm
        self.base_bias = base_bias.to(dtype=rbm.weight.dtype, device=rbm.weight.device)

    def initial_state(self, n: int, generator: Generator | None = None) -> tuple[Tensor, Tensor]:
        return self.rbm.initial_state(n, generator)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        return self.rbm.energy(v, h) + v @ self.base_bias  # (rows,)

    def gibbs_sweep(self, state: Sequence[Tensor], beta: Tensor | float,
                    generator: Generator | None = None) -> tuple[Tensor, Tensor]:
        return self.rbm.gibbs_sweep(state, beta, generator, base_bias=self.base_bias)


def check_betas(betas: Tensor | Sequence[float]) -> Tensor:
    """``betas`` as a 1-D float64 tensor, increasing strictly, in [0, 1], ending at 1."""
    b = torch.as_tensor(betas, dtype=torch.float64)
    if b.dim() != 1 or not len(b) or float(b[-1]) != 1.0 or float(b[0]) < 0.0 \
            or bool((b[1:] <= b[:-1]).any()):
        raise ValueError("betas must increase strictly within [0, 1] and end at 1 (a 1-D "
                         f"tensor; see tempering.ladder); got {b.tolist()}")
    return b


@dataclass
class Chains:
    """What :func:`sample` returns.

    Attributes:
        state: the ``n`` chains at :math:`\\beta = 1` after the last step (a tuple of tensors).
        energies: (steps, n) energy of every :math:`\\beta = 1` chain after each step.
        trace: (records, n, units) states of layer ``record_layer`` every ``thin`` steps, or None.
        betas: the inverse temperatures ((1,) for plain Gibbs).
        acceptance: per-pair swap acceptance rates (K - 1,) (empty for Gibbs).
        seconds: wall time of the sampling.
    """

    state: tuple[Tensor, ...]
    energies: Tensor
    trace: Tensor | None
    betas: Tensor
    acceptance: Tensor
    seconds: float


def sample(model: Any, n: int, *, steps: int = 1000, method: str = "gibbs",
           n_temperatures: int = N_TEMPERATURES, spacing: str = "linear",
           beta_min: float | None = None, base_bias: Tensor | None = None, thin: int = 0,
           record_layer: int = 0, generator: Generator | None = None,
           state: Sequence[Tensor] | None = None) -> Chains:
    r"""Run ``n`` chains of ``model`` for ``steps`` sweeps, by plain Gibbs or parallel tempering.

    ``method="pt"`` runs :class:`ParallelTempering` on :func:`ladder` (``n_temperatures``,
    ``spacing``, ``beta_min``) and keeps the :math:`\beta = 1` replicas; ``"gibbs"`` runs the
    same code with the single temperature 1, so both cost one sweep per replica and step.

    Args:
        model: anything with the chain protocol (module docstring): an RBM, a DBM.
        n: chains.
        steps: sweeps.
        base_bias: temper an RBM towards this base-rate model (:class:`BaseRate`) instead of
            the uniform distribution.
        thin: record layer ``record_layer`` of every chain every ``thin`` steps (0: never),
            for the diagnostics of :mod:`neuralsmith.rbm.mixing`.
        generator: every draw.
        state: a start (default ``model.initial_state``).

    Raises:
        ValueError: for a bad method, count or temperature setting.

    Example:
        >>> from neuralsmith.rbm import RBM
        >>> out = sample(RBM(5, 3), 4, steps=10, method="pt", n_temperatures=3, thin=5)
        >>> out.state[0].shape, out.energies.shape, out.trace.shape, len(out.acceptance)
        (torch.Size([4, 5]), torch.Size([10, 4]), torch.Size([2, 4, 5]), 2)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    check_count("steps", steps, 1, "Gibbs sweeps")
    check_count("thin", thin, 0, "steps between recorded states, 0 = none")
    betas = ladder(n_temperatures if method == "pt" else 1, spacing, beta_min)
    start = time.perf_counter()
    chain_model = model if base_bias is None else BaseRate(model, base_bias)
    pt = ParallelTempering(chain_model, n, betas, generator=generator, state=state)
    energies, trace = [], []

    def record(chains: ParallelTempering) -> None:
        top = chains.state_at(-1)
        energies.append(model.energy(*top))
        if thin and chains.steps % thin == 0:
            trace.append(top[record_layer].clone())

    with torch.no_grad():
        pt.run(steps, record)
    return Chains(state=tuple(s.clone() for s in pt.state_at(-1)), energies=torch.stack(energies),
                  trace=torch.stack(trace) if trace else None, betas=pt.betas.cpu(),
                  acceptance=pt.acceptance().cpu(), seconds=time.perf_counter() - start)


def dbn_down(dbn: Any, top_visible: Tensor, generator: Generator | None = None) -> Tensor:
    r"""The directed down pass of a DBN from states of its top RBM's visible layer.

    :math:`h^{k-1} \sim P(h^{k-1} \mid h^k)` down to layer 1, then :math:`E[x \mid h^1]`
    (probabilities), as :meth:`neuralsmith.stack.DBN.sample` does after Gibbs in the top RBM.
    """
    h = top_visible
    for rbm in reversed(dbn.rbms[1:-1]):
        h = rbm.sample_visible(h, generator)
    return dbn.rbms[0].visible_probs(h) if len(dbn.rbms) > 1 else h


def sample_dbn(dbn: Any, n: int, *, generator: Generator | None = None, **options: Any
               ) -> tuple[Tensor, Chains]:
    """``n`` DBN samples: :func:`sample` in the top RBM (Gibbs or PT), then :func:`dbn_down`.

    Returns:
        (pixels (n, n_visible) as probabilities, the top RBM's :class:`Chains`).
    """
    chains = sample(dbn.rbms[-1], n, generator=generator, **options)
    with torch.no_grad():
        return dbn_down(dbn, chains.state[0], generator), chains
