r"""Mean-field signal propagation: the variance map, chi_1 and the order-to-chaos line.

In a wide network with weights W_ij ~ N(0, sigma_w^2 / N) and biases b_i ~ N(0, sigma_b^2),
the pre-activations h of a layer are Gaussian with second moment q, and (Poole et al. 2016)

.. math::
    q^{l} = \sigma_w^2\, \mathbb{E}_z\!\left[\phi\!\left(\sqrt{q^{l-1}}\, z\right)^2\right] + \sigma_b^2,
    \qquad
    \chi_1 = \sigma_w^2\, \mathbb{E}_z\!\left[\phi'\!\left(\sqrt{q^*}\, z\right)^2\right],
    \qquad z \sim \mathcal{N}(0, 1)

with q* the fixed point of the first map. chi_1 is the mean squared singular value of one
layer's Jacobian at the fixed point: chi_1 < 1 is the ordered phase (signals and gradients
shrink with depth), chi_1 > 1 the chaotic one (they grow), and chi_1 = 1 the critical line
where deep networks can train (Schoenholz et al. 2017). Pennington, Schoenholz & Ganguli
(2017) add that on this line an *orthogonal* start of a tanh or sigmoid net reaches dynamical
isometry (every singular value near 1) while a Gaussian one cannot.

Expectations over z use Gauss-Hermite quadrature with :data:`QUADRATURE_NODES` nodes.

Example:
    >>> point = critical_point("tanh", sigma_b=0.0)
    >>> round(point.sigma_w, 6), round(point.chi, 6)
    (1.0, 1.0)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["NONLINEARITIES", "QUADRATURE_NODES", "CriticalPoint", "chi_1", "critical_point",
           "gaussian_expectation", "q_map"]

QUADRATURE_NODES = 201  # Gauss-Hermite nodes: exact for polynomials of degree < 402
_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(QUADRATURE_NODES)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


#: nonlinearity -> (phi, phi'): the ones with a critical line at finite q*
NONLINEARITIES: dict[str, tuple[Callable, Callable]] = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))),
}


class CriticalPoint(NamedTuple):
    """A point on the order-to-chaos line: weight and bias standard deviations, q* and chi_1 there."""

    sigma_w: float
    sigma_b: float
    q_star: float
    chi: float


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], variance: float) -> float:
    r"""E[f(sqrt(variance) z)], z ~ N(0, 1), by Gauss-Hermite quadrature.

    .. math::
        \mathbb{E}[f(\sqrt{q} z)] = \frac{1}{\sqrt{\pi}} \sum_i w_i\, f\!\left(\sqrt{2q}\, x_i\right)

    Example:
        >>> round(gaussian_expectation(lambda h: h**2, 3.0), 12)
        3.0
    """
    return float(np.dot(_WEIGHTS, f(math.sqrt(2.0 * variance) * _NODES)) / math.sqrt(math.pi))


def _check_nonlinearity(nonlinearity: str) -> tuple[Callable, Callable]:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {', '.join(map(repr, NONLINEARITIES))} (the ones with an "
                         f"order-to-chaos line at finite q*); got {nonlinearity!r}. For ReLU use He's start")
    return NONLINEARITIES[nonlinearity]


def q_map(q: float, nonlinearity: str, sigma_w: float, sigma_b: float) -> float:
    r"""One layer of the variance map q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 (Poole et al. 2016).

    Example:
        >>> round(q_map(0.0, "tanh", 1.0, 0.1), 6)
        0.01
    """
    phi, _ = _check_nonlinearity(nonlinearity)
    return sigma_w**2 * gaussian_expectation(lambda h: phi(h) ** 2, q) + sigma_b**2


def chi_1(q: float, nonlinearity: str, sigma_w: float) -> float:
    r"""chi_1 = sigma_w^2 E[phi'(sqrt(q) z)^2]: the mean squared singular value of a layer's Jacobian.

    Example:
        >>> chi_1(0.0, "tanh", 1.0)
        1.0
    """
    _, dphi = _check_nonlinearity(nonlinearity)
    return sigma_w**2 * gaussian_expectation(lambda h: dphi(h) ** 2, q)


def _sigma_w_at(q: float, dphi: Callable) -> float:
    """The sigma_w that puts chi_1 = 1 at second moment q."""
    return 1.0 / math.sqrt(gaussian_expectation(lambda h: dphi(h) ** 2, q))


def _bias_gap(q: float, sigma_b: float, phi: Callable, dphi: Callable) -> float:
    """q - sigma_w(q)^2 E[phi^2] - sigma_b^2: zero where q is the fixed point of the critical map."""
    return q - _sigma_w_at(q, dphi) ** 2 * gaussian_expectation(lambda h: phi(h) ** 2, q) - sigma_b**2


def _fixed_point_for_bias(sigma_b: float, phi: Callable, dphi: Callable) -> float:
    """The smallest q* >= 0 of the critical line with bias std sigma_b (bracket on a grid, then bisect)."""
    grid = [0.0] + [10.0 ** (k / 8) for k in range(-80, 33)]  # 1e-10 ... 1e4
    gaps = [_bias_gap(q, sigma_b, phi, dphi) for q in grid]
    if gaps[0] >= 0:
        return 0.0
    k = next((i for i, gap in enumerate(gaps) if gap >= 0), None)
    if k is None:
        raise ValueError(f"no critical point with sigma_b={sigma_b} and q* <= 1e4; choose a smaller sigma_b")
    lo, hi = grid[k - 1], grid[k]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _bias_gap(mid, sigma_b, phi, dphi) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def critical_point(nonlinearity: str = "tanh", *, sigma_b: float | None = None,
                   q_star: float | None = None) -> CriticalPoint:
    r"""(sigma_w, sigma_b) on the order-to-chaos line chi_1 = 1, given sigma_b or the fixed point q*.

    .. math::
        \sigma_w^2\, \mathbb{E}\!\left[\phi'(\sqrt{q^*} z)^2\right] = 1, \qquad
        q^* = \sigma_w^2\, \mathbb{E}\!\left[\phi(\sqrt{q^*} z)^2\right] + \sigma_b^2

    Given q*, the first equation gives sigma_w and the second sigma_b (a q* for which
    sigma_b^2 would be negative is refused). Given sigma_b, q* is the smallest root of the
    second equation with sigma_w from the first. For tanh, sigma_b -> 0 gives q* -> 0 and
    sigma_w -> 1; small q* is where Pennington et al. (2017) find orthogonal tanh nets isometric.

    Args:
        nonlinearity: ``"tanh"`` or ``"sigmoid"``.
        sigma_b: the bias standard deviation, >= 0 (give this or ``q_star``, not both).
        q_star: the pre-activation second moment at the fixed point, >= 0.

    Returns:
        A :class:`CriticalPoint` (sigma_w, sigma_b, q_star, chi), chi = chi_1 at (sigma_w, q*).

    Raises:
        ValueError: an unknown nonlinearity, both or neither of sigma_b and q_star, a negative
            value, or a q* that no real sigma_b reaches.

    Example:
        >>> p = critical_point("tanh", q_star=1 / 64)
        >>> round(p.sigma_w, 3), round(p.sigma_b, 4)
        (1.015, 0.0022)

    References:
        Pennington, Schoenholz & Ganguli (2017). Resurrecting the sigmoid in deep learning through dynamical isometry. NeurIPS.
        Poole et al. (2016), exponential expressivity in deep neural networks through transient chaos;
        Schoenholz et al. (2017), deep information propagation.
    """
    phi, dphi = _check_nonlinearity(nonlinearity)
    if (sigma_b is None) == (q_star is None):
        raise ValueError("give exactly one of sigma_b= (bias std) or q_star= (fixed-point second moment)")
    if sigma_b is not None and not sigma_b >= 0:
        raise ValueError(f"sigma_b must be >= 0 (a standard deviation); got {sigma_b}")
    if q_star is not None and not q_star >= 0:
        raise ValueError(f"q_star must be >= 0 (a second moment); got {q_star}")
    q = _fixed_point_for_bias(sigma_b, phi, dphi) if q_star is None else float(q_star)
    sigma_w = _sigma_w_at(q, dphi)
    bias_var = q - sigma_w**2 * gaussian_expectation(lambda h: phi(h) ** 2, q)
    if bias_var < -1e-12 * max(q, 1.0):
        raise ValueError(f"q_star={q_star} is below every critical fixed point of {nonlinearity} "
                         f"(it would need sigma_b^2 = {bias_var:.3g} < 0); choose a larger q_star")
    sigma_b = math.sqrt(max(bias_var, 0.0)) if sigma_b is None else float(sigma_b)
    return CriticalPoint(sigma_w, sigma_b, q, chi_1(q, nonlinearity, sigma_w))
