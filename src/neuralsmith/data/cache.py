"""A cache of decoded or generated data sets, as ``.npy`` files (never pickle).

Each entry is a folder under ``$NEURALSMITH_CACHE/data/`` (default: the platform's user cache
folder, ``$XDG_CACHE_HOME/neuralsmith`` or ``~/.cache/neuralsmith`` on Linux) named by a hash of its key: a file fingerprint (path, size,
mtime) for data read from files, the generator, sizes, seed and version for generated data.
Files are written atomically and ``meta.json`` last, so a half-written entry is never read.
The cache is an optimisation: if it cannot be read or written the data is simply rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from neuralsmith.data.arrays import ImageSet
from neuralsmith.data.sources import cache_home
from neuralsmith.runfolder import file_mode, write_json

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def cache_root() -> Path:
    """``$NEURALSMITH_CACHE``, else the platform's user cache folder (see :func:`.sources.cache_home`)."""
    return cache_home()


def fingerprint(paths: Iterable[str | os.PathLike]) -> str:
    """A string that changes when any file changes: resolved path, size and mtime of each.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"; _ = p.write_bytes(b"1")
        >>> a = fingerprint([p]); _ = p.write_bytes(b"12"); a == fingerprint([p])
        False
    """
    lines = []
    for path in paths:
        st = Path(path).stat()
        lines.append(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}")
    return "\n".join(lines)


def cached(key: str, build: Callable[[], ImageSet]) -> ImageSet:
    """The cached :class:`ImageSet` for ``key``, or ``build()`` stored under it.

    Args:
        key: everything the data depends on (fingerprints, parameters, versions).
        build: makes the data on a miss.

    Returns:
        The data, equal array for array to what ``build()`` returns.
    """
    digest = hashlib.sha256(f"{CACHE_FORMAT}\n{key}".encode()).hexdigest()
    folder = cache_root() / "data" / digest[:32]
    hit = _read(folder, key)
    if hit is not None:
        log.debug("cache hit %s for %s", folder, key.splitlines()[0])
        return hit
    images = build()
    try:
        _write(folder, key, images)
    except OSError as exc:
        log.warning("could not cache data in %s (%s); it will be rebuilt next time", folder, exc)
    return images


def _read(folder: Path, key: str) -> ImageSet | None:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        arrays = {a: np.load(folder / f"{a}.npy", allow_pickle=False) for a in ARRAYS}
        return ImageSet(**arrays, n_classes=meta["n_classes"], name=meta["name"],
                        source=meta["source"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cache entry %s (%s)", folder, exc)
        return None


def _write(folder: Path, key: str, images: ImageSet) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        _save_npy(folder / f"{name}.npy", getattr(images, name))
    write_json(folder / "meta.json", {"key": key, "n_classes": images.n_classes,
                                      "name": images.name, "source": images.source})


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write through a temporary file and a rename. No fsync: a cache entry lost in a crash is
    unreadable or missing, and then simply rebuilt."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
