r"""Fused CPU kernels of the bf16 path, compiled by numba: one pass where torch needs several.

Once bfloat16 makes the matrix products cheap, an RBM update is bound by the elementwise
passes around them. Two of them are loops in :mod:`neuralsmith.jit` that numba compiles (on
first use, cached on disk) to vectorized code running on torch's thread count:

* :func:`bernoulli_bf16`: the counter-based Bernoulli draws of
  :mod:`neuralsmith.rbm.draws`, hashed, compared and written as bf16 in one pass (torch
  needs a serial Mersenne Twister call and four elementwise passes);
* :func:`add_bf16`: :math:`T \leftarrow \beta T + \alpha X` for an fp32 ``T`` and a bf16
  ``X`` (torch's mixed-dtype ``add_`` does not vectorize: about 4x slower).

Each has a torch reference that gives the same result (the draws bit for bit, the update to
one fp32 rounding) and runs where numba is not installed, off the CPU, or for other dtypes:
:func:`available` says whether numba is.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2^64 / golden ratio, odd
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # its two multipliers
UNIFORM_BITS = 24  # bits of each uniform: float32 holds them exactly
BF16_ONE = 0x3F80  # the bit pattern of 1.0 in bfloat16


@functools.lru_cache(maxsize=None)
def _compiled() -> Any:
    """The compiled loops (:mod:`neuralsmith.jit`, imported on first use), or None without numba.

    Starting numba's thread pool sets the OpenMP thread count to numba's (every CPU), and
    where numba's OpenMP calls bind to torch's libgomp (the usual case: torch loads it
    globally) that count is torch's too: a process held to one thread would run the bf16
    products on all of them from the first kernel on. So the pool is started here, once,
    and torch's count put back.
    """
    try:
        from neuralsmith import jit
    except ImportError:
        return None
    threads = torch.get_num_threads()
    jit.numba.get_num_threads()  # starts numba's pool
    torch.set_num_threads(threads)
    return jit


def available() -> bool:
    """Whether numba is installed, so that the kernels run compiled."""
    return _compiled() is not None


def _flat_bits(x: Tensor) -> Any:
    """A contiguous bf16 tensor's storage as a flat int16 numpy array (no copy)."""
    return x.view(torch.int16).numpy().reshape(-1)


def _threads(numba: Any) -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _runs(*tensors: Tensor) -> bool:
    """Whether the kernels take these tensors as they are: numba present, CPU, contiguous."""
    return available() and all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def takes_bernoulli(p: Tensor) -> bool:
    """Whether :func:`bernoulli_bf16` runs compiled on ``p``: numba present, bf16 on the CPU."""
    return available() and p.dtype == torch.bfloat16 and p.device.type == "cpu"


def bernoulli_bf16(p: Tensor, key: int) -> Tensor:
    """:math:`s_i = [u_i < p_i]` for bf16 ``p`` (see :func:`takes_bernoulli`), the uniforms
    of counter stream ``key``: :func:`neuralsmith.rbm.draws.reference_bernoulli`, bit for bit.

    ``key`` is an int64 (a 64-bit pattern as :func:`neuralsmith.rbm.draws.signed` holds it).
    """
    jit = _compiled()
    _threads(jit.numba)
    p = p.contiguous()
    out = torch.empty_like(p)
    jit.bernoulli(_flat_bits(p), _flat_bits(out), key)
    return out


def add_bf16(target: Tensor, x: Tensor, beta: float, alpha: float) -> Tensor:
    r""":math:`T \leftarrow \beta T + \alpha X` in place, fp32 ``target``, bf16 ``x``; returns ``target``.

    Example:
        >>> t = torch.ones(3)
        >>> add_bf16(t, torch.tensor([1.0, 2.0, 4.0], dtype=torch.bfloat16), 0.5, 2.0).tolist()
        [2.5, 4.5, 8.5]
    """
    if target.dtype != torch.float32 or x.dtype != torch.bfloat16 or not _runs(target, x) \
            or target.shape != x.shape:
        return target.mul_(beta).add_(x, alpha=alpha) if beta != 1.0 else target.add_(x, alpha=alpha)
    jit = _compiled()
    _threads(jit.numba)
    jit.add(target.numpy().reshape(-1), _flat_bits(x), beta, alpha)
    return target


def combine_bf16(target: Tensor, other: Tensor, x: Tensor, copy: Tensor, beta: float, alpha: float,
                 gamma: float) -> Tensor:
    r""":math:`T \leftarrow \beta T + \alpha X + \gamma O` in place (fp32 ``target`` and
    ``other``, bf16 ``x``) and ``copy`` (bf16) :math:`\leftarrow` the new T rounded, in one
    pass over the weight-sized tensors instead of four; returns ``target``. The heavy-ball
    update of a bf16 training step, which also refreshes the weights' bf16 copy. Without numba
    (or for views) torch does the same in four passes (the sums rounded at most once more).

    Example:
        >>> t, c = torch.ones(2), torch.empty(2, dtype=torch.bfloat16)
        >>> combine_bf16(t, torch.full((2,), 2.0), torch.ones(2, dtype=torch.bfloat16), c, 0.5, 1.0, 0.25).tolist()
        [2.0, 2.0]
        >>> c.tolist()
        [2.0, 2.0]
    """
    if not _runs(target, other, x, copy) or target.dtype != torch.float32 or other.dtype != torch.float32 \
            or x.dtype != torch.bfloat16 or copy.dtype != torch.bfloat16 \
            or not target.shape == other.shape == x.shape == copy.shape:
        new = target.mul(beta).add_(x, alpha=alpha).add_(other, alpha=gamma)
        target.copy_(new), copy.copy_(new)
        return target
    jit = _compiled()
    _threads(jit.numba)
    jit.combine(target.numpy().reshape(-1), other.numpy().reshape(-1), _flat_bits(x), _flat_bits(copy),
                beta, alpha, gamma)
    return target
