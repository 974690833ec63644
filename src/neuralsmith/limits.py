"""Resource limits: how many bytes a run or a file may ask for, checked before any allocation.

The limit is, in order: a ``max_bytes=`` / ``limit=`` argument, ``$NEURALSMITH_MAX_BYTES``
(bytes, or with a K/M/G/T suffix: ``8G``), else the memory available now (the smallest of
``MemAvailable`` in /proc/meminfo, the cgroup's room and the address-space rlimit's room).
Two kinds of request are checked against it:

* a file's decoded arrays (:func:`check_fits`, called by every reader in :mod:`neuralsmith.data`
  from the file's headers, before a byte of payload is read);
* a network's training (:func:`check_network`): every weight and bias held ``COPIES`` times
  (the values, their gradients, the optimizer's momentum or a kept best state) plus one batch
  of activations per layer, at ``ITEMSIZE`` bytes (float32) each. The estimate is a lower bound
  of what training takes, so a refusal is never a false alarm; it stops sizes such as
  ``--hidden 2000000000`` in one line instead of an allocator's traceback.

Example:
    >>> memory_limit(1000)
    (1000, 'max_bytes=1000')
    >>> parse_bytes("2G", "NEURALSMITH_MAX_BYTES")
    2147483648
    >>> network_bytes([64, 16, 10], batch_size=0)  # (64*16 + 16 + 16*10 + 10) * 3 copies * 4 bytes
    14520
    >>> check_bytes(10**30, "a network of 10^30 weights", limit=10**9)
    Traceback (most recent call last):
    ...
    ValueError: a network of 10^30 weights needs at least 1.0e+21 GB, more than max_bytes=1000000000 (1.0 GB); use smaller sizes, or raise the limit with NEURALSMITH_MAX_BYTES=BYTES (e.g. 64G)
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

ENV = "NEURALSMITH_MAX_BYTES"
ITEMSIZE = 4  # float32
COPIES = 3  # values, gradients, momentum / a kept best state
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


def max_bytes(limit: int | None = None) -> int:
    """The byte limit (see :func:`memory_limit`)."""
    return memory_limit(limit)[0]


def check_bytes(n_bytes: int, what: str, limit: int | None = None) -> None:
    """Refuse ``what`` if it needs more than the limit (``limit`` if given).

    Raises:
        ValueError: naming ``what``, the bytes it needs and the limit.
    """
    allowed, origin = memory_limit(limit)
    if n_bytes > allowed:
        raise ValueError(f"{what} needs at least {n_bytes / 1e9:.1e} GB, more than {origin} "
                         f"({size_text(allowed)}); use smaller sizes, or raise the limit with "
                         f"{ENV}=BYTES (e.g. 64G)")


def network_bytes(sizes: Sequence[int], batch_size: int = 256, copies: int = COPIES,
                  itemsize: int = ITEMSIZE) -> int:
    """Bytes a fully connected network of layer ``sizes`` needs to train (a lower bound).

    ``copies * sum(n_i * n_{i+1} + n_{i+1})`` parameters plus ``batch_size * sum(n_i)``
    activations, ``itemsize`` bytes each.
    """
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return itemsize * (copies * params + batch_size * sum(sizes))


def check_network(sizes: Sequence[int], what: str = "the network", batch_size: int = 256,
                  limit: int | None = None) -> None:
    """Refuse a network of layer ``sizes`` whose :func:`network_bytes` exceed the limit.

    Raises:
        ValueError: naming the sizes, the bytes needed and the limit.
    """
    sizes = [int(s) for s in sizes]
    check_bytes(network_bytes(sizes, batch_size), f"{what} ({'-'.join(map(str, sizes))})", limit)
