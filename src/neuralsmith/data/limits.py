"""The memory limit every reader checks a file's declared sizes against, and bounded reading.

A reader parses a file's headers first, computes the bytes its decoded arrays would need, and
refuses the file with a ValueError when that exceeds the limit, before reading a byte of
payload. The limit is, in order: the ``max_bytes=`` keyword, ``$NEURALSMITH_MAX_BYTES``
(bytes, or with a K/M/G/T suffix: ``8G``), else the memory available now (the smallest of
``MemAvailable`` in /proc/meminfo, the cgroup's room, and the address-space rlimit's room).

Example:
    >>> memory_limit(1000)
    (1000, 'max_bytes=1000')
    >>> parse_bytes("2G", "NEURALSMITH_MAX_BYTES")
    2147483648
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np

ENV = "NEURALSMITH_MAX_BYTES"
CHUNK = 1 << 20
DEFLATE_MAX_RATIO = 1032  # deflate never expands more than ~1032:1 (RFC 1951 block limits)
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
FIX = f"if the file is genuine, raise the limit with {ENV}=BYTES (e.g. 64G) or max_bytes="


def parse_bytes(text: str, where: str) -> int:
    """A positive byte count from ``"123"``, ``"8G"``, ``"512MiB"`` (powers of 1024).

    Raises:
        ValueError: naming ``where``, for anything else.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match is None or int(match[1]) <= 0:
        raise ValueError(f"{where}={text!r}: expected a positive number of bytes, e.g. "
                         f"8000000000 or 8G")
    return int(match[1]) * UNITS[match[2]]


def memory_limit(max_bytes: Optional[int] = None) -> tuple[int, str]:
    """The byte limit for decoded arrays and where it comes from (for messages).

    Raises:
        ValueError: for a ``max_bytes`` or ``$NEURALSMITH_MAX_BYTES`` that is not a positive size.
    """
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive number of bytes; got {max_bytes!r}")
        return max_bytes, f"max_bytes={max_bytes}"
    if os.environ.get(ENV):
        return parse_bytes(os.environ[ENV], ENV), f"{ENV}={os.environ[ENV]}"
    return available_memory(), "the available memory"


def available_memory() -> int:
    """Bytes that can be allocated now: the smallest of the known bounds (no bound: maxsize)."""
    bounds = [b for b in (_mem_available(), _cgroup_room(), _address_space_room()) if b]
    return min(bounds) if bounds else sys.maxsize


def _mem_available() -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> Optional[int]:
    """cgroup v2 ``memory.max - memory.current`` of this process's cgroup, if limited."""
    try:
        root = Path("/sys/fs/cgroup")
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((root / "memory.current").read_text()), 1)
    except (OSError, ValueError):
        return None


def _address_space_room() -> Optional[int]:
    """``RLIMIT_AS`` (``ulimit -v``) minus the address space in use, if limited."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY:
            return None
        status = Path("/proc/self/status").read_text()
        used = int(re.search(r"VmSize:\s*(\d+)", status)[1]) * 1024
        return max(soft - used, 1)
    except (ImportError, OSError, ValueError, TypeError):
        return None


def size_text(nbytes: int) -> str:
    """``nbytes`` for people: ``'2.1 GB'`` (powers of 1000).

    Example:
        >>> size_text(2**31), size_text(512)
        ('2.1 GB', '512 bytes')
    """
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def check_fits(nbytes: int, where: object, what: str, max_bytes: Optional[int] = None) -> None:
    """Refuse to decode ``nbytes`` when they exceed the limit (see :func:`memory_limit`).

    Raises:
        ValueError: naming ``where``, the bytes needed, the limit and how to raise it.
    """
    limit, origin = memory_limit(max_bytes)
    if nbytes > limit:
        raise ValueError(f"{where}: {what} would need {size_text(nbytes)}, more than "
                         f"{origin} ({size_text(limit)}); the header is corrupt or the data too "
                         f"large for this machine; {FIX}")


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
