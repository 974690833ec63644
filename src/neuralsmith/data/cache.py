"""A cache of decoded or generated data sets, as ``.npy`` files (never pickle).

Each entry is a folder under ``$NEURALSMITH_CACHE/data/`` (default: the platform's user cache
folder, ``$XDG_CACHE_HOME/neuralsmith`` or ``~/.cache/neuralsmith`` on Linux) named by a hash of its key: a file fingerprint (path, size,
mtime) for data read from files, the generator, sizes, seed and version for generated data.
Files are written atomically and ``meta.json`` last, so a half-written entry is never read.
``meta.json`` records each array's shape, dtype and SHA-256 and the class count; an entry that
does not match (altered, truncated, labels out of range) is deleted and rebuilt from the source
with one warning. The cache is an optimisation: if it cannot be read or written the data is
simply rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from neuralsmith.data.arrays import ImageSet
from neuralsmith.data.npz import read_npy_header, read_npy_payload
from neuralsmith.data.sources import cache_home
from neuralsmith.limits import check_fits
from neuralsmith.runfolder import file_mode, write_json

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: meta.json records each array's shape, dtype and SHA-256
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

    An entry is used only if every array matches the shape, dtype and SHA-256 recorded when
    it was written, and the labels lie in the recorded class range; otherwise it is deleted,
    one warning says so, and the data is rebuilt. Nothing is stored when ``build`` fails.

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
    _remove(folder)  # a stale or damaged entry must not outlive a refused rebuild
    images = build()
    try:
        _write(folder, key, images)
    except OSError as exc:
        _remove(folder)
        log.warning("could not cache data in %s (%s); it will be rebuilt next time", folder, exc)
    return images


def _read(folder: Path, key: str) -> ImageSet | None:
    """The entry's data if it is complete and verified; None (with one warning) if damaged."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        arrays = {a: _verified(folder / f"{a}.npy", meta["arrays"][a]) for a in ARRAYS}
        _check_label_range(folder, arrays, int(meta["n_classes"]))
        return ImageSet(**arrays, n_classes=meta["n_classes"], name=meta["name"],
                        source=meta["source"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("cache entry %s is damaged (%s); rebuilding it from the source", folder, exc)
        return None


def _verified(path: Path, record: dict) -> np.ndarray:
    """Read one cached array after checking its header against the record, then its SHA-256.

    Raises:
        ValueError: naming the file, when the shape, dtype or checksum differ.
    """
    with open(path, "rb") as f:
        header = read_npy_header(f, path)
        if list(header.shape) != record["shape"] or header.dtype.str != record["dtype"]:
            raise ValueError(f"{path.name} is {header.dtype.str} {list(header.shape)}, recorded "
                             f"{record['dtype']} {record['shape']}")
        check_fits(header.nbytes, path, "the cached array")
        array = read_npy_payload(f, header, path)
    if _sha256(array) != record["sha256"]:
        raise ValueError(f"{path.name} does not match its recorded SHA-256")
    return array


def _check_label_range(folder: Path, arrays: dict[str, np.ndarray], n_classes: int) -> None:
    for name in ("y_train", "y_test"):
        y = arrays[name]
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name}.npy holds labels in [{y.min()}, {y.max()}], outside the "
                             f"recorded {n_classes} classes")


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _write(folder: Path, key: str, images: ImageSet) -> None:
    """Write every array, then ``meta.json`` with their shapes, dtypes and SHA-256 sums."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {}
    for name in ARRAYS:
        array = np.ascontiguousarray(getattr(images, name))
        _save_npy(folder / f"{name}.npy", array)
        records[name] = {"shape": list(array.shape), "dtype": array.dtype.str,
                         "sha256": _sha256(array)}
    write_json(folder / "meta.json", {"key": key, "n_classes": images.n_classes,
                                      "name": images.name, "source": images.source,
                                      "arrays": records})


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write through a temporary file and a rename. No fsync: a cache entry lost in a crash is
    unreadable or missing, and then simply rebuilt."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
