r"""Initializers: a drop-in superset of ``torch.nn.init``, plus one variance-scaling core, named
presets, identity, Martens' sparse init and LSUV.

**torch.nn.init's names mean what they mean there.** Every function whose name
``torch.nn.init`` also has (``uniform_``, ``normal_``, ``trunc_normal_``, ``constant_``,
``ones_``, ``zeros_``, ``eye_``, ``dirac_``, ``xavier_uniform_``, ``xavier_normal_``,
``kaiming_uniform_``, ``kaiming_normal_``, ``orthogonal_``, ``sparse_``, ``calculate_gain`` and
the deprecated forms without ``_``) takes the same arguments with the same defaults and, given
the same generator, fills the same values: it *is* torch's function, or a thin wrapper with a
docstring here. So ``from neuralsmith import init as nn_init`` can replace
``from torch.nn import init``. The lecture's symmetric forms have names of their own:
:func:`symmetric_uniform_` (U(-a, a)), :func:`gaussian_` (N(0, std^2)) and
:func:`sparse_martens_` (a count of non-zero weights per unit).

Conventions of the functions of this module, written once:

* **Layout.** Weights follow ``nn.Linear``: ``(out, in, *kernel)``. So
  ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)`` (see :func:`fans`).
* **Truncated normals** (``variance_scaling_(..., "truncated_normal")``) are cut at
  ``TRUNCATION = 2`` standard deviations of the underlying normal, and that normal is widened
  by ``1 / 0.8796...`` so that the values *kept* have the standard deviation asked for (the
  JAX / Keras convention). :func:`trunc_normal_` is torch's: its ``std`` is the untruncated one
  and its cut points ``a``, ``b`` are absolute values.
* **Randomness.** Every draw goes through the ``generator`` (a ``torch.Generator`` on the
  tensor's device; keyword-only in the functions that torch does not have); ``None`` uses
  torch's global generator.
* Every function fills the tensor in place, under ``torch.no_grad()``, and returns it.

:data:`SCHEMES` names the initializers that :func:`apply` runs on every Linear, Conv and RNN
weight of a model: ``uniform`` is :func:`symmetric_uniform_`, ``normal`` :func:`gaussian_`,
``sparse`` :func:`sparse_martens_`, ``default`` PyTorch's own ``reset_parameters()``, and every
other scheme is the function of its name with a trailing ``_``.

Example:
    >>> import torch
    >>> from neuralsmith import init
    >>> g = torch.Generator().manual_seed(0)
    >>> w = init.glorot_uniform_(torch.empty(300, 200), generator=g)
    >>> round(w.abs().max().item(), 2) <= round((6 / 500) ** 0.5, 2)
    True
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Generator, Tensor, nn
from torch.nn.init import (  # torch's own, re-exported unchanged: the same names mean the same here
    constant, constant_, dirac, dirac_, eye, eye_, kaiming_normal, kaiming_normal_, kaiming_uniform,
    kaiming_uniform_, normal, ones_, orthogonal, sparse, uniform, xavier_normal, xavier_normal_,
    xavier_uniform, xavier_uniform_, zeros_)
from torch.nn.utils import parametrize

from neuralsmith import meanfield
from neuralsmith.layers import RECURRENT, forward_hooks, forward_order, weight_layers
from neuralsmith.meanfield import critical_point

__all__ = [
    # torch.nn.init's names, each with torch's arguments and values
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
    "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "sparse_", "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
    "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse",
    # this module's own
    "SCHEMES", "TRUNCATION", "IdentityConstraint", "Scheme", "apply", "constrain_identity", "critical_",
    "critical_point", "delta_orthogonal_", "fans",
    "gaussian_", "glorot_normal_", "glorot_uniform_", "he_normal_", "he_uniform_", "identity_",
    "identity_penalty", "lecun_normal_", "lecun_uniform_", "lsuv_", "sparse_martens_", "svd_orthogonal_",
    "symmetric_uniform_",
    "variance_scaling_",
]

logger = logging.getLogger(__name__)

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")  # torch's
TRUNCATION = 2.0  # truncated normals keep values within +-2 standard deviations


def _truncated_std(c: float) -> float:
    """Standard deviation of N(0, 1) restricted to [-c, c]."""
    density = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(c / math.sqrt(2))
    return math.sqrt(1 - 2 * c * density / mass)


_TRUNCATED_STD = _truncated_std(TRUNCATION)  # 0.8796...


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ValueError(f"{name} must be {options}; got {value!r}")


def fans(tensor: Tensor) -> tuple[int, int]:
    r"""Fan-in and fan-out of a weight in ``nn.Linear`` layout ``(out, in, *kernel)``.

    .. math::
        \text{fan\_in} = \text{in} \cdot \prod \text{kernel}, \qquad
        \text{fan\_out} = \text{out} \cdot \prod \text{kernel}

    Raises:
        ValueError: for a tensor of fewer than 2 dims (a bias has no fan).

    Example:
        >>> fans(torch.empty(8, 3, 5, 5))  # Conv2d(3, 8, 5)
        (75, 200)
    """
    if tensor.dim() < 2:
        raise ValueError(f"fan-based initializers need a weight of 2 or more dims (out, in, *kernel); "
                         f"got shape {tuple(tensor.shape)}. Fill a 1-D bias with tensor.zero_() "
                         "or neuralsmith.init.gaussian_ instead")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def symmetric_uniform_(tensor: Tensor, a: float, *, generator: Generator | None = None) -> Tensor:
    r"""Fill from U(-a, a).

    .. math::
        W_{ij} \sim \mathcal{U}(-a, a), \qquad \operatorname{Var} W_{ij} = a^2 / 3

    The scheme ``uniform`` of :data:`SCHEMES`. Not torch's ``uniform_(tensor, a, b)``, which
    draws U(a, b) (here as :func:`uniform_`).

    Args:
        tensor: any shape.
        a: the bound, >= 0.
        generator: the source of randomness.

    Example:
        >>> w = symmetric_uniform_(torch.empty(3, 4), 0.5, generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= 0.5)
        True

    References:
        No paper: the building block of the uniform presets, which use a = sqrt(3) * std.
    """
    if not a >= 0:
        raise ValueError(f"a (the bound of U(-a, a)) must be >= 0; got {a}")
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


def gaussian_(tensor: Tensor, std: float, *, generator: Generator | None = None) -> Tensor:
    r"""Fill from N(0, std^2).

    .. math::
        W_{ij} \sim \mathcal{N}(0, \sigma^2)

    The scheme ``normal`` of :data:`SCHEMES`. Not torch's ``normal_(tensor, mean, std)``, whose
    second argument is the mean (here as :func:`normal_`).

    Args:
        tensor: any shape.
        std: the standard deviation, >= 0.
        generator: the source of randomness.

    Example:
        >>> w = gaussian_(torch.empty(100, 100), 0.01, generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 3)
        0.01

    References:
        Hinton (2010). A practical guide to training restricted Boltzmann machines (weights from N(0, 0.01^2)).
    """
    if not std >= 0:
        raise ValueError(f"std must be >= 0; got {std}")
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None) -> Tensor:
    r"""Fill from U(a, b): ``torch.nn.init.uniform_``, same arguments, same values.

    .. math::
        W_{ij} \sim \mathcal{U}(a, b)

    For the symmetric U(-a, a) use :func:`symmetric_uniform_`.

    Example:
        >>> w = uniform_(torch.empty(3, 4), 0.1, generator=torch.Generator().manual_seed(0))
        >>> bool(w.min() >= 0.1 and w.max() <= 1.0)
        True

    References:
        PyTorch, ``torch.nn.init.uniform_``.
    """
    return nn.init.uniform_(tensor, a, b, generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None) -> Tensor:
    r"""Fill from N(mean, std^2): ``torch.nn.init.normal_``, same arguments, same values.

    .. math::
        W_{ij} \sim \mathcal{N}(\mu, \sigma^2)

    The second argument is the *mean*; for N(0, std^2) by its std use :func:`gaussian_`.

    Example:
        >>> w = normal_(torch.empty(100, 100), 1.0, 0.01, generator=torch.Generator().manual_seed(0))
        >>> round(w.mean().item(), 2)
        1.0

    References:
        PyTorch, ``torch.nn.init.normal_``.
    """
    return nn.init.normal_(tensor, mean, std, generator)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Generator | None = None) -> Tensor:
    r"""Fill from N(mean, std^2) cut to [a, b]: ``torch.nn.init.trunc_normal_``, same arguments, same values.

    .. math::
        W_{ij} \sim \mathcal{N}(\mu, \sigma^2)\ \text{conditioned on}\ a \le W_{ij} \le b

    ``std`` is the untruncated normal's, and ``a``, ``b`` are absolute values (not multiples of
    std). ``variance_scaling_(..., "truncated_normal")`` instead cuts at 2 of its standard
    deviations and widens the normal so the kept values have the std asked for.

    Example:
        >>> w = trunc_normal_(torch.empty(100), std=0.02, a=-0.04, b=0.04, generator=torch.Generator())
        >>> bool(w.abs().max() <= 0.04)
        True

    References:
        PyTorch, ``torch.nn.init.trunc_normal_`` (inverse-CDF sampling).
    """
    return nn.init.trunc_normal_(tensor, mean, std, a, b, generator)


def _truncated_normal_(tensor: Tensor, std: float, *, generator: Generator | None = None) -> Tensor:
    """Fill from a normal cut at +-TRUNCATION sigma whose kept values have standard deviation ``std``."""
    sigma = std / _TRUNCATED_STD  # widen so that the kept values have std ``std``
    edge = math.erf(TRUNCATION / math.sqrt(2))  # inverse CDF: x = sqrt(2) erfinv(v), |v| < edge
    with torch.no_grad():
        tensor.uniform_(-edge, edge, generator=generator).erfinv_()
        bound = TRUNCATION * sigma
        return tensor.mul_(math.sqrt(2) * sigma).clamp_(-bound, bound)


_DRAWS = {
    "uniform": lambda t, std, g: symmetric_uniform_(t, math.sqrt(3.0) * std, generator=g),  # std a / sqrt(3)
    "normal": lambda t, std, g: gaussian_(t, std, generator=g),
    "truncated_normal": lambda t, std, g: _truncated_normal_(t, std, generator=g),
}


def variance_scaling_(tensor: Tensor, scale: float, mode: str = "fan_in",
                      distribution: str = "truncated_normal", *,
                      generator: Generator | None = None) -> Tensor:
    r"""Fill from a distribution of variance scale / n, n = fan_in, fan_out or (fan_in + fan_out) / 2.

    .. math::
        \sigma^2 = \frac{\text{scale}}{n}, \qquad
        n = \text{fan\_in},\ \text{fan\_out}\ \text{or}\ \tfrac{1}{2}(\text{fan\_in} + \text{fan\_out})

    ``uniform`` draws U(-sqrt(3) sigma, sqrt(3) sigma), ``normal`` draws N(0, sigma^2), and
    ``truncated_normal`` draws a normal cut at +-2 of its standard deviations, widened so the
    kept values have standard deviation sigma (see the module notes). Every preset is this
    function with fixed (scale, mode, distribution).

    Args:
        tensor: weight of layout (out, in, *kernel), 2 or more dims.
        scale: the variance times n, > 0 (1 keeps a linear layer's signal variance).
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"uniform"``, ``"normal"`` or ``"truncated_normal"``.
        generator: the source of randomness.

    Raises:
        ValueError: for a bad scale, mode, distribution or a tensor of fewer than 2 dims.

    Example:
        >>> w = variance_scaling_(torch.empty(400, 400), 2.0, generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() * 20, 1)  # sqrt(2 / 400) * 20 = 1.41
        1.4

    References:
        The general form behind Glorot (2010), He (2015) and LeCun (1998); JAX / Keras ``VarianceScaling``.
    """
    _check_choice("mode", mode, MODES)
    _check_choice("distribution", distribution, DISTRIBUTIONS)
    if not scale > 0:
        raise ValueError(f"scale must be > 0 (the weight variance times the fan); got {scale}")
    fan_in, fan_out = fans(tensor)
    if tensor.numel() == 0:
        return tensor  # nothing to fill, and no fan to divide by
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return _DRAWS[distribution](tensor, math.sqrt(scale / n), generator)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The gain g for a nonlinearity: ``torch.nn.init.calculate_gain``, same arguments, same values.

    .. math::
        g_{\text{linear, conv}} = g_{\text{sigmoid}} = 1,\quad g_{\tanh} = \tfrac{5}{3},\quad
        g_{\text{relu}} = \sqrt{2},\quad g_{\text{leaky}} = \sqrt{2 / (1 + \alpha^2)},\quad
        g_{\text{selu}} = \tfrac{3}{4}

    For a self-normalizing SELU net use ``lecun_normal_`` (gain 1) as Klambauer et al. (2017) do.

    Args:
        nonlinearity: ``"linear"``, ``"conv1d"`` ... ``"conv_transpose3d"``, ``"sigmoid"``,
            ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or ``"selu"``.
        param: the slope alpha of ``leaky_relu`` for x < 0 (None: 0.01); the others ignore it.

    Raises:
        ValueError: for another nonlinearity (naming the known ones) or a slope that is no number.

    Example:
        >>> calculate_gain("tanh")
        1.6666666666666667

    References:
        He, Zhang, Ren & Sun (2015) for ReLU; PyTorch's ``torch.nn.init.calculate_gain`` for the table.
    """
    _check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    return nn.init.calculate_gain(nonlinearity, param)


def glorot_uniform_(tensor: Tensor, gain: float = 1.0, *, generator: Generator | None = None) -> Tensor:
    r"""Fill from U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    .. math::
        a = g \sqrt{\frac{6}{\text{fan\_in} + \text{fan\_out}}}

    ``variance_scaling_(tensor, gain**2, "fan_avg", "uniform")``; PyTorch's ``xavier_uniform_`` (also here).

    Example:
        >>> w = glorot_uniform_(torch.empty(30, 20), generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= (6 / 50) ** 0.5)
        True

    References:
        Glorot & Bengio (2010). Understanding the difficulty of training deep feedforward neural networks. AISTATS.
    """
    return variance_scaling_(tensor, gain**2, "fan_avg", "uniform", generator=generator)


def glorot_normal_(tensor: Tensor, gain: float = 1.0, *, generator: Generator | None = None) -> Tensor:
    r"""Fill from N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)).

    .. math::
        \sigma = g \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}

    ``variance_scaling_(tensor, gain**2, "fan_avg", "normal")``; PyTorch's ``xavier_normal_`` (also here).

    Example:
        >>> w = glorot_normal_(torch.empty(300, 200), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() * (500 / 2) ** 0.5, 1)
        1.0

    References:
        Glorot & Bengio (2010). Understanding the difficulty of training deep feedforward neural networks. AISTATS.
    """
    return variance_scaling_(tensor, gain**2, "fan_avg", "normal", generator=generator)


def he_uniform_(tensor: Tensor, nonlinearity: str = "relu", mode: str = "fan_in", *,
                negative_slope: float = 0.01, generator: Generator | None = None) -> Tensor:
    r"""Fill from U(-a, a), a = gain * sqrt(3 / fan), fan = fan_in (or fan_out).

    .. math::
        a = g \sqrt{\frac{3}{n}}, \qquad g = \text{calculate\_gain(nonlinearity)}

    ``variance_scaling_(tensor, gain**2, mode, "uniform")``: the values of PyTorch's
    ``kaiming_uniform_(tensor, negative_slope, mode, nonlinearity)``, also in this module with
    torch's argument order and default (``leaky_relu``).

    Example:
        >>> w = he_uniform_(torch.empty(30, 20), generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= (6 / 20) ** 0.5)
        True

    References:
        He, Zhang, Ren & Sun (2015). Delving deep into rectifiers. ICCV.
    """
    gain = calculate_gain(nonlinearity, negative_slope)
    return variance_scaling_(tensor, gain**2, mode, "uniform", generator=generator)


def he_normal_(tensor: Tensor, nonlinearity: str = "relu", mode: str = "fan_in", *,
               negative_slope: float = 0.01, generator: Generator | None = None) -> Tensor:
    r"""Fill from N(0, s^2), s = gain / sqrt(fan), fan = fan_in (or fan_out).

    .. math::
        \sigma = \frac{g}{\sqrt{n}}, \qquad g = \text{calculate\_gain(nonlinearity)}

    ``variance_scaling_(tensor, gain**2, mode, "normal")``: the values of PyTorch's
    ``kaiming_normal_(tensor, negative_slope, mode, nonlinearity)``, also in this module with
    torch's argument order and default (``leaky_relu``).

    Example:
        >>> w = he_normal_(torch.empty(300, 200), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() * (200 / 2) ** 0.5, 1)
        1.0

    References:
        He, Zhang, Ren & Sun (2015). Delving deep into rectifiers. ICCV.
    """
    gain = calculate_gain(nonlinearity, negative_slope)
    return variance_scaling_(tensor, gain**2, mode, "normal", generator=generator)


def lecun_uniform_(tensor: Tensor, *, generator: Generator | None = None) -> Tensor:
    r"""Fill from U(-a, a), a = sqrt(3 / fan_in).

    .. math::
        a = \sqrt{\frac{3}{\text{fan\_in}}}

    ``variance_scaling_(tensor, 1, "fan_in", "uniform")``.

    Example:
        >>> w = lecun_uniform_(torch.empty(30, 12), generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= 0.5)
        True

    References:
        LeCun, Bottou, Orr & Mueller (1998). Efficient BackProp. Neural Networks: Tricks of the Trade.
    """
    return variance_scaling_(tensor, 1.0, "fan_in", "uniform", generator=generator)


def lecun_normal_(tensor: Tensor, *, generator: Generator | None = None) -> Tensor:
    r"""Fill from N(0, s^2), s = 1 / sqrt(fan_in).

    .. math::
        \sigma = \frac{1}{\sqrt{\text{fan\_in}}}

    ``variance_scaling_(tensor, 1, "fan_in", "normal")`` (plain normal, as in the paper; use
    ``variance_scaling_`` with ``"truncated_normal"`` for the JAX flavour).

    Example:
        >>> w = lecun_normal_(torch.empty(300, 100), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() * 10, 1)
        1.0

    References:
        LeCun, Bottou, Orr & Mueller (1998). Efficient BackProp. Neural Networks: Tricks of the Trade.
    """
    return variance_scaling_(tensor, 1.0, "fan_in", "normal", generator=generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    r"""Fill with gain * Q, Q from the QR decomposition of a Gaussian matrix (sign-corrected).

    .. math::
        A_{ij} \sim \mathcal{N}(0, 1),\quad A = Q R,\quad
        W = g\, Q \operatorname{diag}(\operatorname{sign} R_{ii})

    The weight is viewed as ``(out, in * prod(kernel))``; the sign correction makes Q uniformly
    (Haar) distributed, and W has orthonormal rows when out <= in and orthonormal columns
    otherwise. ``torch.nn.init.orthogonal_``: same arguments and, given the same generator, the
    same values.

    Example:
        >>> w = orthogonal_(torch.empty(3, 5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w @ w.T, torch.eye(3, dtype=torch.float64))
        True

    References:
        Saxe, McClelland & Ganguli (2013). Exact solutions to the nonlinear dynamics of learning in deep linear neural networks. ICLR 2014.
    """
    fans(tensor)  # refuses tensors of fewer than 2 dims, naming the fix
    return nn.init.orthogonal_(tensor, gain, generator)


def svd_orthogonal_(tensor: Tensor, gain: float = 1.0, *, generator: Generator | None = None) -> Tensor:
    r"""Fill with gain * U V^T from the SVD of a Gaussian matrix A = U S V^T (the ``orthogonal`` scheme).

    .. math::
        A_{ij} \sim \mathcal{N}(0, 1),\quad A = U S V^\top,\quad W = g\, U V^\top

    The weight is viewed as ``(out, in * prod(kernel))``; ``U V^T`` (the orthogonal polar factor,
    uniformly distributed) has orthonormal rows when out <= in and orthonormal columns otherwise.
    Same distribution as :func:`orthogonal_` (torch's QR construction), other values: the
    ``orthogonal`` scheme of the command line and the study keeps this one, so their recorded
    results stay reproducible.

    Example:
        >>> w = svd_orthogonal_(torch.empty(3, 5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w @ w.T, torch.eye(3, dtype=torch.float64))
        True

    References:
        Saxe, McClelland & Ganguli (2013). Exact solutions to the nonlinear dynamics of learning in deep linear neural networks. ICLR 2014.
    """
    fans(tensor)  # refuses tensors of fewer than 2 dims
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    a = torch.empty(rows, tensor.numel() // rows, dtype=torch.float64, device=tensor.device)
    u, _, vh = torch.linalg.svd(a.normal_(generator=generator), full_matrices=False)
    with torch.no_grad():
        return tensor.copy_((gain * u @ vh).reshape(tensor.shape))


def delta_orthogonal_(tensor: Tensor, gain: float = 1.0, *, generator: Generator | None = None) -> Tensor:
    r"""Fill a conv kernel with gain * H at the kernel's centre and zeros elsewhere (delta-orthogonal).

    .. math::
        W_{:, :, c} = g\, H,\quad H \in \mathbb{R}^{\text{out} \times \text{in}}\ \text{orthogonal},\qquad
        W_{:, :, k} = 0\ \ (k \ne c),\qquad c = (\lfloor k_1 / 2 \rfloor, \dots)

    Layout ``(out, in, *kernel)`` of nn.Conv1d/2d/3d; a 2-D weight (Linear) gets g * H itself.
    H is drawn as in :func:`svd_orthogonal_` and follows torch's convention for its shape:
    orthonormal columns when out >= in (the layer preserves the norm of every input), orthonormal
    rows when out < in (it preserves the norm of every back-propagated gradient). With stride 1
    and circular padding, or zero padding of k // 2 on an odd kernel, such a convolution is an
    orthogonal map of the whole feature map for out >= in: its Jacobian's singular values are all g.

    Example:
        >>> conv = nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular", bias=False).double()
        >>> _ = delta_orthogonal_(conv.weight, generator=torch.Generator().manual_seed(0))
        >>> x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
        >>> torch.allclose(conv(x).norm(), x.norm())
        True

    References:
        Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington (2018). Dynamical isometry and a mean field theory of CNNs: how to train 10,000-layer vanilla convolutional neural networks. ICML.
    """
    fans(tensor)  # refuses tensors of fewer than 2 dims
    if tensor.numel() == 0:
        return tensor
    centre = tuple(k // 2 for k in tensor.shape[2:])
    h = svd_orthogonal_(torch.empty(tensor.shape[:2], dtype=torch.float64, device=tensor.device), gain,
                        generator=generator)
    with torch.no_grad():
        tensor.zero_()
        tensor[(slice(None), slice(None), *centre)] = h.to(tensor.dtype)
        return tensor


CRITICAL_DISTRIBUTIONS = ("orthogonal", "normal")


def critical_(tensor: Tensor, nonlinearity: str = "tanh", sigma_b: float = 0.0,
              distribution: str = "orthogonal", *, generator: Generator | None = None) -> Tensor:
    r"""Fill a weight at the order-to-chaos point of ``nonlinearity``: chi_1 = 1 (orthogonal or Gaussian).

    .. math::
        \sigma_w^2\, \mathbb{E}\!\left[\phi'(\sqrt{q^*} z)^2\right] = 1,\quad
        q^* = \sigma_w^2\, \mathbb{E}\!\left[\phi(\sqrt{q^*} z)^2\right] + \sigma_b^2;\qquad
        W = \sigma_w H\ \ \text{(orthogonal)}\quad\text{or}\quad W_{ij} \sim \mathcal{N}(0, \sigma_w^2 / \text{fan\_in})

    sigma_w comes from :func:`neuralsmith.meanfield.critical_point` for the bias std sigma_b.
    ``orthogonal`` fills a 2-D weight as :func:`svd_orthogonal_` and a conv kernel as
    :func:`delta_orthogonal_`, each with gain sigma_w; ``normal`` draws the scaled Gaussian.
    A 1-D tensor (a bias) is filled from N(0, sigma_b^2); ``apply(model, "critical", ...)``
    does so for every bias. Layout ``(out, in, *kernel)``. To start at a chosen fixed point q*
    instead, pass ``sigma_b=critical_point(nonlinearity, q_star=q).sigma_b``.

    Args:
        tensor: a weight (2 or more dims) or a bias (1 dim).
        nonlinearity: ``"tanh"`` or ``"sigmoid"``.
        sigma_b: the bias standard deviation, >= 0 (0: for tanh sigma_w = 1 and q* = 0).
        distribution: ``"orthogonal"`` (dynamical isometry) or ``"normal"``.
        generator: the source of randomness.

    Example:
        >>> w = critical_(torch.empty(64, 64), "tanh", generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w @ w.T, torch.eye(64), atol=1e-5)  # sigma_w = 1 for tanh with sigma_b = 0
        True

    References:
        Pennington, Schoenholz & Ganguli (2017). Resurrecting the sigmoid in deep learning through dynamical isometry. NeurIPS.
        Poole et al. (2016); Schoenholz et al. (2017), deep information propagation.
    """
    _check_choice("distribution", distribution, CRITICAL_DISTRIBUTIONS)
    point = meanfield.critical_point(nonlinearity, sigma_b=sigma_b)
    if tensor.dim() == 1:
        return gaussian_(tensor, point.sigma_b, generator=generator)
    if distribution == "normal":
        return variance_scaling_(tensor, point.sigma_w**2, "fan_in", "normal", generator=generator)
    if tensor.dim() == 2:
        return svd_orthogonal_(tensor, point.sigma_w, generator=generator)
    return delta_orthogonal_(tensor, point.sigma_w, generator=generator)


def identity_(tensor: Tensor, scale: float = 1.0) -> Tensor:
    r"""Fill a square recurrent matrix with scale * I.

    .. math::
        W_{hh} = s\, I

    Draws nothing. For the stacked gates of nn.GRU / nn.LSTM use ``apply(model, "identity")``,
    which fills each (hidden, hidden) gate block.

    Example:
        >>> identity_(torch.empty(2, 2), 0.5)
        tensor([[0.5000, 0.0000],
                [0.0000, 0.5000]])

    References:
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """
    if tensor.dim() != 2 or tensor.shape[0] != tensor.shape[1]:
        raise ValueError(f"identity_ needs a square 2-D matrix such as an RNN's weight_hh (hidden, hidden); "
                         f"got shape {tuple(tensor.shape)}. Use apply(model, 'identity') for stacked gates, "
                         "or orthogonal_ for a non-square weight")
    with torch.no_grad():
        return tensor.copy_(scale * torch.eye(tensor.shape[0], dtype=tensor.dtype, device=tensor.device))


def sparse_martens_(tensor: Tensor, n_nonzero: int = 15, std: float = 1.0, *,
                   generator: Generator | None = None) -> Tensor:
    r"""Give each unit n_nonzero incoming weights from N(0, std^2); the rest are 0.

    .. math::
        W_{i,:} = \text{n\_nonzero entries} \sim \mathcal{N}(0, \sigma^2)\ \text{at random positions, else } 0

    Row i (an output unit) of the ``(out, in * prod(kernel))`` view gets its own uniformly random
    set of positions; the scale no longer depends on the fan, which is Martens' point. The
    scheme ``sparse`` of :data:`SCHEMES`. Not torch's ``sparse_(tensor, sparsity, std)``, which
    zeroes a *fraction* of each column of a 2-D tensor (here as :func:`sparse_`).

    Example:
        >>> w = sparse_martens_(torch.empty(4, 50), 15, generator=torch.Generator().manual_seed(0))
        >>> (w != 0).sum(dim=1).tolist()
        [15, 15, 15, 15]

    References:
        Martens (2010). Deep learning via Hessian-free optimization. ICML.
    """
    fan_in, _ = fans(tensor)
    if not 1 <= n_nonzero <= fan_in:
        raise ValueError(f"n_nonzero must be between 1 and fan_in = {fan_in} (incoming weights per unit); "
                         f"got {n_nonzero}")
    rows = tensor.shape[0]
    keys = torch.rand(rows, fan_in, generator=generator, device=tensor.device)
    where = keys.argsort(dim=1)[:, :n_nonzero]  # (rows, n_nonzero): a uniform random subset per row
    values = torch.empty(rows, n_nonzero, dtype=tensor.dtype, device=tensor.device)
    dense = torch.zeros(rows, fan_in, dtype=tensor.dtype, device=tensor.device)
    dense.scatter_(1, where, gaussian_(values, std, generator=generator))
    with torch.no_grad():
        return tensor.copy_(dense.reshape(tensor.shape))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator: Generator | None = None) -> Tensor:
    r"""Zero a fraction ``sparsity`` of each column, N(0, std^2) elsewhere: ``torch.nn.init.sparse_``.

    .. math::
        W_{ij} \sim \mathcal{N}(0, \sigma^2), \quad \text{then}\ \lceil \text{sparsity} \cdot \text{rows} \rceil
        \ \text{entries of each column set to } 0

    Same arguments and values as torch's: 2-D tensors only, and the zeroed rows are drawn from
    torch's *global* generator (torch passes ``generator`` to the values only). For Martens'
    count of non-zero incoming weights per unit use :func:`sparse_martens_`.

    Example:
        >>> w = sparse_(torch.empty(10, 4), 0.3, generator=torch.Generator().manual_seed(0))
        >>> (w == 0).sum(dim=0).tolist()
        [3, 3, 3, 3]

    References:
        Martens (2010). Deep learning via Hessian-free optimization. ICML (as PyTorch reads it).
    """
    return nn.init.sparse_(tensor, sparsity, std, generator)


# --- the identity constraint, hard (a parametrization) and soft (a penalty) ------------------


def _stacked_identity(like: Tensor, scale: float) -> Tensor:
    """scale * I repeated over the gate blocks of a (gates * hidden, hidden) recurrent weight."""
    rows, cols = like.shape
    if like.dim() != 2 or rows % cols:
        raise ValueError(f"the identity constraint needs a (gates * hidden, hidden) recurrent weight; "
                         f"got shape {tuple(like.shape)}. Constrain weight_hh, not weight_ih")
    return scale * torch.eye(cols, dtype=like.dtype, device=like.device).repeat(rows // cols, 1)


class IdentityConstraint(nn.Module):
    r"""Parametrization keeping a recurrent matrix near scale * I: W = scale * I + D * min(1, r / ||D||_F).

    .. math::
        W = s I + D \min\!\left(1, \frac{r}{\lVert D \rVert_F}\right), \qquad
        \lVert W - s I \rVert_2 \le \lVert W - s I \rVert_F \le r

    The learned part D is free; what the layer sees is D projected onto the Frobenius ball of
    radius r, so every singular value of W stays in [s - r, s + r]. Stacked gates (nn.GRU,
    nn.LSTM) get scale * I in every gate block. Register it with :func:`constrain_identity`.

    Example:
        >>> c = IdentityConstraint(scale=1.0, radius=0.1)
        >>> bool(torch.linalg.matrix_norm(c(torch.ones(3, 3)) - torch.eye(3)) <= 0.1 + 1e-6)
        True

    References:
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """

    def __init__(self, scale: float = 1.0, radius: float = 0.1):
        super().__init__()
        if not radius > 0:
            raise ValueError(f"radius must be > 0 (how far W may move from scale * I); got {radius}")
        self.scale, self.radius = float(scale), float(radius)

    def forward(self, deviation: Tensor) -> Tensor:
        norm = (deviation * deviation).sum().clamp_min(self.radius**2).sqrt()  # >= r, so no 0/0 at D = 0
        return _stacked_identity(deviation, self.scale) + deviation * (self.radius / norm)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight - _stacked_identity(weight, self.scale)


def constrain_identity(module: nn.Module, name: str = "weight_hh_l0", *, scale: float = 1.0,
                       radius: float = 0.1) -> nn.Module:
    r"""Hold ``module.<name>`` within Frobenius distance ``radius`` of ``scale * I`` while it trains.

    .. math::
        \lVert W - s I \rVert_F \le r

    Registers an :class:`IdentityConstraint` through ``torch.nn.utils.parametrize``. Initialize
    first (``identity_`` or ``apply(model, "identity")``) so the learned part starts at zero.

    Example:
        >>> rnn = constrain_identity(apply(nn.RNN(3, 4), "identity"), radius=0.05)
        >>> torch.equal(rnn.weight_hh_l0, torch.eye(4))
        True

    References:
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """
    if not isinstance(getattr(module, name, None), Tensor):
        raise ValueError(f"{type(module).__name__} has no weight named {name!r}; "
                         "name a recurrent weight such as 'weight_hh_l0'")
    _stacked_identity(getattr(module, name), scale)  # refuses shapes that are not (gates * h, h)
    parametrize.register_parametrization(module, name, IdentityConstraint(scale, radius))
    return module


def identity_penalty(source: Tensor | nn.Module, strength: float = 1e-3, scale: float = 1.0) -> Tensor:
    r"""The soft identity constraint lambda * ||W - scale * I||_F^2, to add to any loss.

    .. math::
        \Omega(W) = \lambda \lVert W - s I \rVert_F^2

    ``source`` is one recurrent weight, or a module: then the sum over the ``weight_hh`` of
    every nn.RNN / nn.GRU / nn.LSTM inside it (each gate block against scale * I).

    Example:
        >>> float(identity_penalty(torch.zeros(2, 2), strength=0.5))
        1.0

    References:
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """
    if not strength >= 0:
        raise ValueError(f"strength (lambda) must be >= 0; got {strength}")
    weights = [source] if isinstance(source, Tensor) else [
        getattr(rnn, name) for _, rnn in weight_layers(source) if isinstance(rnn, RECURRENT)
        for name in _rnn_weight_names(rnn, "hh")]
    if not weights:
        raise ValueError("identity_penalty found no nn.RNN, nn.GRU or nn.LSTM in the module; "
                         "pass the recurrent weight tensor itself")
    return strength * sum((w - _stacked_identity(w, scale)).pow(2).sum() for w in weights)


# --- LSUV ------------------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised from a hook once the layer of interest has run: the rest of the forward is not needed."""


def _recurrent_preactivation(rnn: nn.RNNBase, args: tuple, output: tuple) -> Tensor:
    """W_ih x_t + b_ih + W_hh h_{t-1} + b_hh for every step (GRU: reset gate on the candidate's W_hh h)."""
    x, hx, out = args[0], (args[1] if len(args) > 1 else None), output[0]
    if x.dim() == 2:  # unbatched (T, features)
        x, out = x.unsqueeze(1), out.unsqueeze(1)
    elif rnn.batch_first:
        x, out = x.transpose(0, 1), out.transpose(0, 1)  # (T, B, features)
    h0 = hx[0] if isinstance(hx, tuple) else hx  # nn.LSTM takes (h0, c0)
    h0 = out.new_zeros(out[:1].shape) if h0 is None else h0.reshape(1, -1, rnn.hidden_size)
    h_prev = torch.cat([h0, out[:-1]])  # (T, B, H): the state each step starts from
    ih = F.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0 if rnn.bias else None)
    hh = F.linear(h_prev, rnn.weight_hh_l0, rnn.bias_hh_l0 if rnn.bias else None)
    if isinstance(rnn, nn.GRU):  # gates r, z, n; n = tanh(ih_n + r * hh_n)
        (ih_r, ih_z, ih_n), (hh_r, hh_z, hh_n) = ih.chunk(3, -1), hh.chunk(3, -1)
        return torch.cat([ih_r + hh_r, ih_z + hh_z, ih_n + torch.sigmoid(ih_r + hh_r) * hh_n], -1)
    return ih + hh


def _layer_response(model: nn.Module, layer: nn.Module, batch: Tensor) -> Tensor:
    """What LSUV normalizes: a layer's output (recurrent: its gate pre-activations) on ``batch``."""
    captured = []

    def hook(module, args, output):
        recurrent = isinstance(module, RECURRENT)
        captured.append(_recurrent_preactivation(module, args, output) if recurrent else output)
        raise _StopForward

    with forward_hooks([layer], hook), torch.no_grad():
        try:
            model(batch)
        except _StopForward:
            pass
    return captured[0]


def _scale_to_unit_variance(model: nn.Module, layer: nn.Module, batch: Tensor, tol: float,
                            max_iter: int) -> float:
    """Divide the layer's input weight by the output's std until |Var - 1| < tol; return the last Var."""
    weight = layer.weight_ih_l0 if isinstance(layer, RECURRENT) else layer.weight
    for _ in range(max_iter):
        var = float(_layer_response(model, layer, batch).var())
        if abs(var - 1.0) < tol or not math.isfinite(var) or var == 0.0:
            return var
        with torch.no_grad():
            weight.mul_(var**-0.5)
    return float(_layer_response(model, layer, batch).var())


def _check_lsuv_layers(model: nn.Module) -> None:
    for name, layer in weight_layers(model):
        if isinstance(layer, RECURRENT) and (layer.num_layers != 1 or layer.bidirectional
                                             or getattr(layer, "proj_size", 0)):
            kind = type(layer).__name__
            raise ValueError(f"lsuv_ handles single-layer, one-direction recurrent layers; {name!r} is a "
                             f"stacked, bidirectional or projected nn.{kind}. Build the stack from "
                             f"separate nn.{kind}(..., num_layers=1) modules")


def lsuv_(model: nn.Module, batch: Tensor, *, tol: float = 0.02, max_iter: int = 20,
          generator: Generator | None = None) -> nn.Module:
    r"""Orthogonal start, then scale each layer in forward order to unit output variance on a batch.

    .. math::
        W \leftarrow W / \sqrt{\operatorname{Var}[\text{output}]}\quad
        \text{until}\ |\operatorname{Var}[\text{output}] - 1| < \text{tol}

    Linear and Conv layers are scaled on their output. A recurrent layer's output here is its
    gate pre-activation W_ih x_t + b_ih + W_hh h_{t-1} + b_hh over all steps, and only W_ih is
    scaled: the orthogonal W_hh keeps its norm-preserving spectrum. Recurrent layers must be
    single-layer and one-direction. Biases are zeroed. A layer that does not reach the
    tolerance in ``max_iter`` steps is logged as a warning.

    Args:
        model: any module with Linear, Conv or nn.RNN / nn.GRU / nn.LSTM layers.
        batch: an input batch for ``model``.
        tol: the tolerance on |Var - 1|, > 0.
        max_iter: the most rescalings per layer, >= 1.
        generator: the source of randomness for the orthogonal start.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        >>> x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
        >>> abs(lsuv_(net, x)[:1](x).var().item() - 1) < 0.02
        True

    References:
        Mishkin & Matas (2015). All you need is a good init. ICLR 2016.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0 (the tolerance on |Var - 1|); got {tol}")
    if not max_iter >= 1:
        raise ValueError(f"max_iter must be >= 1 (rescalings per layer); got {max_iter}")
    _check_lsuv_layers(model)
    apply(model, "orthogonal", generator=generator)
    for name, layer in forward_order(model, batch):
        var = _scale_to_unit_variance(model, layer, batch, tol, max_iter)
        if not abs(var - 1.0) < tol:
            logger.warning("LSUV: layer %s ends with output variance %.4g after %d steps", name, var, max_iter)
    return model


# --- the registry and apply() ----------------------------------------------------------------


def _reset_parameters(model: nn.Module, *, generator: Generator | None = None) -> nn.Module:
    r"""PyTorch's own init: each layer's reset_parameters(), weights and biases.

    .. math::
        W_{ij} \sim \mathcal{U}(-1/\sqrt{\text{fan\_in}},\ 1/\sqrt{\text{fan\_in}})\ \text{(Linear, Conv)},\quad
        \mathcal{U}(-1/\sqrt{h},\ 1/\sqrt{h})\ \text{(RNN)}

    With a ``generator``, torch's global generator is seeded from it inside ``fork_rng``, so the
    draw is reproducible and the global state is left as it was.

    References:
        PyTorch defaults (He et al. 2015 uniform with a = sqrt(5) for Linear and Conv).
    """
    layers = [m for _, m in weight_layers(model)]
    if generator is None:
        for layer in layers:
            layer.reset_parameters()
        return model
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for layer in layers:
            layer.reset_parameters()
    return model


@dataclass(frozen=True)
class Scheme:
    """A named initializer; its formula and paper are read from the function's docstring."""

    name: str
    fn: Callable

    @property
    def formula(self) -> str:
        return inspect.getdoc(self.fn).splitlines()[0].rstrip(".")

    @property
    def paper(self) -> str:
        lines = inspect.getdoc(self.fn).splitlines()
        return lines[lines.index("References:") + 1].strip()

    def options(self) -> list[str]:
        """The keyword options ``apply`` passes on (everything but the tensor and the generator)."""
        skip = {"tensor", "model", "generator"}
        return [p for p in inspect.signature(self.fn).parameters if p not in skip]

    def required(self) -> list[str]:
        """The options without a default, which ``apply`` must be given."""
        params = inspect.signature(self.fn).parameters
        return [p for p in self.options() if params[p].default is inspect.Parameter.empty]

    def defaults(self) -> dict:
        """The options a command or a study start takes when none are named: the function's
        own defaults and, for an option ``apply`` requires, the standard value of
        :data:`STANDARD_OPTIONS` (the one home of those values)."""
        params = inspect.signature(self.fn).parameters
        own = {p: params[p].default for p in self.options() if p not in self.required()}
        return {**own, **STANDARD_OPTIONS.get(self.name, {})}


#: standard values of options ``apply`` requires, for commands and study starts that name only
#: the scheme: ``normal`` is N(0, 0.01^2) (Hinton 2010, a practical guide to training RBMs).
STANDARD_OPTIONS: dict[str, dict] = {"normal": {"std": 0.01}}


#: scheme name -> function; ``uniform``, ``normal`` and ``sparse`` are the lecture's forms
#: (U(-a, a), N(0, std^2), n_nonzero weights per unit), not torch's functions of those names
_SCHEME_FUNCTIONS: dict[str, Callable] = {
    "uniform": symmetric_uniform_, "normal": gaussian_, "variance_scaling": variance_scaling_,
    "glorot_uniform": glorot_uniform_, "glorot_normal": glorot_normal_, "he_uniform": he_uniform_,
    "he_normal": he_normal_, "lecun_uniform": lecun_uniform_, "lecun_normal": lecun_normal_,
    "orthogonal": svd_orthogonal_, "identity": identity_, "sparse": sparse_martens_, "lsuv": lsuv_,
    "delta_orthogonal": delta_orthogonal_, "critical": critical_,
}
SCHEMES: dict[str, Scheme] = {name: Scheme(name, fn) for name, fn in _SCHEME_FUNCTIONS.items()}
SCHEMES["default"] = Scheme("default", _reset_parameters)


def _scheme(name: str, options: dict) -> Scheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown init scheme {name!r}; choose one of {', '.join(sorted(SCHEMES))} "
                         "(`neuralsmith init list` shows them)")
    scheme = SCHEMES[name]
    allowed = scheme.options() + (["input_std"] if name == "identity" else [])
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"scheme {name!r} takes the options {allowed}; got unknown {unknown}")
    missing = [p for p in scheme.required() if p not in options]
    if missing:
        example = ", ".join(f"{p}=..." for p in missing)
        raise ValueError(f"scheme {name!r} needs the option(s) {missing}: apply(model, {name!r}, {example})")
    return scheme


def _rnn_weight_names(rnn: nn.RNNBase, kind: str) -> list[str]:
    """Names of an RNN's ``weight_<kind>_l<k>[_reverse]`` tensors (kind: ih, hh or hr)."""
    if kind == "hr" and not getattr(rnn, "proj_size", 0):
        return []
    suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
    return [f"weight_{kind}_l{k}{s}" for k in range(rnn.num_layers) for s in suffixes]


def _fill_layer(layer: nn.Module, input_rule: Callable, recurrent_rule: Callable) -> None:
    """Fill a layer's weights: recurrent ones gate block by gate block, W_hh with ``recurrent_rule``."""
    if not isinstance(layer, RECURRENT):
        input_rule(layer.weight)
        return
    for kind, rule in (("ih", input_rule), ("hh", recurrent_rule), ("hr", input_rule)):
        for name in _rnn_weight_names(layer, kind):
            weight = getattr(layer, name)
            gates = weight.shape[0] // layer.hidden_size if kind != "hr" else 1
            for block in weight.detach().chunk(gates, dim=0):  # views: filled in place
                rule(block)


def _rules(name: str, options: dict, generator: Generator | None) -> tuple[Callable, Callable]:
    """(input rule, recurrent rule) for a scheme; only ``identity`` tells them apart."""
    if name == "identity":
        std = options.get("input_std")
        fill_input = (lambda w: lecun_normal_(w, generator=generator)) if std is None else (
            lambda w: gaussian_(w, std, generator=generator))
        return fill_input, lambda w: identity_(w, options.get("scale", 1.0))
    fn = SCHEMES[name].fn

    def rule(w: Tensor) -> Tensor:
        return fn(w, **options, generator=generator)

    return rule, rule


def apply(model: nn.Module, scheme: str, *, bias: float | None = None,
          generator: Generator | None = None, **options) -> nn.Module:
    r"""Initialize every Linear, Conv and RNN weight of ``model`` with the named ``scheme``.

    .. math::
        W \leftarrow \text{SCHEMES[scheme]}(W, \text{options}) \quad \text{for each weight (each gate block)}

    nn.RNN / nn.GRU / nn.LSTM stack their gates in ``weight_ih`` and ``weight_hh``; each
    (hidden, ...) gate block is filled on its own, so fans and orthogonality are per gate.
    ``identity`` puts scale * I in each ``weight_hh`` block and N(0, 1 / fan_in) (or
    N(0, input_std^2)) in every other weight. ``lsuv`` needs ``batch=``. Biases are set to 0,
    or to ``bias`` if given; ``default`` keeps PyTorch's own biases unless ``bias`` is given, and
    ``critical`` draws them from N(0, sigma_b^2).

    Args:
        model: the module to initialize in place.
        scheme: a name in :data:`SCHEMES`.
        bias: the value for every bias (None: the scheme's rule).
        generator: the source of randomness.
        **options: the scheme's own options, e.g. ``gain=``, ``nonlinearity=``, ``std=``.

    Raises:
        ValueError: for an unknown scheme, an option it does not take, or one it needs and lacks.

    Example:
        >>> net = apply(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), "he_normal", generator=torch.Generator())
        >>> net[0].bias.abs().sum().item()
        0.0

    References:
        See each scheme's own function.
    """
    _scheme(scheme, options)
    if scheme == "critical":  # check the options before any weight is touched
        _check_choice("distribution", options.get("distribution", "orthogonal"), CRITICAL_DISTRIBUTIONS)
        critical_point(options.get("nonlinearity", "tanh"), sigma_b=options.get("sigma_b", 0.0))
    if scheme == "lsuv" and bias is not None:
        raise ValueError("lsuv zeroes the biases before it measures variances; drop bias=, or set "
                         "biases yourself and call lsuv_ after")
    if scheme == "lsuv":
        lsuv_(model, generator=generator, **options)
    elif scheme == "default":
        _reset_parameters(model, generator=generator)
    else:
        input_rule, recurrent_rule = _rules(scheme, options, generator)
        for _, layer in weight_layers(model):
            _fill_layer(layer, input_rule, recurrent_rule)
    if scheme == "critical" and bias is None:  # biases from N(0, sigma_b^2), as in the mean-field theory
        for b in _biases(model):
            gaussian_(b, options.get("sigma_b", 0.0), generator=generator)
    elif bias is not None or scheme not in ("default", "lsuv"):
        _fill_biases(model, 0.0 if bias is None else bias)
    return model


def _biases(model: nn.Module) -> list[Tensor]:
    return [p for _, layer in weight_layers(model) for name, p in layer.named_parameters(recurse=False)
            if name.startswith("bias")]


def _fill_biases(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in _biases(model):
            p.fill_(value)
