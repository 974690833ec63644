"""Resource limits: how many bytes a run may ask for, checked before any tensor is made.

The limit is ``$NEURALSMITH_MAX_BYTES`` when set (a whole number of bytes), else the memory
the operating system reports as available. A network's need is estimated from its layer
sizes (:func:`network_bytes`): every weight and bias held ``COPIES`` times (the values, their
gradients, the optimizer's momentum or a kept best state) plus one batch of activations per
layer, at ``ITEMSIZE`` bytes (float32) each. The estimate is a lower bound of what training
takes, so a refusal is never a false alarm; it stops sizes such as ``--hidden 2000000000``
in one line instead of an allocator's traceback.

Example:
    >>> network_bytes([64, 16, 10], batch_size=0)  # (64*16 + 16 + 16*10 + 10) * 3 copies * 4 bytes
    14520
    >>> check_bytes(10**30, "a network of 10^30 weights", limit=10**9)
    Traceback (most recent call last):
    ...
    ValueError: a network of 10^30 weights needs at least 1e+21 GB, more than the 1 GB allowed (the memory available, or $NEURALSMITH_MAX_BYTES); use smaller sizes
"""

from __future__ import annotations

import os
from typing import Sequence

ENV = "NEURALSMITH_MAX_BYTES"
ITEMSIZE = 4  # float32
COPIES = 3  # values, gradients, momentum / a kept best state
FALLBACK = 8 * 2**30  # when the available memory cannot be read


def available_memory() -> int:
    """The memory the operating system reports as available, in bytes (8 GiB if it cannot say)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return FALLBACK


def max_bytes(limit: int | None = None) -> int:
    """The byte limit: ``limit`` if given, else ``$NEURALSMITH_MAX_BYTES``, else the available memory.

    Raises:
        ValueError: a ``$NEURALSMITH_MAX_BYTES`` that is not a whole number of bytes >= 1.
    """
    if limit is not None:
        return int(limit)
    text = os.environ.get(ENV, "").strip()
    if not text:
        return available_memory()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${ENV} must be a whole number of bytes >= 1, as in {ENV}=8000000000; got {text!r}")
    return value


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.3g} GB"


def check_bytes(n_bytes: int, what: str, limit: int | None = None) -> None:
    """Refuse ``what`` if it needs more than :func:`max_bytes` (``limit`` if given).

    Raises:
        ValueError: naming ``what``, the bytes it needs and the limit.
    """
    allowed = max_bytes(limit)
    if n_bytes > allowed:
        raise ValueError(f"{what} needs at least {_gb(n_bytes)}, more than the {_gb(allowed)} allowed "
                         f"(the memory available, or ${ENV}); use smaller sizes")


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
