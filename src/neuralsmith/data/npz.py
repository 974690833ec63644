"""Data sets stored as one ``.npz`` with ``x_train, y_train, x_test, y_test``.

Images are uint8 (0-255), bool, or floats in [0, 1], flat (n, features) or (n, rows, cols);
labels are integers. Each member's npy header is read with numpy's format functions and
checked (plain numeric dtype, shape, size against the member and the memory limit) before its
data is read; object arrays are refused, so a user's file is never unpickled.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from neuralsmith.data.arrays import ImageSet, as_images, check_labels, check_pixel_dtype, check_pixels
from neuralsmith.data.limits import DEFLATE_MAX_RATIO, filled, native
from neuralsmith.limits import check_fits

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
SAVE_HINT = "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
# what a broken zip member or npy stream raises while being read
READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
               RuntimeError)


@dataclass(frozen=True)
class NpyHeader:
    """What an npy stream declares: shape, memory order, dtype, and where the data starts."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def read_npy_header(f: BinaryIO, where: object) -> NpyHeader:
    """Parse an npy header with numpy's format functions, reading nothing past it.

    Only plain numeric arrays are accepted (bool, integers, floats): never objects (pickle),
    records or strings.

    Raises:
        ValueError: naming ``where``, for a stream that is not npy 1.0/2.0 or a dtype not plain.
    """
    try:
        version = npy_format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version[0]}.{version[1]} is not supported")
        read = npy_format.read_array_header_1_0 if version == (1, 0) else \
            npy_format.read_array_header_2_0
        shape, fortran_order, dtype = read(f)
        offset = f.tell()
    except (ValueError, SyntaxError, TypeError, *READ_ERRORS) as exc:
        raise ValueError(f"{where}: not an npy array ({exc}); {SAVE_HINT}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise ValueError(f"{where}: holds dtype {dtype}, not plain numbers (objects would need "
                         f"pickle, which is never used); store bool, integer or float arrays")
    if any(d < 0 for d in shape):
        raise ValueError(f"{where}: negative size in shape {shape}; {SAVE_HINT}")
    return NpyHeader(tuple(shape), bool(fortran_order), dtype, offset)


def read_npy_payload(f: BinaryIO, header: NpyHeader, where: object) -> np.ndarray:
    """The array a checked header declares, read from ``f`` (positioned after the header).

    Reads at most ``header.nbytes`` (+1 to detect trailing data) into one new buffer.

    Raises:
        ValueError: naming ``where``, for truncated, trailing or corrupt data.
    """
    try:
        buf = filled(header.nbytes, f.readinto, where)
        trailing = len(buf) == header.nbytes and f.read(1)
    except READ_ERRORS as exc:
        raise ValueError(f"{where}: corrupt data ({exc}); {SAVE_HINT}") from None
    if len(buf) < header.nbytes or trailing:
        what = "truncated" if len(buf) < header.nbytes else "longer than its header declares"
        raise ValueError(f"{where}: {what}: header declares {header.shape} {header.dtype} "
                         f"({header.nbytes} bytes); {SAVE_HINT}")
    array = buf.view(header.dtype)
    if header.fortran_order:
        return native(array.reshape(header.shape[::-1]).transpose())
    return native(array.reshape(header.shape))


def read_npz(path: str | os.PathLike, *, name: str | None = None,
             max_bytes: int | None = None) -> ImageSet:
    """Load an ``.npz`` data set, pixels and labels exactly as stored.

    Args:
        path: the file, holding arrays x_train, y_train, x_test, y_test.
        name: the data set's name (default: the file name without ``.npz``).
        max_bytes: refuse data needing more (default: ``$NEURALSMITH_MAX_BYTES``, else the
            available memory).

    Returns:
        An :class:`ImageSet`; flat images get a square shape when the feature count is square.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file and member, for a file that is not a zip of npy arrays,
            a missing key, a member that is not npy, holds objects (pickle), a wrong dtype or
            shape, is truncated, declares more than the memory limit; NaN or out-of-range
            pixels, counts that disagree, or bad labels.

    Example:
        >>> import tempfile, numpy as np
        >>> p = tempfile.mkdtemp() + "/toy.npz"
        >>> x = np.zeros((4, 16), np.uint8); y = np.array([0, 1, 2, 1])
        >>> np.savez(p, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
        >>> s = read_npz(p); (s.image_shape, s.n_classes, s.name)
        ((4, 4), 3, 'toy')
    """
    path = Path(path)
    arrays = _members(path, max_bytes)
    where = {key: f"{path} [{key}]" for key in NPZ_KEYS}
    x = {k: as_images(check_pixels(arrays[k], where[k]), where[k]) for k in ("x_train", "x_test")}
    for split in ("train", "test"):
        n_x, n_y = len(x[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_x != n_y:
            raise ValueError(f"{path}: {n_y} labels in y_{split} for {n_x} images in x_{split}; "
                             f"the counts must agree")
    if x["x_train"].shape[1:] != x["x_test"].shape[1:]:
        raise ValueError(f"{path}: x_test images are {x['x_test'].shape[1:]} but x_train images "
                         f"are {x['x_train'].shape[1:]}")
    labels = {k: arrays[k] for k in ("y_train", "y_test")}
    n_classes = check_labels(labels, where, None)
    return ImageSet(x["x_train"], labels["y_train"].astype(np.int64), x["x_test"],
                    labels["y_test"].astype(np.int64), n_classes=n_classes,
                    name=name or path.name.removesuffix(".npz"), source=str(path))


def _members(path: Path, max_bytes: int | None) -> dict[str, np.ndarray]:
    """The four arrays of the file: every npy header is checked, then the sizes against the
    memory limit, before any member's data is read. Never unpickles."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .npz file")
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise ValueError(f"{path}: holds one array, not named arrays; {SAVE_HINT}")
    try:
        archive = zipfile.ZipFile(path)
    except READ_ERRORS as exc:
        raise ValueError(f"{path}: not an .npz numpy can read without pickle ({exc}); "
                         f"{SAVE_HINT}") from None
    with archive:
        infos = _member_infos(path, archive)
        headers = {k: _member_header(archive, infos[k], f"{path} [{k}]") for k in NPZ_KEYS}
        n_labels = headers["y_train"].shape[:1] + headers["y_test"].shape[:1]
        check_fits(sum(h.nbytes for h in headers.values()) + 8 * sum(n_labels), path,
                   "the four arrays", max_bytes)
        return {k: _member_array(archive, infos[k], headers[k], f"{path} [{k}]")
                for k in NPZ_KEYS}


def _member_infos(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    names = {info.filename: info for info in archive.infolist()}
    missing = [k for k in NPZ_KEYS if f"{k}.npy" not in names]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}; a data set .npz holds "
                         f"{', '.join(NPZ_KEYS)}; {SAVE_HINT}")
    return {k: names[f"{k}.npy"] for k in NPZ_KEYS}


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> NpyHeader:
    """Read and check one member's npy header against the zip entry and the key's role."""
    if info.compress_type == zipfile.ZIP_DEFLATED and \
            info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise ValueError(f"{where}: declares {info.file_size} bytes, more than "
                         f"{info.compress_size} compressed bytes can hold; the file is corrupt")
    try:
        with archive.open(info) as f:
            header = read_npy_header(f, where)
    except READ_ERRORS as exc:
        raise ValueError(f"{where}: unreadable member ({exc}); {SAVE_HINT}") from None
    if header.offset + header.nbytes != info.file_size:
        raise ValueError(f"{where}: header declares {header.shape} {header.dtype} "
                         f"({header.nbytes} bytes) but the member holds "
                         f"{info.file_size - header.offset}; the file is truncated or corrupt")
    _check_role(where, header)
    return header


def _check_role(where: str, header: NpyHeader) -> None:
    """Images are (n, features) or (n, rows, cols) pixels; labels are 1-D integers."""
    key = where.rsplit("[", 1)[-1].rstrip("]")
    if key.startswith("x_"):
        check_pixel_dtype(header.dtype, where)
        if len(header.shape) not in (2, 3):
            raise ValueError(f"{where}: images must be (n, features) or (n, rows, cols); "
                             f"got {header.shape}")
    elif len(header.shape) != 1 or header.dtype.kind not in "iu":
        raise ValueError(f"{where}: {key} must be 1-D integer labels; got {header.dtype} "
                         f"{header.shape}")


def _member_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: NpyHeader,
                  where: str) -> np.ndarray:
    try:
        with archive.open(info) as f:
            f.read(header.offset)
            return read_npy_payload(f, header, where)
    except READ_ERRORS as exc:
        raise ValueError(f"{where}: unreadable member ({exc}); {SAVE_HINT}") from None
