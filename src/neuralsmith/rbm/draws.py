r"""Counter-based Bernoulli draws: the random bits of the bf16 fast path.

Once bf16 makes the products cheap, the serial Mersenne Twister behind ``torch.Generator``
is the largest cost of an RBM update: about 10 ns per 64-bit word, one word per two units.
A counter-based generator has no serial state: unit :math:`i` of a draw gets the SplitMix64
hash of a position in a stream picked by a *key* (Steele, Lea & Flood, 2014, *Fast
splittable pseudorandom number generators*; Salmon et al., 2011, *Parallel random numbers:
as easy as 1, 2, 3*),

.. math::
    z_i = \text{mix}(\text{key} + (i + 1)\,\gamma), \qquad
    u_i = \lfloor z_i / 2^{40} \rfloor\, 2^{-24}, \qquad s_i = [u_i < p_i],

with :math:`\gamma` = 0x9E3779B97F4A7C15 and mix the two multiply-xorshift rounds of
SplitMix64: exactly SplitMix64's sequence from seed ``key``, which passes BigCrush. Each
draw takes its key from the caller's ``torch.Generator`` (one integer draw), so a run stays
reproducible from its seed and resumes from a checkpointed generator. A probability is thus
compared with a 24-bit uniform (bias below :math:`2^{-24}`), more than bf16's 8-bit
probabilities resolve.

:func:`reference_bits` is the arithmetic in torch, the specification; for bf16
probabilities :func:`neuralsmith.kernels.bernoulli_bf16` runs the same draws, bit for bit,
as one fused, vectorized and parallel pass.
"""

from __future__ import annotations

import torch
from torch import Generator, Tensor

from neuralsmith import kernels
from neuralsmith.kernels import GAMMA, MIX1, MIX2, UNIFORM_BITS


def signed(value: int) -> int:
    """A 64-bit pattern as the int64 that holds it (torch has no uint64 arithmetic)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` keeps the sign)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def reference_bits(key: int, n: int, device: torch.device | str = "cpu") -> Tensor:
    r"""The ``n`` uniforms' 24-bit integers :math:`\lfloor z_i / 2^{40}\rfloor` of stream ``key``, in torch.

    Example:
        >>> reference_bits(0, 2).tolist()  # SplitMix64 from seed 0: 0xE220A8397B1DCDAF, ...
        [14819496, 7239838]
    """
    z = torch.arange(1, n + 1, dtype=torch.int64, device=device) * signed(GAMMA) + signed(key)
    z = (z ^ _shift_right(z, 30)) * signed(MIX1)
    z = (z ^ _shift_right(z, 27)) * signed(MIX2)
    z = z ^ _shift_right(z, 31)
    return _shift_right(z, 64 - UNIFORM_BITS)


def reference_bernoulli(p: Tensor, key: int) -> Tensor:
    """:math:`[u_i < p_i]` as 0./1. of ``p``'s dtype, from :func:`reference_bits` (any dtype)."""
    u = reference_bits(key, p.numel(), p.device).to(torch.float32).mul_(2.0 ** -UNIFORM_BITS)
    return torch.lt(u.view(p.shape), p).to(p.dtype)


class CounterDraws:
    """Bernoulli draws keyed from a ``torch.Generator``: what the bf16 fast path samples with.

    Each :meth:`bernoulli` takes one 64-bit key from the generator, so the draws follow its
    seed and its checkpointed state.

    Example:
        >>> draws = CounterDraws(torch.Generator().manual_seed(0))
        >>> s = draws.bernoulli(torch.full((10000,), 0.25, dtype=torch.bfloat16))
        >>> s.dtype, abs(float(s.float().mean()) - 0.25) < 0.02
        (torch.bfloat16, True)
    """

    def __init__(self, generator: Generator):
        self.generator = generator
        self.device = generator.device

    def key(self) -> int:
        """A fresh stream key from the generator (63 random bits)."""
        word = torch.empty((), dtype=torch.int64, device=self.device).random_(generator=self.generator)
        return int(word)

    def uniform(self, shape: tuple[int, ...]) -> Tensor:
        """fp32 uniforms on [0, 1) shaped ``shape``, straight from the generator: for the few
        draws (one per row, as a softmax group's) where a counter stream would not pay."""
        return torch.rand(shape, generator=self.generator, device=self.device)

    def bernoulli(self, p: Tensor) -> Tensor:
        """:math:`s \\sim \\text{Bernoulli}(p)` as 0./1. of ``p``'s dtype."""
        key = self.key()
        return kernels.bernoulli_bf16(p, key) if kernels.takes_bernoulli(p) else reference_bernoulli(p, key)


def for_dtype(generator: Generator, dtype: torch.dtype) -> Generator | CounterDraws:
    """What Gibbs draws come from for products in ``dtype``: counter streams for bf16 (the fast
    path), the generator itself otherwise (fp32 and fp64 runs draw as they always have)."""
    return CounterDraws(generator) if dtype == torch.bfloat16 else generator
