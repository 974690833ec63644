"""The loops of :mod:`neuralsmith.kernels`, compiled by numba (imported only where numba is).

Each works on flat numpy views of torch tensors' storage; bf16 values travel as their int16
bit patterns, widened to float32 by a shift (bf16 is the top half of a float32). Compiled on
first call and cached beside this file.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

from neuralsmith.kernels import BF16_ONE, GAMMA, MIX1, MIX2, UNIFORM_BITS

_GAMMA, _MIX1, _MIX2 = np.uint64(GAMMA), np.uint64(MIX1), np.uint64(MIX2)
_SCALE, _ONE, _SIXTEEN = np.float32(2.0 ** -UNIFORM_BITS), np.int16(BF16_ONE), np.uint32(16)
_DROP = np.uint64(64 - UNIFORM_BITS)


@intrinsic
def _f32(typingctx, bits):
    """The float32 whose bit pattern is the uint32 ``bits``."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return numba.types.float32(numba.types.uint32), codegen


@intrinsic
def _u32(typingctx, x):
    """The uint32 bit pattern of the float32 ``x``."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return numba.types.uint32(numba.types.float32), codegen


@numba.njit(inline="always")
def _narrow(x):
    """The bf16 bit pattern (int16) nearest the finite float32 ``x``, ties to even (as torch rounds)."""
    u = _u32(x)
    u = u + np.uint32(0x7FFF) + ((u >> _SIXTEEN) & np.uint32(1))
    return np.int16(np.uint16(u >> _SIXTEEN))


@numba.njit(inline="always")
def _widen(bits):
    """A bf16 bit pattern (int16) as the float32 it stands for."""
    return _f32(np.uint32(np.uint16(bits)) << _SIXTEEN)


@numba.njit(parallel=True, boundscheck=False, cache=True)
def bernoulli(p_bits, out_bits, key):
    """out[i] = [u_i < p_i] in bf16 bits, u_i the top 24 bits of SplitMix64 at position i + 1."""
    for i in numba.prange(p_bits.size):
        z = np.uint64(key) + np.uint64(i + 1) * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        u = np.float32(np.int32(z >> _DROP)) * _SCALE
        out_bits[i] = _ONE * np.int16(u < _widen(p_bits[i]))


@numba.njit(parallel=True, boundscheck=False, cache=True)
def add(target, x_bits, beta, alpha):
    """target = beta * target + alpha * x, target float32, x bf16 bits."""
    b, a = np.float32(beta), np.float32(alpha)
    for i in numba.prange(target.size):
        target[i] = b * target[i] + a * _widen(x_bits[i])


@numba.njit(parallel=True, boundscheck=False, cache=True)
def combine(target, other, x_bits, copy_bits, beta, alpha, gamma):
    """target = beta * target + alpha * x + gamma * other (float32; x bf16 bits), and
    copy = target rounded to bf16 bits, in one pass."""
    b, a, g = np.float32(beta), np.float32(alpha), np.float32(gamma)
    for i in numba.prange(target.size):
        v = b * target[i] + a * _widen(x_bits[i]) + g * other[i]
        target[i] = v
        copy_bits[i] = _narrow(v)
