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
