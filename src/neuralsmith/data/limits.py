"""Bounded reading for the data readers; the limit itself lives in :mod:`neuralsmith.limits`.

A reader parses a file's headers first, computes the bytes its decoded arrays would need, and
refuses the file with :func:`neuralsmith.limits.check_fits` before reading a byte of payload;
then it reads into one buffer of the declared size (:func:`filled`), never beyond it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from neuralsmith.limits import ENV, size_text

CHUNK = 1 << 20
DEFLATE_MAX_RATIO = 1032  # deflate never expands more than ~1032:1 (RFC 1951 block limits)


def filled(nbytes: int, readinto: Callable[[memoryview], int], where: object) -> np.ndarray:
    """A new uint8 array of at most ``nbytes``, filled chunk by chunk by ``readinto``.

    Stops at ``nbytes`` or when ``readinto`` returns 0, so the caller compares the length
    with what it expected; nothing beyond ``nbytes`` is ever read.

    Raises:
        ValueError: naming ``where`` if the buffer cannot be allocated.
    """
    try:
        buf = np.empty(nbytes, np.uint8)
    except MemoryError:
        raise ValueError(f"{where}: could not allocate {size_text(nbytes)}; free memory, or "
                         f"lower {ENV} so such files are refused up front") from None
    view, pos = memoryview(buf), 0
    while pos < nbytes:
        got = readinto(view[pos:pos + min(CHUNK, nbytes - pos)])
        if not got:
            break
        pos += got
    return buf[:pos]


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order, swapped in place (no copy).

    Example:
        >>> native(np.frombuffer(bytearray(b"\\x00\\x01"), ">u2")).tolist()
        [1]
    """
    if array.dtype.isnative or array.dtype.itemsize == 1:
        return array
    array.byteswap(inplace=True)
    return array.view(array.dtype.newbyteorder("="))
