r"""Unit types: the swappable parts an RBM layer is made of.

Every RBM here has the energy (Welling, Rosen-Zvi & Hinton, 2005: exponential-family harmoniums)

.. math::
    E(v, h) = E_v(v; b, \sigma) + E_h(h; c) - h^\top W\, t(v)

where each layer contributes its own *self-energy* and the visible layer a *statistic*
:math:`t(v)` that meets the weights (:math:`v` itself, or :math:`v/\sigma^2` for Gaussian units).
A unit type is an object that knows, for one layer:

* ``energy(s, bias, std)``: the self-energy :math:`E(s)`, summed over units, shape (batch,);
* ``stat(s, std)``: :math:`t(s)`;
* ``bias_stat(s, bias, std)``: :math:`-\partial E / \partial \text{bias}`, the bias statistic;
* ``mean(x, std)`` and ``sample(x, std, generator)``: the conditional of the layer given its
  *total input* :math:`x = \text{bias} + u`, where :math:`u` is what the other layer sends
  (:math:`u = W t(v)` for the hidden layer, :math:`u = W^\top h` for the visible layer);
* ``free_energy(x, bias, std)``: the layer summed (or integrated) out,
  :math:`-\log \sum_s \exp(-E(s) + u \cdot t(s))`, shape (batch,).

The RBM composes two of these; one training loop serves every pair.
"""

from __future__ import annotations

import math

import torch
from torch import Generator, Tensor

from neuralsmith.rbm.draws import CounterDraws

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def softplus(x: Tensor) -> Tensor:
    r"""Exact, overflow-free :math:`\log(1 + e^x)`, as ``logaddexp(x, 0)``.

    Unlike :func:`torch.nn.functional.softplus` there is no linear cut-off above x = 20, so
    sums over many units stay exact in float64; its gradient is :math:`\sigma(x)` everywhere.

    Example:
        >>> round(float(softplus(torch.tensor(0.0))), 6)
        0.693147
    """
    return torch.logaddexp(x, x.new_zeros(()))


def uniform_like(x: Tensor, generator: Generator | None) -> Tensor:
    """Uniform [0, 1) draws shaped like ``x``, through ``generator``."""
    return torch.empty_like(x).uniform_(generator=generator)


def words_for(n: int) -> int:
    """int64 words :func:`bernoulli` draws for n units: one 32-bit draw a unit, two a word."""
    return (n + 1) // 2


def bernoulli_from_words(words: Tensor, p: Tensor) -> Tensor:
    r""":math:`s = [u < p]` as 0./1. floats of ``p``'s dtype, u made from random int32 ``words``.

    Each uniform :math:`u = k / 2^{23}` is made in place: the word's low 23 bits become the
    mantissa of a float32 in [1, 2), and 1 is subtracted (exact; no integer-to-float
    conversion, no new tensor).

    Example:
        >>> words = torch.tensor([0, 1 << 22, -1], dtype=torch.int32)   # u = 0, 0.5, 1 - 2^-23
        >>> bernoulli_from_words(words, torch.full((3,), 0.5)).tolist()
        [1.0, 0.0, 0.0]
    """
    u = words.bitwise_and_(0x7FFFFF).bitwise_or_(0x3F800000).view(torch.float32).sub_(1.0)
    if p.itemsize < 4:  # bf16 p: compare with the fp32 u (a rounded u would bias the draw)
        return torch.lt(u, p).to(p.dtype)
    return (u if u.dtype == p.dtype else u.to(p.dtype)).lt_(p)


def bernoulli(p: Tensor, generator: Generator | CounterDraws | None) -> Tensor:
    r"""Draw :math:`s \sim \text{Bernoulli}(p)` as 0./1. floats of ``p``'s dtype.

    A :class:`~neuralsmith.rbm.draws.CounterDraws` in place of the generator draws from its
    counter-based stream instead (the bf16 fast path).

    The uniforms are 23-bit (:func:`bernoulli_from_words`), cut two from each 63-bit integer draw: on
    CPUs that costs about 60% of ``torch.rand`` (and a third of ``torch.bernoulli``), which
    matters because the serial Mersenne Twister is the largest cost of a CD step after the
    GEMMs. A probability is rounded up to the next multiple of :math:`2^{-23}` (an error below
    1.2e-7).

    Example:
        >>> s = bernoulli(torch.full((10000,), 0.25), torch.Generator().manual_seed(0))
        >>> abs(float(s.mean()) - 0.25) < 0.02
        True
    """
    if isinstance(generator, CounterDraws):
        return generator.bernoulli(p)
    n = p.numel()
    bits = torch.empty(words_for(n), dtype=torch.int64, device=p.device).random_(generator=generator)
    return bernoulli_from_words(bits.view(torch.int32)[:n].view(p.shape), p)


class Units:
    """What every unit type provides; see the module docstring for the contract."""

    name = ""
    binary = False  # states are {0, 1}: the layer can be enumerated for an exact log Z

    def energy(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def stat(self, s: Tensor, std: Tensor | None = None) -> Tensor:
        """:math:`t(s) = s` unless the unit type says otherwise."""
        return s

    def bias_stat(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        r""":math:`-\partial E/\partial \text{bias} = s` unless the unit type says otherwise."""
        return s

    def mean(self, x: Tensor, std: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def mean_into(self, x: Tensor, out: Tensor, std: Tensor | None = None) -> Tensor:
        """:meth:`mean` written into ``out`` (a view of a larger buffer); returns ``out``."""
        return out.copy_(self.mean(x, std))

    def sample(self, x: Tensor, std: Tensor | None, generator: Generator | None,
               mean: Tensor | None = None) -> Tensor:
        """Draw the layer given total input ``x``; ``mean`` may pass ``mean(x)`` if known."""
        raise NotImplementedError

    def free_energy(self, x: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Bernoulli(Units):
    r"""Binary units: :math:`E(s) = -b^\top s`, :math:`p(s_i = 1 \mid x) = \sigma(x_i)`.

    Example:
        >>> Bernoulli().mean(torch.zeros(1, 2)).tolist()
        [[0.5, 0.5]]
    """

    name = "bernoulli"
    binary = True

    def energy(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        return -(s @ bias)  # (batch,)

    def mean(self, x: Tensor, std: Tensor | None = None) -> Tensor:
        return torch.sigmoid(x)

    def mean_into(self, x: Tensor, out: Tensor, std: Tensor | None = None) -> Tensor:
        return torch.sigmoid(x, out=out)

    def sample(self, x: Tensor, std: Tensor | None, generator: Generator | None,
               mean: Tensor | None = None) -> Tensor:
        """:math:`s = [u < \\sigma(x)]`, :math:`u \\sim U(0, 1)`, as floats (see :func:`bernoulli`)."""
        return bernoulli(torch.sigmoid(x) if mean is None else mean, generator)

    def free_energy(self, x: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        r""":math:`-\sum_i \log(1 + e^{x_i})`."""
        return -softplus(x).sum(-1)


class Gaussian(Units):
    r"""Real-valued units with standard deviation :math:`\sigma` (Cho, Raiko & Ilin, 2011).

    .. math::
        E(s) = \sum_i \frac{(s_i - b_i)^2}{2\sigma_i^2}, \quad t(s) = s / \sigma^2, \quad
        s \mid u \sim \mathcal{N}(b + u, \sigma^2)

    so the conditional mean is the total input :math:`x = b + W^\top h`, whatever
    :math:`\sigma`. With :math:`\sigma = 1` (standardized data) this is the Gaussian-Bernoulli
    RBM of Hinton & Salakhutdinov (2006). ``std=None`` means :math:`\sigma = 1`.

    Example:
        >>> Gaussian().mean(torch.tensor([[0.5]])).tolist()
        [[0.5]]
    """

    name = "gaussian"

    def energy(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        return ((s - bias) / _one(std)).square().sum(-1) / 2  # (batch,)

    def stat(self, s: Tensor, std: Tensor | None = None) -> Tensor:
        return s if std is None else s / std.square()

    def bias_stat(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        return self.stat(s - bias, std)

    def mean(self, x: Tensor, std: Tensor | None = None) -> Tensor:
        return x

    def sample(self, x: Tensor, std: Tensor | None, generator: Generator | None,
               mean: Tensor | None = None) -> Tensor:
        noise = torch.empty_like(x).normal_(generator=generator)
        return x + noise if std is None else torch.addcmul(x, noise, std)

    def free_energy(self, x: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        r""":math:`-\sum_i [(x_i^2 - b_i^2) / (2\sigma_i^2) + \log \sigma_i + \log\sqrt{2\pi}]`."""
        if std is None:
            terms = (x.square() - bias.square()) / 2
        else:
            terms = (x.square() - bias.square()) / (2 * std.square()) + torch.log(std)
        return -(terms.sum(-1) + x.shape[-1] * LOG_SQRT_2PI)

    def log_std_stat(self, s: Tensor, u: Tensor, bias: Tensor, std: Tensor) -> Tensor:
        r""":math:`-\partial E / \partial \log\sigma = ((s - b)^2 - 2 s u) / \sigma^2`, u = W^T h."""
        return ((s - bias).square() - 2 * s * u) / std.square()


class ReLU(Units):
    r"""Rectified Gaussian units: the exact energy model behind noisy ReLUs (Nair & Hinton, 2010).

    .. math::
        E(s) = \sum_j \tfrac12 s_j^2 - c_j s_j, \; s_j \ge 0, \qquad
        s_j \mid x \sim \mathcal{N}(x_j, 1) \text{ truncated to } [0, \infty)

    Nair & Hinton sample :math:`\max(0, x + \mathcal{N}(0, \sigma(x)))` as a cheap stand-in;
    here the truncated normal is sampled exactly, so energies, free energies and CD statistics
    agree. Its mean is :math:`x + \phi(x)/\Phi(x)` and its free-energy term
    :math:`-\sum_j [x_j^2/2 + \log\Phi(x_j) + \log\sqrt{2\pi}]`.

    Example:
        >>> round(float(ReLU().mean(torch.tensor([0.0]))), 4)  # sqrt(2 / pi)
        0.7979
    """

    name = "relu"

    def energy(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        return (s.square() / 2).sum(-1) - s @ bias

    def mean(self, x: Tensor, std: Tensor | None = None) -> Tensor:
        log_ratio = -x.square() / 2 - LOG_SQRT_2PI - torch.special.log_ndtr(x)  # log phi/Phi
        return (x + torch.exp(log_ratio)).clamp_(min=0)

    def sample(self, x: Tensor, std: Tensor | None, generator: Generator | None,
               mean: Tensor | None = None) -> Tensor:
        r"""Inverse CDF: :math:`s = x - \Phi^{-1}(u\,\Phi(x))`, :math:`u \sim U(0,1)`."""
        tiny = torch.finfo(x.dtype).tiny  # where Phi(x) underflows, s ~ 0 anyway
        p = uniform_like(x, generator).mul_(torch.special.ndtr(x)).clamp_(min=tiny)
        return (x - torch.special.ndtri(p)).clamp_(min=0)

    def free_energy(self, x: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        terms = x.square() / 2 + torch.special.log_ndtr(x)
        return -(terms.sum(-1) + x.shape[-1] * LOG_SQRT_2PI)


class Softmax(Units):
    r"""One categorical variable as a one-hot group: the label layer of a classification RBM.

    .. math::
        E(s) = -d^\top s, \quad s \in \{e_1, \dots, e_C\}, \qquad
        p(s = e_y \mid x) = \frac{e^{x_y}}{\sum_{y'} e^{x_{y'}}}, \qquad
        F(x) = -\log \sum_y e^{x_y}

    (Hinton, Osindero & Teh, 2006, the label units of a DBN's top RBM; Larochelle & Bengio,
    2008). Not a layer-wide unit type of :class:`~neuralsmith.rbm.RBM` (not in ``VISIBLE``):
    the whole group is *one* variable.

    Example:
        >>> Softmax().mean(torch.zeros(1, 4)).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """

    name = "softmax"

    def energy(self, s: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        return -(s @ bias)  # (batch,)

    def mean(self, x: Tensor, std: Tensor | None = None) -> Tensor:
        return torch.softmax(x, dim=-1)

    def sample(self, x: Tensor, std: Tensor | None, generator: Generator | None,
               mean: Tensor | None = None) -> Tensor:
        """One-hot rows: the class whose cumulative probability first exceeds one uniform."""
        p = torch.softmax(x, dim=-1) if mean is None else mean
        return torch.nn.functional.one_hot(categorical(p, generator), p.shape[-1]).to(p.dtype)

    def free_energy(self, x: Tensor, bias: Tensor, std: Tensor | None = None) -> Tensor:
        return -torch.logsumexp(x, dim=-1)


def categorical(p: Tensor, generator: Generator | CounterDraws | None) -> Tensor:
    """Draw one class index per row of probabilities ``p`` (batch, C), by inverse CDF.

    The uniform and the cumulative sums are at least fp32 (bf16 would resolve only 2^-8).

    Example:
        >>> categorical(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.Generator()).tolist()
        [1, 0]
    """
    shape, dtype = p.shape[:-1] + (1,), p.dtype if p.itemsize >= 4 else torch.float32
    if isinstance(generator, CounterDraws):
        u = generator.uniform(shape).to(dtype)
    else:
        u = torch.empty(shape, dtype=dtype, device=p.device).uniform_(generator=generator)
    below = (p.cumsum(-1, dtype=dtype) <= u).sum(-1)  # classes whose cumulative mass is still under u
    return below.clamp_(max=p.shape[-1] - 1)


def _one(std: Tensor | None) -> Tensor | float:
    return 1.0 if std is None else std


VISIBLE = {"bernoulli": Bernoulli(), "gaussian": Gaussian()}
HIDDEN = {"bernoulli": Bernoulli(), "relu": ReLU()}


def get(name: str, layer: str) -> Units:
    """The unit type called ``name`` for ``layer`` ("visible" or "hidden").

    Raises:
        ValueError: for a name that layer does not offer.

    Example:
        >>> get("gaussian", "visible")
        Gaussian()
    """
    table = VISIBLE if layer == "visible" else HIDDEN
    if name not in table:
        raise ValueError(f"{layer} units must be one of {', '.join(table)}; got {name!r}")
    return table[name]
