r"""The partition function and the likelihoods built on it.

.. math::
    Z = \sum_{v, h} e^{-E(v, h)}, \qquad \log p(v) = -F(v) - \log Z

* :func:`exact_log_partition`: enumerate the smaller binary layer, integrate the other out
  analytically (float64, in batches).
* :func:`ais_log_partition`: annealed importance sampling from a base-rate model
  (Neal, 2001; Salakhutdinov & Murray, 2008).
* :func:`log_likelihood`: the average :math:`\log p(v)` in nats, given :math:`\log Z`.
* :func:`pseudo_likelihood`: scikit-learn's stochastic pseudo-likelihood (no Z needed).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Generator, Tensor

from neuralsmith.rbm.model import RBM
from neuralsmith.rbm.units import softplus

MAX_ENUMERATED = 24  # 2**24 states: about a minute on two cores; beyond, use AIS
BASE_RATE_CLIP = 1e-3  # base-rate pixel means are clipped to [1e-3, 1 - 1e-3]
CHUNK_ELEMENTS = 2**22  # enumerated states x other-layer units per batch (32 MiB in float64)


def _float64(rbm: RBM) -> RBM:
    """A float64 copy of ``rbm`` (the original is untouched)."""
    return copy.deepcopy(rbm).to(torch.float64)


def _enumerable_layers(rbm: RBM, max_units: int) -> list[str]:
    sizes = {"hidden": rbm.n_hidden, "visible": rbm.n_visible}
    binary = {"hidden": rbm.hidden_units.binary, "visible": rbm.visible_units.binary}
    return [layer for layer in sizes if binary[layer] and sizes[layer] <= max_units]


def exact_is_tractable(rbm: RBM, max_units: int = MAX_ENUMERATED) -> bool:
    """Whether :func:`exact_log_partition` can enumerate a binary layer of ``rbm``.

    Example:
        >>> exact_is_tractable(RBM(784, 20)), exact_is_tractable(RBM(784, 500))
        (True, False)
    """
    return bool(_enumerable_layers(rbm, max_units))


def _enumerated_layer(rbm: RBM, max_units: int) -> str:
    sizes = {"hidden": rbm.n_hidden, "visible": rbm.n_visible}
    fits = _enumerable_layers(rbm, max_units)
    if not fits:
        raise ValueError(f"exact log Z needs a binary layer of at most {max_units} units; this "
                         f"RBM has {rbm.n_visible} {rbm.visible_units.name} visible and "
                         f"{rbm.n_hidden} {rbm.hidden_units.name} hidden; use ais_log_partition")
    return min(fits, key=sizes.__getitem__)


def binary_states(start: int, count: int, n: int, dtype: torch.dtype = torch.float64,
                  device: torch.device | str | None = None) -> Tensor:
    """Binary states ``start .. start+count-1`` of ``n`` units, one per row (bit i = unit i).

    Example:
        >>> binary_states(0, 4, 2).tolist()
        [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    """
    idx = torch.arange(start, start + count, device=device)
    return ((idx[:, None] >> torch.arange(n, device=device)) & 1).to(dtype)  # (count, n)


def hidden_free_energy(rbm: RBM, h: Tensor) -> Tensor:
    r""":math:`F(h) = -\log \sum_v e^{-E(v, h)} = E_h(h) + F_v(b + W^\top h)`, shape (batch,)."""
    x = rbm.visible_input(h)  # (batch, n_visible)
    return (rbm.hidden_units.energy(h, rbm.hidden_bias)
            + rbm.visible_units.free_energy(x, rbm.visible_bias, rbm.visible_std))


@torch.no_grad()
def exact_log_partition(rbm: RBM, *, max_units: int = MAX_ENUMERATED) -> float:
    r"""Exact :math:`\log Z` by enumerating the smaller binary layer.

    .. math::
        \log Z = \log \sum_{h \in \{0,1\}^H} e^{-F(h)} \quad\text{or}\quad
        \log \sum_{v \in \{0,1\}^D} e^{-F(v)},

    the other layer summed (Bernoulli, ReLU) or integrated (Gaussian) out analytically;
    computed in float64, in batches, with a running log-sum-exp.

    Raises:
        ValueError: if no binary layer has at most ``max_units`` units.

    Example:
        >>> rbm = RBM(3, 2)
        >>> _ = rbm.weight.detach().zero_()
        >>> round(exact_log_partition(rbm), 4) == round(5 * math.log(2), 4)
        True
    """
    layer = _enumerated_layer(rbm, max_units)
    own, bias, other, w_aug = _enumeration(_float64(rbm), layer)
    n = len(bias)
    chunk = 2 ** max(0, int(math.log2(max(1, CHUNK_ELEMENTS // w_aug.shape[1]))))
    parts = []
    for start in range(0, 2**n, chunk):
        s = binary_states(start, min(chunk, 2**n - start), n, device=w_aug.device)
        x = torch.cat([s, torch.ones_like(s[:, :1])], 1) @ w_aug  # (chunk, other): bias + input
        neg_f = -own.energy(s, bias) - other[0].free_energy(x, *other[1:])
        parts.append(torch.logsumexp(neg_f, 0))
    return float(torch.logsumexp(torch.stack(parts), 0))


def _enumeration(rbm: RBM, layer: str):
    """(own units, own bias, (other units, other bias, other std), [W; other bias]) for ``layer``.

    The other layer's bias rides in the GEMM as a last row of the weights, against a column of
    ones in the states, which saves a broadcast copy per batch of states.
    """
    w, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
    if layer == "hidden":
        other = (rbm.visible_units, b, rbm.visible_std)
        return rbm.hidden_units, c, other, torch.cat([w, b[None]])  # (n_hidden + 1, n_visible)
    other = (rbm.hidden_units, c, None)  # binary visible units: t(v) = v
    return rbm.visible_units, b, other, torch.cat([w.t(), c[None]])  # (n_visible + 1, n_hidden)


@torch.no_grad()
def log_likelihood(rbm: RBM, x: Tensor, log_z: float) -> float:
    r"""Average log-probability per example in nats, :math:`\frac1n \sum_n -F(v_n) - \log Z`.

    Example:
        >>> rbm = RBM(3, 2)
        >>> _ = rbm.weight.detach().zero_()
        >>> round(log_likelihood(rbm, torch.ones(4, 3), exact_log_partition(rbm)), 4)  # 3 fair coins
        -2.0794
    """
    v = x.to(dtype=torch.float64, device=rbm.weight.device)
    return float(-_float64(rbm).free_energy(v).mean()) - float(log_z)


@torch.no_grad()
def pseudo_likelihood(rbm: RBM, v: Tensor, generator: Generator | None = None, *,
                      flip: Tensor | None = None) -> Tensor:
    r"""Stochastic pseudo-likelihood per example, as scikit-learn's ``score_samples``.

    One unit :math:`i` is drawn per example and flipped to give :math:`\tilde v`; then

    .. math::
        \text{PL}(v) \approx D \log \sigma\big(F(\tilde v) - F(v)\big)
        = D \log p(v_i \mid v_{-i}),

    an unbiased estimate of :math:`\sum_i \log p(v_i \mid v_{-i})` (Besag, 1975) for binary
    visibles. Same formula and draw-one-unit semantics as BernoulliRBM; the random unit
    comes from ``generator``, or is given per example as ``flip`` (n,) indices.

    Raises:
        ValueError: for non-binary visible units.

    Example:
        >>> rbm = RBM(4, 2)
        >>> _ = rbm.weight.detach().zero_()  # zero weights and biases: every unit a fair coin
        >>> pl = pseudo_likelihood(rbm, torch.zeros(3, 4), torch.Generator().manual_seed(0))
        >>> [round(x, 2) for x in pl.tolist()]  # 4 log(1/2)
        [-2.77, -2.77, -2.77]
    """
    if not rbm.visible_units.binary:
        raise ValueError("pseudo-likelihood here needs binary (Bernoulli) visible units")
    v = rbm._check_visible(v, "v")
    n, d = v.shape
    i = torch.randint(0, d, (n,), generator=generator, device=v.device) if flip is None else flip
    flipped = v.clone()
    rows = torch.arange(n, device=v.device)
    flipped[rows, i] = 1 - flipped[rows, i]
    return d * torch.nn.functional.logsigmoid(rbm.free_energy(flipped) - rbm.free_energy(v))


# --- annealed importance sampling -----------------------------------------------------------


def default_betas(n_steps: int = 14500, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Salakhutdinov & Murray's (2008) inverse temperatures: 14 500 steps from 0 to 1.

    500 evenly from 0 to 0.5, 4 000 from 0.5 to 0.9 and 10 000 from 0.9 to 1; returns the
    14 501 values :math:`0 = \beta_0 < \dots < \beta_K = 1`. Another ``n_steps`` scales the
    three pieces in the same proportions (for quick estimates).

    Example:
        >>> b = default_betas()
        >>> len(b), float(b[500]), float(b[4500]), float(b[-1])
        (14501, 0.5, 0.9, 1.0)
        >>> len(default_betas(145))
        146
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 3:
        raise ValueError(f"n_steps must be an int >= 3 (annealing steps); got {n_steps!r}")
    first, second = round(n_steps * 500 / 14500) or 1, round(n_steps * 4000 / 14500) or 1
    pieces = [(0.0, 0.5, first), (0.5, 0.9, second), (0.9, 1.0, n_steps - first - second)]
    parts = [torch.linspace(a, b, n + 1, dtype=dtype)[:-1] for a, b, n in pieces]
    return torch.cat(parts + [torch.ones(1, dtype=dtype)])


@dataclass(frozen=True)
class AISResult:
    r"""An AIS estimate of :math:`\log Z`.

    Attributes:
        log_z: :math:`\log \hat Z = \log Z_A + \log \frac1M \sum_m w_m`.
        std: standard error of ``log_z`` (delta method: :math:`\mathrm{sd}(w)/(\sqrt M\,\bar w)`).
        lower, upper: :math:`\log(\hat Z \mp 3\hat\sigma_Z)`, the ±3 sigma interval of the
            Matlab code of Salakhutdinov & Murray (``lower`` is -inf when
            :math:`\hat Z - 3\hat\sigma_Z \le 0`).
        log_z_base: :math:`\log Z_A` of the base-rate model.
        log_weights: the M importance log-weights (float64).
    """

    log_z: float
    std: float
    lower: float
    upper: float
    log_z_base: float
    log_weights: Tensor

    @property
    def bounds(self) -> tuple[float, float]:
        return self.lower, self.upper


def base_rate_bias(data: Tensor | None, n_visible: int) -> Tensor:
    r"""Visible biases of the base-rate model, :math:`b^A_i = \log(p_i/(1-p_i))`.

    :math:`p_i` is the pixel mean of ``data`` clipped to [0.001, 0.999]; with no data the
    base model is uniform (:math:`b^A = 0`).
    """
    if data is None:
        return torch.zeros(n_visible, dtype=torch.float64)
    p = data.to(torch.float64).mean(0).clamp(BASE_RATE_CLIP, 1 - BASE_RATE_CLIP).cpu()
    return torch.log(p) - torch.log1p(-p)


@torch.no_grad()
def ais_log_partition(rbm: RBM, *, n_runs: int = 100, betas: Tensor | None = None,
                      base: str = "data", data: Tensor | None = None,
                      generator: Generator | None = None) -> AISResult:
    r"""Estimate :math:`\log Z` by annealed importance sampling (Salakhutdinov & Murray, 2008).

    The intermediate distributions blend a base-rate model A (visible biases :math:`b^A`
    from the data's pixel means, no weights) into the RBM:

    .. math::
        p^*_\beta(v) = e^{(1-\beta)\, b^{A\top} v + \beta\, b^\top v - F_h(\beta (c + W v))},
        \qquad \log w = \sum_{k=1}^K \log \frac{p^*_{\beta_k}(v_k)}{p^*_{\beta_{k-1}}(v_k)},

    with :math:`v_1 \sim p_A` and :math:`v_{k+1}` one Gibbs step at :math:`\beta_k` from
    :math:`v_k`; then :math:`\hat Z = Z_A \cdot \frac1M\sum_m w_m`. All M runs advance
    together (two GEMMs per temperature); the log-weights accumulate in float64.

    Args:
        rbm: an RBM with Bernoulli visible units (Bernoulli or ReLU hidden units).
        n_runs: independent annealing runs M (100 in the paper).
        betas: increasing inverse temperatures from 0 to 1 (default :func:`default_betas`).
        base: ``"data"`` (base rates of ``data``) or ``"uniform"``.
        data: training data for the base rates.
        generator: every random draw.

    Raises:
        ValueError: for Gaussian visibles, bad betas, or ``base="data"`` without data.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> rbm = RBM(5, 3, generator=g)
        >>> est = ais_log_partition(rbm, n_runs=50, betas=torch.linspace(0, 1, 200),
        ...                         base="uniform", generator=g)
        >>> abs(est.log_z - exact_log_partition(rbm)) < 0.05
        True
    """
    betas = _check_ais(rbm, n_runs, betas, base, data)
    b_a = base_rate_bias(data if base == "data" else None, rbm.n_visible)
    hid = rbm.hidden_units
    zeros_h = torch.zeros(1, rbm.n_hidden, dtype=torch.float64)
    log_z_base = float(softplus(b_a).sum() - hid.free_energy(zeros_h, zeros_h[0])[0])
    log_w = _anneal(rbm, b_a, betas, n_runs, generator)
    return ais_result(log_w, log_z_base)


def _check_ais(rbm: RBM, n_runs: int, betas: Tensor | None, base: str,
               data: Tensor | None) -> Tensor:
    if not rbm.visible_units.binary:
        raise ValueError("AIS here needs Bernoulli visible units; for Gaussian visibles with a "
                         "small binary hidden layer use exact_log_partition")
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 2:
        raise ValueError(f"n_runs must be an int >= 2 (annealing runs; 100 is usual); got {n_runs!r}")
    if base not in ("data", "uniform"):
        raise ValueError(f"base must be 'data' or 'uniform'; got {base!r}")
    if base == "data" and data is None:
        raise ValueError("base='data' needs data= (the training set) for its pixel means; "
                         "pass data or use base='uniform'")
    betas = default_betas() if betas is None else torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or len(betas) < 2 or float(betas[0]) != 0.0 or float(betas[-1]) != 1.0 \
            or bool((betas[1:] <= betas[:-1]).any()):
        raise ValueError("betas must increase strictly from 0 to 1 (a 1-D tensor, at least 2 "
                         "values); leave it None for the paper's 14 500 steps")
    return betas.cpu()


def _anneal(rbm: RBM, b_a: Tensor, betas: Tensor, n_runs: int,
            generator: Generator | None) -> Tensor:
    """The M annealing runs, vectorized; returns their log-weights (float64, (n_runs,))."""
    w, b, c = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    vis, hid = rbm.visible_units, rbm.hidden_units
    b_a = b_a.to(w)
    d_bias = (b - b_a).to(w)  # (n_visible,)
    v = vis.sample(b_a.expand(n_runs, -1), None, generator)  # exact draws from p_A
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=w.device)
    beta_list = betas.tolist()
    for k in range(1, len(beta_list)):
        lo, hi = beta_list[k - 1], beta_list[k]
        x = torch.addmm(c, v, w.t())  # (runs, n_hidden)
        x64 = x.to(torch.float64)
        log_w += (hi - lo) * (v @ d_bias).to(torch.float64)
        log_w += hid.free_energy(lo * x64, c) - hid.free_energy(hi * x64, c)
        if k + 1 < len(beta_list):
            h = hid.sample(x.mul_(hi), None, generator)
            x_v = torch.addmm(b, h, w, beta=hi, alpha=hi).add_(b_a, alpha=1 - hi)
            v = vis.sample(x_v, None, generator)  # (runs, n_visible)
    return log_w


def ais_result(log_w: Tensor, log_z_base: float) -> AISResult:
    """Mean importance weight in log space, its standard error and the ±3 sigma bounds."""
    m = len(log_w)
    shift = float(log_w.max())
    w = torch.exp(log_w - shift)
    mean = float(w.mean())
    rel = float(w.std()) / (math.sqrt(m) * mean)  # sd of Z-hat over Z-hat
    log_z = log_z_base + shift + math.log(mean)
    lower = log_z + math.log(1 - 3 * rel) if 3 * rel < 1 else -math.inf
    return AISResult(log_z=log_z, std=rel, lower=lower, upper=log_z + math.log1p(3 * rel),
                     log_z_base=log_z_base, log_weights=log_w.cpu())
