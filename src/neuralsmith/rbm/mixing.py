r"""Sample quality without a likelihood: effective sample size, autocorrelation, class mixing.

* :func:`integrated_autocorrelation_time` and :func:`effective_sample_size` of a scalar
  statistic of M chains (an energy, a free energy, a class score), by the multi-chain
  autocorrelation estimate of Gelman et al. (BDA3, section 11.5) truncated by Geyer's (1992)
  initial monotone positive sequence:

  .. math::
      \hat\rho_t = 1 - \frac{W - \frac1M\sum_m \hat\gamma_{m,t}}{\widehat{\mathrm{var}}^+},
      \qquad \tau = -1 + 2\sum_{k=0}^{K} \Gamma_k, \quad \Gamma_k = \hat\rho_{2k} + \hat\rho_{2k+1},
      \qquad \text{ESS} = \frac{MN}{\tau},

  with :math:`\hat\gamma_{m,t}` chain m's autocovariance at lag t, W the mean within-chain
  variance, :math:`\widehat{\mathrm{var}}^+ = \frac{N-1}{N}W + \frac BN` (B the between-chain
  variance of the means), and the sum stopped before the first :math:`\Gamma_k \le 0`, each
  :math:`\Gamma_k` capped by the one before. Chains stuck in different modes raise B and so
  :math:`\tau`; chains that all sit in one mode cannot be caught by any such statistic, which is
  why :func:`class_mixing` looks at what the samples depict.
* :func:`class_mixing`: a classifier trained on the data (:func:`fit_classifier`, or any
  module mapping rows to class scores) labels the samples of each chain; how often a chain's
  class changes, how many classes it visits and the entropy of the visited classes tell whether
  the sampler moves between the modes of the data (Desjardins et al., 2010, judged mixing by eye
  on such chains; Breuleux, Bengio & Vincent, 2011, by a classifier).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neuralsmith.settings import check_count


def _as_chains(x: Tensor) -> Tensor:
    """(steps,) or (steps, chains) as float64 (steps, chains), at least 4 steps."""
    x = torch.as_tensor(x).to(torch.float64)
    x = x[:, None] if x.dim() == 1 else x
    if x.dim() != 2 or x.shape[0] < 4:
        raise ValueError(f"need a (steps, chains) series of at least 4 steps; got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("the series holds NaN or inf values")
    return x


def autocovariance(x: Tensor) -> Tensor:
    r"""Each chain's autocovariance :math:`\hat\gamma_t = \frac1N\sum_{s}(x_s - \bar x)(x_{s+t} - \bar x)`.

    By FFT (zero-padded, so not circular). ``x``: (steps, chains); returns (steps, chains).

    Example:
        >>> autocovariance(torch.tensor([1.0, -1.0, 1.0, -1.0]))[:2, 0].tolist()
        [1.0, -0.75]
    """
    x = _as_chains(x)
    n = x.shape[0]
    centred = x - x.mean(0)
    size = 1 << (2 * n - 1).bit_length()
    f = torch.fft.rfft(centred, n=size, dim=0)
    return torch.fft.irfft(f * f.conj(), n=size, dim=0)[:n] / n


def autocorrelation(x: Tensor) -> Tensor:
    r"""The multi-chain autocorrelation :math:`\hat\rho_t` of the module docstring, (steps,).

    For one chain it is the usual :math:`\hat\gamma_t / \hat\gamma_0`.
    """
    x = _as_chains(x)
    n, m = x.shape
    gamma = autocovariance(x)  # (steps, chains)
    within = gamma[0].mean() * n / (n - 1)  # W, mean unbiased within-chain variance
    between = x.mean(0).var() * n if m > 1 else x.new_zeros(())  # B
    var_plus = (n - 1) / n * within + between / n
    if float(var_plus) == 0.0:
        raise ValueError("the series is constant: no autocorrelation to estimate")
    return 1.0 - (within - gamma.mean(1)) / var_plus


def integrated_autocorrelation_time(x: Tensor) -> float:
    r""":math:`\tau = 1 + 2\sum_{t \ge 1} \rho_t`, by Geyer's initial monotone sequence.

    Steps of a chain per independent draw: 1 for independent draws,
    :math:`(1 + \phi)/(1 - \phi)` for an AR(1) series with coefficient :math:`\phi`. Floored
    at :math:`1/\log_{10}(MN)`, as Stan does, where anticorrelated chains would give less.

    Args:
        x: (steps,) one chain, or (steps, chains).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> tau = integrated_autocorrelation_time(torch.randn(4000, 4, generator=g))
        >>> 0.8 < tau < 1.2
        True
    """
    rho = autocorrelation(x)
    n = len(rho) // 2 * 2
    pairs = (rho[:n:2] + rho[1:n:2]).tolist()  # Gamma_k
    total, previous = 0.0, math.inf
    for gamma in pairs:
        if gamma <= 0:
            break
        previous = min(previous, gamma)  # initial monotone sequence
        total += previous
    return max(-1.0 + 2.0 * total, 1.0 / math.log10(max(x.numel(), 10)))


def effective_sample_size(x: Tensor) -> float:
    r""":math:`\text{ESS} = MN/\tau`: how many independent draws the M chains of N steps are worth.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> 3000 < effective_sample_size(torch.randn(1000, 4, generator=g)) < 5000
        True
    """
    x = _as_chains(x)
    return x.numel() / integrated_autocorrelation_time(x)


@dataclass(frozen=True)
class ClassMixing:
    """How chains move between the classes a classifier sees in their samples.

    Attributes:
        switches_per_1000: class changes between consecutive records, per chain and per 1000
            sampler steps.
        visited_per_chain: the fraction of the classes a chain visits, averaged over chains.
        visited: the fraction of the classes visited by any chain.
        entropy: entropy (nats) of the class frequencies pooled over chains and records.
        entropy_ratio: ``entropy / log(n_classes)``: 1 when every class is equally frequent.
        frequencies: the pooled class frequencies.
    """

    switches_per_1000: float
    visited_per_chain: float
    visited: float
    entropy: float
    entropy_ratio: float
    frequencies: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frequencies": list(self.frequencies)}


def class_mixing(labels: Tensor, n_classes: int, thin: int = 1) -> ClassMixing:
    r"""Class mixing of chains whose states were labelled every ``thin`` steps.

    .. math::
        \text{switches per 1000} = \frac{1000}{M\,(R-1)\,\text{thin}}\sum_{m,r} [y_{m,r} \ne y_{m,r-1}],
        \qquad H = -\sum_c f_c \log f_c

    Args:
        labels: (records, chains) class indices (records >= 2).
        n_classes: the number of classes C.
        thin: sampler steps between records.

    Example:
        >>> y = torch.tensor([[0, 1], [0, 1], [1, 1], [1, 1]])  # chain 0 switches once in 3 gaps
        >>> m = class_mixing(y, 4)
        >>> round(m.switches_per_1000, 1), m.visited_per_chain, m.visited
        (166.7, 0.375, 0.5)
    """
    check_count("n_classes", n_classes, 2, "classes")
    check_count("thin", thin, 1, "steps between records")
    labels = torch.as_tensor(labels).long()
    if labels.dim() != 2 or labels.shape[0] < 2:
        raise ValueError(f"labels must be (records >= 2, chains); got {tuple(labels.shape)}")
    records, chains = labels.shape
    switches = float((labels[1:] != labels[:-1]).sum()) / (chains * (records - 1) * thin) * 1000
    seen = torch.zeros(chains, n_classes, dtype=torch.bool)
    seen[torch.arange(chains).expand(records, -1), labels.cpu()] = True
    freq = torch.bincount(labels.cpu().reshape(-1), minlength=n_classes).double() / labels.numel()
    entropy = abs(float((freq[freq > 0] * freq[freq > 0].log()).sum()))  # abs: no -0.0
    return ClassMixing(switches_per_1000=switches, visited_per_chain=float(seen.double().mean()),
                       visited=float(seen.any(0).double().mean()), entropy=entropy,
                       entropy_ratio=entropy / math.log(n_classes),
                       frequencies=tuple(freq.tolist()))


def fit_classifier(x: Tensor, y: Tensor, n_classes: int | None = None, *, l2: float = 1e-4,
                   max_iter: int = 100) -> nn.Linear:
    r"""Multinomial logistic regression on rows ``x``, labels ``y``, by full-batch L-BFGS.

    Minimizes :math:`\frac1n\sum_i -\log \mathrm{softmax}(W x_i + b)_{y_i} + \frac{\lambda}{2}\|W\|^2`
    from zero weights (deterministic: no random draw). Returns an ``nn.Linear`` whose argmax
    labels samples for :func:`class_mixing` (any module mapping rows to scores will do).

    Example:
        >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).repeat(10, 1)
        >>> clf = fit_classifier(x, torch.tensor([0, 1]).repeat(10))
        >>> clf(x[:2]).argmax(1).tolist()
        [0, 1]
    """
    x = x.detach().to(torch.float32)
    y = torch.as_tensor(y).long().to(x.device)
    n_classes = n_classes or int(y.max()) + 1
    model = nn.Linear(x.shape[1], n_classes).to(x.device)
    nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + l2 / 2 * model.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model.requires_grad_(False)


@torch.no_grad()
def label(classifier: nn.Module, x: Tensor, batch: int = 4096) -> Tensor:
    """Class indices ``classifier(x).argmax(1)`` of rows ``x`` (any leading shape), in batches."""
    flat = x.reshape(-1, x.shape[-1]).to(torch.float32)
    out = torch.cat([classifier(flat[i:i + batch]).argmax(1) for i in range(0, len(flat), batch)])
    return out.reshape(x.shape[:-1])


def chain_report(energies: Tensor, acceptance: Tensor | None = None,
                 labels: Tensor | None = None, n_classes: int | None = None,
                 thin: int = 1) -> dict[str, Any]:
    """The diagnostics of one sampling run, JSON-ready.

    Computed over the whole chains, the transient from their start included: a sampler slow
    to leave its start scores a low ESS.

    Args:
        energies: (steps, chains) a scalar statistic of every chain (its energy), for ESS and tau.
        acceptance: per-pair swap acceptance rates (parallel tempering).
        labels: (records, chains) classes of recorded samples, and ``n_classes``, ``thin``.
    """
    out: dict[str, Any] = {"energy_ess": effective_sample_size(energies),
                           "energy_tau": integrated_autocorrelation_time(energies),
                           "chains": int(energies.shape[1]), "steps": int(energies.shape[0])}
    if acceptance is not None and len(acceptance):
        out.update(swap_acceptance=[float(a) for a in acceptance],
                   swap_acceptance_min=float(acceptance.min()))
    if labels is not None:
        out["class_mixing"] = class_mixing(labels, n_classes, thin).to_dict()
    return out
