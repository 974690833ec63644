r"""Likelihood of a Deep Boltzmann Machine: AIS for :math:`\log Z`, a mean-field bound on :math:`\log p(v)`.

Salakhutdinov & Hinton (2009), section 3.3, after Salakhutdinov & Murray (2008):

* :func:`ais_log_partition`: annealed importance sampling from a base model A (visible
  biases the data's base rates, no weights, fair-coin hidden units) to the DBM through
  :math:`p_\beta \propto p_A^{1-\beta} p^\beta`, with the odd layers summed out analytically
  in the importance weights (so only the even layers are "sampled") and one Gibbs sweep of
  :math:`p_\beta` as the transition at each temperature;
* :func:`variational_bound`: per test example,

  .. math::
      \log p(v) \ge \sum_h q(h \mid v)\,(-E(v, h)) + \mathcal{H}(q) - \log Z,

  with :math:`q` the mean-field posterior (:meth:`~neuralsmith.rbm.dbm.DBM.mean_field`): tight
  when the true posterior factorizes. With an estimate of :math:`\log Z` the bound is an
  estimate too; an underestimated :math:`\log Z` makes it optimistic.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Generator, Tensor

from neuralsmith.rbm.dbm import DBM, sigmoid
from neuralsmith.rbm.partition import AISResult, ais_result, base_rate_bias, default_betas
from neuralsmith.rbm.units import bernoulli, softplus


def _check(dbm: DBM, n_runs: int, betas: Tensor | None, base: str, data: Tensor | None) -> Tensor:
    """The checked inverse temperatures (CPU, float64)."""
    if not dbm.units[0].binary:
        raise ValueError("AIS here needs Bernoulli visible units; a tiny Gaussian DBM takes "
                         "neuralsmith.rbm.dbm.exact_log_partition")
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 2:
        raise ValueError(f"n_runs must be an int >= 2 (annealing runs; 100 is usual); got {n_runs!r}")
    if base not in ("data", "uniform") or (base == "data" and data is None):
        raise ValueError(f"base must be 'data' (then give data=, the training set) or 'uniform'; "
                         f"got base={base!r} with data={'given' if data is not None else None}")
    betas = default_betas() if betas is None else torch.as_tensor(betas, dtype=torch.float64).cpu()
    if betas.dim() != 1 or len(betas) < 2 or float(betas[0]) != 0.0 or float(betas[-1]) != 1.0 \
            or bool((betas[1:] <= betas[:-1]).any()):
        raise ValueError("betas must increase strictly from 0 to 1 (a 1-D tensor of at least 2 "
                         "values); leave it None for the paper's 14 500 steps")
    return betas


@torch.no_grad()
def ais_log_partition(dbm: DBM, *, n_runs: int = 100, betas: Tensor | None = None,
                      base: str = "data", data: Tensor | None = None,
                      generator: Generator | None = None) -> AISResult:
    r"""Estimate :math:`\log Z` of ``dbm`` by annealed importance sampling.

    .. math::
        \log w = \sum_{k=1}^K F_{\beta_{k-1}}(x_k) - F_{\beta_k}(x_k), \qquad
        \hat Z = Z_A \frac1M \sum_m w_m,

    :math:`x_k` the even layers (v, h2, ...) of run m after k - 1 transitions,
    :math:`F_\beta` the odd layers summed out under :math:`p_\beta`
    (:func:`~neuralsmith.rbm.dbm.parity_free_energy`), :math:`x_1 \sim p_A` exactly and
    :math:`Z_A = \prod_i (1 + e^{b^A_i})\, 2^{\sum_l n_l}`. All runs advance together.

    Args:
        dbm: a DBM with Bernoulli visibles.
        n_runs: annealing runs M (100 in the paper).
        betas: increasing inverse temperatures from 0 to 1 (default: the paper's 14 500 steps,
            :func:`~neuralsmith.rbm.partition.default_betas`).
        base: ``"data"`` (base rates of ``data``) or ``"uniform"``.
        data: training rows, for the base rates.
        generator: every random draw.

    Returns:
        An :class:`~neuralsmith.rbm.partition.AISResult` (estimate, standard error, ±3 sigma bounds).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> dbm = DBM([5, 3, 2], generator=g)
        >>> est = ais_log_partition(dbm, n_runs=20, betas=torch.linspace(0, 1, 100), base="uniform", generator=g)
        >>> from neuralsmith.rbm.dbm import exact_log_partition
        >>> abs(est.log_z - exact_log_partition(dbm)) < 0.05
        True
    """
    betas = _check(dbm, n_runs, betas, base, data)
    w = dbm.weights[0]
    b_a = base_rate_bias(data if base == "data" else None, dbm.sizes[0]).to(w)
    log_z_base = float(softplus(b_a.double()).sum()) + sum(dbm.sizes[1:]) * math.log(2.0)
    state = (bernoulli(torch.sigmoid(b_a).expand(n_runs, -1), generator),
             *dbm.init_state(n_runs, generator)[1:])
    log_w = _anneal(dbm, b_a, betas.tolist(), list(state), generator)
    return ais_result(log_w, log_z_base)


def _anneal(dbm: DBM, b_a: Tensor, betas: list[float], state: list[Tensor],
            generator: Generator | None) -> Tensor:
    r"""The runs' log-weights (float64). Per temperature the odd layers' input
    :math:`u_l = b_l + W_l s_{l-1} + W_{l+1}^\top s_{l+1}` is formed once: under :math:`p_\beta`
    it is :math:`\beta u_l` (base hidden biases are 0), which serves both weights
    (:math:`\log p^*_\beta(\text{even}) = \sum_{\text{even}} ((1-\beta) b^A_l + \beta b_l)^\top s_l
    + \sum_{\text{odd}} \sum_j \log(1 + e^{\beta u_{lj}})`) and the odd layers' draw."""
    log_w = torch.zeros(len(state[0]), dtype=torch.float64, device=b_a.device)
    ws, bs = dbm.params()
    d_bias = [bs[0] - b_a, *bs[1:]]  # b_l - b^A_l of every layer
    for k in range(1, len(betas)):
        lo, hi = betas[k - 1], betas[k]
        u = {l: dbm.layer_input(state, l, (ws, bs)) for l in range(1, len(state), 2)}  # (runs, n_l)
        log_w += (hi - lo) * sum(state[l] @ d_bias[l] for l in range(0, len(state), 2)).double()
        log_w += sum((softplus(hi * x) - softplus(lo * x)).sum(-1) for x in (x.double() for x in u.values()))
        if k + 1 < len(betas):  # one Gibbs sweep at beta_k: odd layers, then even
            for l, x in u.items():
                state[l] = bernoulli(sigmoid(hi * x), generator)
            for l in range(0, len(state), 2):
                state[l] = dbm.sample_layer(state, l, generator=generator, params=dbm.params(hi, b_a))
    return log_w


def _entropy(mu: list[Tensor]) -> Tensor:
    r""":math:`\mathcal{H}(q) = -\sum_{l,j} \mu \log\mu + (1-\mu)\log(1-\mu)` per row, (n,)."""
    return -sum((torch.special.xlogy(m, m) + torch.special.xlogy(1 - m, 1 - m)).sum(-1) for m in mu)


@torch.no_grad()
def variational_bound(dbm: DBM, v: Tensor, log_z: float, *, n_iter: int = 50,
                      tol: float = 1e-6) -> Tensor:
    r"""The mean-field lower bound on :math:`\log p(v)` of each row of ``v``, in nats, (n,).

    .. math::
        \mathcal{B}(v) = -E(v, \mu) + \mathcal{H}(\mu) - \log Z \le \log p(v),

    :math:`\mu` the fixed point of :meth:`~neuralsmith.rbm.dbm.DBM.mean_field` (``n_iter``,
    ``tol``); :math:`E(v, \mu) = E_q[E(v, h)]` because E is linear in each layer. Computed in
    float64.
    """
    dbm = copy.deepcopy(dbm).to(torch.float64)
    v = v.to(torch.float64)
    mu = dbm.mean_field(v, n_iter, tol)
    return -dbm.energy((v, *mu)) + _entropy(mu) - float(log_z)
