r"""Arithmetic precision of the big products: ``fp32``, or ``bf16`` with fp32 accumulation.

With ``precision="bf16"`` the matrix products of training (the Gibbs conditionals of an RBM,
the weight statistics, an autoencoder's or an MLP's layers) read bfloat16 operands: 8 bits of
significand and the exponent range of float32. The CPU (oneDNN with ``avx512_bf16`` / AMX) and
CUDA GEMM kernels multiply them and *accumulate in fp32*, rounding each result once. The state
that sums many small steps stays fp32: the weights, biases, momentum and running statistics,
so an update of relative size :math:`2^{-9}` is never lost. What bf16 may hold:

* the states of binary units (0 and 1 are exact) and data in [0, 1] (rounded to 8 bits),
* the probabilities a unit is sampled from (a relative error below :math:`2^{-9}`; the uniform
  it is compared to has 24 bits, so the draw is not biased further: RBM training in bf16 draws
  from the counter-based streams of :mod:`neuralsmith.rbm.draws`),
* a copy of the weights, refreshed from the fp32 master once per update (:class:`Shadow`).

Where the hardware has no fast bf16 path (a CPU without ``avx512_bf16`` or ``amx_bf16``, a GPU
where :func:`torch.cuda.is_bf16_supported` is False), bf16 would only be slower: training says
so once (a warning) and runs fp32 (:func:`compute_dtype`).

References:
    Kalamkar et al. (2019), *A study of BFLOAT16 for deep learning training*, arXiv:1905.12322.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import ContextManager

import torch
from torch import Tensor

from neuralsmith import kernels

PRECISIONS = ("fp32", "bf16")
CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of a native bf16 dot product
_warned: set[str] = set()  # devices whose fallback has been reported


def check_precision(value: object) -> str:
    """``value`` if it names a precision; a ValueError naming the choices otherwise.

    Example:
        >>> check_precision("bf16")
        'bf16'
    """
    if value not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (bf16: faster "
                         f"products on CPUs with avx512_bf16/AMX and recent GPUs); got {value!r}")
    return str(value)


@functools.lru_cache(maxsize=None)
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_fast_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (faster than fp32).

    CPU: the ``avx512_bf16`` or ``amx_bf16`` flag (Linux ``/proc/cpuinfo``); CUDA:
    :func:`torch.cuda.is_bf16_supported` (Ampere and later); anything else: False.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(_cpu_flags() & set(CPU_FLAGS))
    return False


def compute_dtype(precision: str, device: torch.device | str = "cpu",
                  master: torch.dtype = torch.float32) -> torch.dtype:
    """The dtype the products run in: bfloat16 for ``bf16`` where it is fast, else ``master``.

    ``master`` is the parameters' own dtype (float32, or float64 in exact tests). A ``bf16``
    request on hardware without a fast path warns once per device type and falls back to
    ``master`` (bf16 emulated in software is slower than fp32).

    Raises:
        ValueError: for an unknown ``precision``.

    Example:
        >>> compute_dtype("fp32", "cpu", torch.float64)
        torch.float64
    """
    if check_precision(precision) == "fp32":
        return master
    device = torch.device(device)
    if has_fast_bf16(device):
        return torch.bfloat16
    if device.type not in _warned:
        _warned.add(device.type)
        message = (f"precision='bf16' asked for, but this {device.type} has no fast bf16 path "
                   f"(CPU flags {' / '.join(CPU_FLAGS)}, or a GPU with bf16); running fp32")
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return master


def autocast(precision: str, device: torch.device | str = "cpu") -> ContextManager:
    """``torch.autocast`` to bfloat16 for ``bf16`` where it is fast; a no-op otherwise.

    Inside it, linear layers and matrix products run in bf16 (fp32 accumulation) while
    losses, softmax and the optimizer's state stay fp32 (mixed precision; Micikevicius et al.,
    2018, with bf16 needing no loss scaling). The context may span a whole epoch of updates:
    its weight-cast cache is off, so every product casts the current fp32 weights.

    Example:
        >>> with autocast("fp32"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    device = torch.device(device)
    if compute_dtype(precision, device) != torch.bfloat16:
        return contextlib.nullcontext()
    # no cast cache: a context held over many optimizer steps would reuse stale bf16 weights
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)


class Shadow:
    """Low-precision copies of fp32 parameters, refreshed once per update.

    With ``dtype`` equal to the parameters' own, :meth:`get` returns the parameters
    themselves (no copy, bit-identical arithmetic).

    Example:
        >>> w = torch.ones(2, 2)
        >>> s = Shadow(torch.bfloat16)
        >>> s.get("w", w).dtype, s.get("w", w) is s.get("w", w)
        (torch.bfloat16, True)
    """

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.copies: dict[str, Tensor] = {}
        self.fresh: set[str] = set()

    def get(self, name: str, master: Tensor) -> Tensor:
        """The copy of ``master`` under ``name``, refreshed if :meth:`expire` came since."""
        if master.dtype == self.dtype:
            return master
        if name not in self.fresh:
            self.buffer(name, master).copy_(master.detach())
            self.fresh.add(name)
        return self.copies[name]

    def buffer(self, name: str, master: Tensor) -> Tensor:
        """The storage of ``name``'s copy (allocated to ``master``'s shape), for an update that
        writes the new copy itself; it then names it in :meth:`expire`'s ``written``."""
        buf = self.copies.get(name)
        if buf is None or buf.shape != master.shape:
            buf = self.copies[name] = torch.empty_like(master, dtype=self.dtype)
        return buf

    def expire(self, written: tuple[str, ...] = ()) -> None:
        """The masters changed (an update): the next :meth:`get` of each copy refreshes it, but
        for those in ``written``, whose new copies the update wrote into their :meth:`buffer`."""
        self.fresh = set(written)


def column_sum(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x.sum(0)`` in ``dtype`` (the master's), accumulated and returned without rounding to bf16."""
    return x.sum(0) if x.dtype == dtype else x.sum(0, dtype=dtype)


def add_product(target: Tensor, a: Tensor, b: Tensor, beta: float, alpha: float) -> Tensor:
    r""":math:`\beta\,\text{target} + \alpha\, a b` in place, ``target`` of any float dtype.

    One ``addmm_`` when the dtypes agree; else the product runs in ``a``'s dtype (fp32
    accumulation, one rounding) and is added to the fp32 target in one fused pass
    (:func:`neuralsmith.kernels.add_bf16`). ``beta = 0`` ignores the target's old values.
    """
    if a.dtype == target.dtype:
        return target.addmm_(a, b, beta=beta, alpha=alpha)
    product = torch.mm(a, b)
    if beta == 0.0:
        return target.copy_(product).mul_(alpha)
    return kernels.add_bf16(target, product, beta, alpha)
