r"""The singular values of a network's input-output Jacobian, and whether it is isometric.

The back-propagated gradient at the input is J^T times the one at the output, J = dy/dx at a
sample x. How well a deep network trains depends on the whole spectrum of J, not only on its
mean: Saxe et al. (2013) showed that orthogonal deep *linear* nets, whose singular values are
all 1 (dynamical isometry), learn in a time independent of depth; Pennington, Schoenholz &
Ganguli (2017) that orthogonal tanh nets at the order-to-chaos point stay near isometric at
any depth while Gaussian ones and every ReLU net spread out. :func:`jacobian_spectrum`
measures it. Its summary, over the pooled singular values s of every sample:

.. math::
    \chi = \overline{s^2}, \qquad
    \text{spread} = \log_{10} \frac{s_{95\%}}{s_{5\%}}, \qquad
    \kappa = \frac{s_{\max}}{s_{\min}}

(chi is the mean squared singular value: chi < 1 shrinks gradients, chi > 1 grows them;
spread is the 5-95% range in decades; a Jacobian with zero singular values has infinite
spread and condition number). The verdict, in this order:

* ``exploding`` if chi > :data:`EXPLODING_ABOVE` (= 10) or anything is not finite;
* ``collapsing`` if chi < :data:`COLLAPSING_BELOW` (= 0.1);
* ``ill-conditioned`` if spread > :data:`ILL_CONDITIONED_SPREAD` (= 1 decade: the top 5% of
  directions are amplified more than 10 times as much as the bottom 5%);
* ``isometric`` otherwise: gradients keep their size (within a factor sqrt(10) ~ 3 on average)
  and their shape.

For a Jacobian of shape (m, n) the spectrum holds its min(m, n) singular values (the nonzero
ones of J^T J or J J^T, whichever is smaller).

**Methods.** ``exact`` forms J for every sample with ``torch.func.jacrev`` (or ``jacfwd`` when
the output is larger than the input) under ``vmap`` and takes its SVD. ``lanczos`` never forms
J: it runs ``steps`` Lanczos iterations with full reorthogonalization on the smaller Gram
matrix (J^T J through a JVP then a VJP, or J J^T) from ``n_probe`` random unit vectors per
sample, and returns the Ritz values with their Gauss quadrature weights, the stochastic Lanczos
quadrature (SLQ) estimate of the spectral density (Golub & Meurant 2010; Ubaru, Chen & Saad
2017). What it guarantees, and what the tests check:

* with ``steps`` >= min(m, n) the Ritz values are the spectrum, to rounding;
* chi is the Hutchinson estimate v^T A v of the mean eigenvalue: unbiased, with relative
  standard error sqrt(2 sum s^4) / sum s^2 / sqrt(n_probe * samples) (sqrt(2 / (dim *
  n_probe * samples)) for a near-isometric J, larger when a few directions dominate);
* the extreme Ritz values lie inside the spectrum and converge first: s_max to 1e-6 and s_min
  within 5% for 32 steps on a near-isometric 128-dimensional Jacobian (chi within 15%, spread
  within 0.1 decade there, 4 samples x 4 probes);
* the small singular values of an ill-conditioned J are not resolved (J^T J loses whatever
  lies below sqrt(eps) * s_max, and a few quadrature nodes cannot place a thin tail): there
  the spread and condition number are lower estimates (in the tested case still above the
  ill-conditioned threshold).

``auto`` is ``exact`` when min(m, n) <= :data:`EXACT_MAX_DIM`, else ``lanczos``.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(16, 16, bias=False)).double()
    >>> _ = nn.init.orthogonal_(net[0].weight, generator=g)
    >>> spec = jacobian_spectrum(net, torch.randn(4, 16, dtype=torch.float64, generator=g))
    >>> spec.verdict, round(spec.chi, 6), round(spec.condition, 6)
    ('isometric', 1.0, 1.0)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Generator, Tensor, nn
from torch.func import jacfwd, jacrev, jvp, vjp, vmap

from neuralsmith.layers import WEIGHT_LAYERS

__all__ = [
    "COLLAPSING_BELOW", "EXACT_MAX_DIM", "EXPLODING_ABOVE", "ILL_CONDITIONED_SPREAD", "METHODS",
    "Spectrum", "jacobian_spectrum", "lanczos", "layer_blocks", "spectrum_verdict", "weighted_quantile",
]

COLLAPSING_BELOW = 0.1  # chi (mean squared singular value) below this: collapsing
EXPLODING_ABOVE = 10.0  # chi above this: exploding
ILL_CONDITIONED_SPREAD = 1.0  # log10(s_95% / s_5%) above this: ill-conditioned
EXACT_MAX_DIM = 1024  # method="auto": exact when min(m, n) <= this
METHODS = ("auto", "exact", "lanczos")
DEFAULT_STEPS = 64  # Lanczos iterations (capped at the Gram matrix's size)


def spectrum_verdict(chi: float, spread: float) -> str:
    """``isometric``, ``ill-conditioned``, ``collapsing`` or ``exploding`` (see the module notes).

    Example:
        >>> spectrum_verdict(1.0, 0.2), spectrum_verdict(1.0, 2.0), spectrum_verdict(1e-3, 0.1), spectrum_verdict(1e3, 0.1)
        ('isometric', 'ill-conditioned', 'collapsing', 'exploding')
    """
    if not math.isfinite(chi) or chi > EXPLODING_ABOVE:
        return "exploding"
    if chi < COLLAPSING_BELOW:
        return "collapsing"
    return "isometric" if spread <= ILL_CONDITIONED_SPREAD else "ill-conditioned"  # inf, nan: ill


def weighted_quantile(values: Tensor, weights: Tensor, p: float) -> float:
    """The smallest value whose cumulative weight reaches fraction ``p`` of the total.

    Example:
        >>> weighted_quantile(torch.tensor([3.0, 1.0, 2.0]), torch.ones(3), 0.5)
        2.0
    """
    order = torch.argsort(values)
    cum = torch.cumsum(weights[order], 0)
    k = int(torch.searchsorted(cum, p * cum[-1]).clamp(max=len(cum) - 1))
    return float(values[order][k])


@dataclass(frozen=True)
class Spectrum:
    """Singular values of dy/dx at each sample, with their summary and verdict.

    ``values[i]`` holds sample i's singular values, descending (``lanczos``: one row per probe,
    the Ritz singular values sqrt(theta)); ``weights[i]`` their weights, each row summing to 1
    (exact: uniform; ``lanczos``: the Gauss quadrature weights). ``shape`` is J's (m, n).
    Singular values below the numerical noise (s_max * max(m, n) * eps for ``exact``, the
    square root of that for ``lanczos``, whose Gram matrix squares them) are set to 0;
    ``zero_fraction`` is their share (a ReLU net's Jacobian loses a direction with every unit
    that is off), and any zero makes the spread and condition number infinite.
    ``layers``: per-layer spectra ``(name, Spectrum)`` when asked for.
    """

    values: Tensor
    weights: Tensor
    method: str
    shape: tuple[int, int]
    chi: float
    spread: float
    condition: float
    verdict: str
    zero_fraction: float = 0.0
    layers: tuple[tuple[str, "Spectrum"], ...] = ()

    @classmethod
    def from_values(cls, values: Tensor, weights: Tensor, method: str, shape: tuple[int, int],
                    layers: tuple = (), zero_below: float = 0.0) -> "Spectrum":
        """Summarise pooled singular values (rows of ``values``, weights normalised per row);
        values below ``zero_below`` times the largest become 0."""
        values, weights = values.detach().double().cpu(), weights.detach().double().cpu()
        weights = weights / weights.sum(1, keepdim=True)
        values = values.masked_fill(values < zero_below * values.max(), 0.0)
        flat_v, flat_w = values.flatten(), weights.flatten()
        chi = float((flat_w * flat_v**2).sum() / len(values))
        live = flat_w > 0
        lo, hi = weighted_quantile(flat_v, flat_w, 0.05), weighted_quantile(flat_v, flat_w, 0.95)
        spread = math.log10(hi / lo) if lo > 0 else math.inf
        smin, smax = float(flat_v[live].min()), float(flat_v[live].max())
        condition = smax / smin if smin > 0 else math.inf
        zeros = float((flat_w * (flat_v == 0)).sum() / len(values))
        return cls(values, weights, method, shape, chi, spread, condition, spectrum_verdict(chi, spread), zeros,
                   layers)

    def summary(self) -> dict:
        """chi, spread, condition, verdict, method, shape, s_min, s_max, zero_fraction and
        s2_variance (the variance of s^2 about chi: Pennington et al.'s sigma^2 of the spectrum of
        J J^T, which grows linearly with depth, slowly for an orthogonal critical start) as plain values."""
        live = self.values[self.weights > 0]
        s2_variance = float((self.weights * (self.values**2 - self.chi) ** 2).sum() / len(self.values))
        return {"chi": self.chi, "s2_variance": s2_variance, "spread": self.spread, "condition": self.condition, "verdict": self.verdict,
                "method": self.method, "shape": list(self.shape), "s_min": float(live.min()),
                "s_max": float(live.max()), "zero_fraction": self.zero_fraction}

    def describe(self) -> str:
        """One line: chi, spread, condition and verdict, e.g. for a legend."""
        zeros = f", {100 * self.zero_fraction:.0f}% zero" if self.zero_fraction else ""
        return f"chi {self.chi:.3g}, spread {self.spread:.2g} dec, cond {self.condition:.2g}{zeros}, {self.verdict}"

    def to_dict(self) -> dict:
        """:meth:`summary`, the values and weights as lists, and every layer's dict."""
        return {**self.summary(), "values": self.values.tolist(), "weights": self.weights.tolist(),
                "layers": {name: layer.to_dict() for name, layer in self.layers}}

    def density(self, bins: int | None = None) -> tuple[Tensor, Tensor]:
        """Histogram density of log10 s over the pooled nonzero values: ``(bin edges, density)``.

        ``bins`` defaults to sqrt(number of values), within 10 and 60. The density integrates to
        1 over the nonzero values (``zero_fraction`` says how many are left out).
        """
        live = (self.weights > 0) & (self.values > 0)
        bins = bins or min(60, max(10, math.isqrt(int(live.sum()))))
        if not live.any():
            return torch.linspace(-1.0, 1.0, bins + 1, dtype=torch.float64), torch.zeros(bins, dtype=torch.float64)
        logs, w = self.values[live].log10(), self.weights[live]
        lo, hi = float(logs.min()), float(logs.max())
        lo, hi = (lo - 0.05, hi + 0.05) if hi - lo < 0.1 else (lo, hi)
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
        idx = torch.bucketize(logs, edges[1:-1])
        mass = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, w)
        return edges, mass / (mass.sum() * (edges[1] - edges[0]))


# --- the Jacobian of one sample --------------------------------------------------------------


def _per_sample(model: nn.Module, shape: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    """x (one sample, shape ``shape``) -> the flat output of ``model`` on the batch of it alone."""
    return lambda x: model(x.reshape(1, *shape)).reshape(-1)


def _exact(f: Callable, x: Tensor, n_out: int) -> Tensor:
    """Singular values (samples, min(m, n)) of J = df/dx at each row of ``x`` (flat samples)."""
    n_in = x.shape[1]
    jac = jacrev(f) if n_out <= n_in else jacfwd(f)
    try:
        jacobians = vmap(jac)(x)  # (samples, m, n)
    except (RuntimeError, ValueError):  # a module vmap cannot batch: one sample at a time
        jacobians = torch.stack([jac(xi) for xi in x])
    return torch.linalg.svdvals(jacobians.detach().double())


def lanczos(matvec: Callable[[Tensor], Tensor], v0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    r"""Ritz values and Gauss quadrature weights of a symmetric PSD operator from start ``v0``.

    .. math::
        A V_k = V_k T_k + \beta_k v_{k+1} e_k^\top,\qquad T_k = S \Theta S^\top,\qquad
        v_0^\top f(A) v_0 \approx \sum_i \tau_i^2 f(\theta_i),\ \tau_i = S_{0i}

    Full reorthogonalization (twice, against every earlier Lanczos vector) keeps V_k orthonormal
    in floating point, so no spurious copies of converged Ritz values appear. Stops early when
    the Krylov space is invariant (then the Ritz values are exact eigenvalues).

    Args:
        matvec: v -> A v for flat vectors.
        v0: the start vector (normalised here).
        steps: the most iterations, >= 1.

    Returns:
        ``(theta, tau2)``: Ritz values (clamped at 0) and weights summing to 1, descending.

    References:
        Lanczos (1950); Golub & Meurant (2010), Matrices, moments and quadrature with applications.
    """
    basis = [v0 / v0.norm()]
    alphas, betas = [], []
    for j in range(steps):
        w = matvec(basis[j])
        alphas.append(torch.dot(w, basis[j]))
        stacked = torch.stack(basis)  # (j + 1, dim)
        for _ in range(2):
            w = w - stacked.T @ (stacked @ w)
        beta = w.norm()
        if j == steps - 1 or beta <= 1e-10 * max(abs(float(a)) for a in alphas):
            break
        betas.append(beta)
        basis.append(w / beta)
    tri = torch.diag(torch.stack(alphas)) + torch.diag(torch.stack(betas), 1) + torch.diag(torch.stack(betas), -1) \
        if betas else torch.stack(alphas).reshape(1, 1)
    theta, vectors = torch.linalg.eigh(tri)
    return theta.flip(0).clamp(min=0), vectors[0].flip(0) ** 2


def _gram_matvec(f: Callable, xi: Tensor, n_out: int) -> tuple[Callable[[Tensor], Tensor], int]:
    """The smaller of J^T J (v -> vjp(jvp(v))) and J J^T (u -> jvp(vjp(u))) at ``xi``, and its size."""
    _, pullback = vjp(f, xi)
    if xi.numel() <= n_out:
        return lambda v: pullback(jvp(f, (xi,), (v,))[1])[0], xi.numel()
    return lambda u: jvp(f, (xi,), (pullback(u)[0],))[1], n_out


def _lanczos(f: Callable, x: Tensor, n_out: int, steps: int, n_probe: int,
             generator: Generator | None) -> tuple[Tensor, Tensor]:
    """SLQ rows (samples * n_probe, k): Ritz singular values and weights, padded with weight 0."""
    rows = []
    for xi in x:
        matvec, dim = _gram_matvec(f, xi, n_out)
        for _ in range(n_probe):
            v0 = torch.randn(dim, generator=generator, dtype=x.dtype, device=x.device)
            theta, tau2 = lanczos(lambda v: matvec(v).detach(), v0, min(steps, dim))
            rows.append((theta.double().sqrt(), tau2.double()))
    k = max(len(v) for v, _ in rows)
    values = torch.stack([torch.cat([v, v[-1:].expand(k - len(v))]) for v, _ in rows])
    weights = torch.stack([torch.cat([w, w.new_zeros(k - len(w))]) for _, w in rows])
    return values, weights


# --- the public entry point ------------------------------------------------------------------


def _flatten(seq: nn.Sequential, prefix: str) -> list[tuple[str, nn.Module]]:
    """The modules of ``seq`` in order, nested Sequentials opened, with dotted names."""
    out = []
    for name, module in seq.named_children():
        full = f"{prefix}{name}"
        out += _flatten(module, full + ".") if isinstance(module, nn.Sequential) else [(full, module)]
    return out


def layer_blocks(model: nn.Module) -> list[tuple[str, nn.Sequential]]:
    """Split an ``nn.Sequential`` (nested ones flattened) at each weight layer: one block per layer.

    Block l is weight layer l with the modules that follow it up to the next weight layer (its
    activation, a Flatten, ...); modules before the first weight layer join the first block.

    Raises:
        ValueError: for a model that is not an ``nn.Sequential`` or holds no weight layer.

    Example:
        >>> [name for name, _ in layer_blocks(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)))]
        ['0', '2']
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError("per_layer=True needs an nn.Sequential (the blocks between weight layers); "
                         f"got {type(model).__name__}. Pass per_layer=False for the whole model's spectrum")
    leaves = _flatten(model, "")
    blocks: list[tuple[str, list[nn.Module]]] = []
    pending: list[nn.Module] = []
    for name, module in leaves:
        if isinstance(module, WEIGHT_LAYERS):
            blocks.append((name, pending + [module]))
            pending = []
        elif blocks:
            blocks[-1][1].append(module)
        else:
            pending.append(module)
    if not blocks:
        raise ValueError("per_layer=True found no Linear or Conv layer in the model")
    return [(name, nn.Sequential(*mods)) for name, mods in blocks]


def _check(x: Tensor, method: str, n_probe: int, steps: int) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x must be a batch (samples, *features) of at least one sample; got shape {tuple(x.shape)}")
    if n_probe < 1 or steps < 1:
        raise ValueError(f"n_probe and steps must be >= 1 (random starts per sample, Lanczos iterations); "
                         f"got {n_probe}, {steps}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point to differentiate through; got {x.dtype}")


def _spectrum_of(model: nn.Module, x: Tensor, method: str, n_probe: int, steps: int,
                 generator: Generator | None) -> Spectrum:
    """The Spectrum of one module (no per-layer split)."""
    shape = tuple(x.shape[1:])
    with torch.no_grad():
        n_out = model(x[:1]).numel()
    f, flat = _per_sample(model, shape), x.reshape(len(x), -1)
    n_in = flat.shape[1]
    if method == "auto":
        method = "exact" if min(n_in, n_out) <= EXACT_MAX_DIM else "lanczos"
    noise = max(n_in, n_out) * torch.finfo(x.dtype).eps  # relative size of rounding in J's singular values
    if method == "exact":
        values = _exact(f, flat, n_out)
        return Spectrum.from_values(values, torch.ones_like(values), "exact", (n_out, n_in), zero_below=noise)
    values, weights = _lanczos(f, flat, n_out, steps, n_probe, generator)
    return Spectrum.from_values(values, weights, "lanczos", (n_out, n_in), zero_below=math.sqrt(noise))


def jacobian_spectrum(model: nn.Module, x: Tensor, *, n_probe: int = 4, steps: int = DEFAULT_STEPS,
                      method: str = "auto", generator: Generator | None = None,
                      per_layer: bool = False) -> Spectrum:
    r"""Singular values of the input-output Jacobian dy/dx of ``model`` at each sample of ``x``.

    .. math::
        J(x) = \frac{\partial\, \mathrm{vec}\, y}{\partial\, \mathrm{vec}\, x},\quad
        \chi = \overline{s^2},\quad \text{spread} = \log_{10}(s_{95\%} / s_{5\%}),\quad
        \kappa = s_{\max} / s_{\min}

    ``model`` maps a batch ``(samples, *shape)`` to a batch of outputs; each sample's output
    is flattened (a CNN's feature maps, an MLP's logits). The model is evaluated as it is
    (``train()`` or ``eval()``: the caller's choice). See the module notes for the methods,
    the verdict thresholds and the randomized method's accuracy.

    Args:
        model: any ``nn.Module`` mapping a tensor to a tensor.
        x: sample inputs, ``(samples, *shape)``, floating point.
        n_probe: random start vectors per sample (``lanczos`` only), >= 1.
        steps: Lanczos iterations per probe (capped at the Gram matrix's size), >= 1.
        method: ``"auto"``, ``"exact"`` or ``"lanczos"``.
        generator: the source of the probes' randomness.
        per_layer: also the spectrum of each layer's Jacobian (an ``nn.Sequential`` split by
            :func:`layer_blocks`), each at the input that layer receives from ``x``.

    Returns:
        A :class:`Spectrum`; with ``per_layer`` its ``layers`` hold ``(name, Spectrum)`` pairs.

    Raises:
        ValueError: a bad method, count or input, or ``per_layer`` on a non-Sequential model.

    References:
        Saxe, McClelland & Ganguli (2013); Pennington, Schoenholz & Ganguli (2017), resurrecting the
        sigmoid in deep learning through dynamical isometry; Xiao et al. (2018) for CNNs.
    """
    _check(x, method, n_probe, steps)
    layers = []
    if per_layer:
        h = x
        for name, block in layer_blocks(model):
            layers.append((name, _spectrum_of(block, h, method, n_probe, steps, generator)))
            with torch.no_grad():
                h = block(h)
    whole = _spectrum_of(model, x, method, n_probe, steps, generator)
    return dataclasses.replace(whole, layers=tuple(layers))
