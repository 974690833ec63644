"""IDX files, the format of MNIST, Fashion-MNIST and KMNIST: read, write, and load a folder.

An IDX file is a magic number ``0x00 0x00 TYPE NDIM``, then NDIM big-endian uint32 sizes, then
the values in C order, big-endian (LeCun et al., 1998, http://yann.lecun.com/exdb/mnist/).
Files may be gzip-compressed (detected from the content, not the name).

Every declared size is checked against what the file can hold *before* anything is allocated,
so a corrupt or hostile header raises ValueError instead of exhausting memory.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from neuralsmith.data.arrays import ImageSet, check_labels
from neuralsmith.data.limits import DEFLATE_MAX_RATIO, filled, native
from neuralsmith.limits import check_fits
from neuralsmith.runfolder import atomic_write_bytes

log = logging.getLogger(__name__)

DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_NDIM = 4
IDX_STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX file declares: its element type and shape, and where the values start."""

    path: Path
    dtype: np.dtype
    shape: tuple[int, ...]
    compressed: bool

    @property
    def offset(self) -> int:
        return 4 + 4 * len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class _Inflater:
    """Take exact byte counts out of a gzip file, never inflating more than asked for."""

    def __init__(self, path: Path, file: BinaryIO):
        self.path, self._file, self._z, self._pending = path, file, zlib.decompressobj(wbits=31), b""

    def take(self, n: int) -> bytes:
        parts, got = [], 0
        try:
            while got < n and not self._z.eof:
                if not self._pending:
                    self._pending = self._file.read(1 << 16)
                    if not self._pending:  # the file ends before the stream does
                        break
                part = self._z.decompress(self._pending, n - got)
                self._pending = self._z.unconsumed_tail
                parts.append(part)
                got += len(part)
        except zlib.error as exc:
            raise ValueError(f"{self.path}: corrupt gzip data ({exc}); "
                             f"re-download the file") from None
        return b"".join(parts)

    def readinto(self, view: memoryview) -> int:
        data = self.take(len(view))
        view[:len(data)] = data
        return len(data)

    def finish(self) -> None:
        """Check that the stream ends here, with a valid trailer and nothing after it."""
        if self.take(1):
            raise ValueError(f"{self.path}: holds more data than its IDX header declares")
        if not self._z.eof:
            raise ValueError(f"{self.path}: gzip stream is truncated; re-download the file")
        if self._z.unused_data or self._file.read(1):
            raise ValueError(f"{self.path}: trailing bytes after the gzip stream")


def _parse_header(path: Path, take) -> tuple[np.dtype, tuple[int, ...]]:
    """Parse the magic number and sizes; ``take(n)`` returns the next n bytes."""
    magic = take(4)
    if len(magic) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(magic)} bytes, no complete header)")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in DTYPES or not 1 <= magic[3] <= MAX_NDIM:
        raise ValueError(f"{path}: not an IDX file (magic number {magic.hex()}; expected "
                         f"0000TTNN with type TT in 08,09,0b,0c,0d,0e and 1 <= NN <= {MAX_NDIM})")
    sizes = take(4 * magic[3])
    if len(sizes) < 4 * magic[3]:
        raise ValueError(f"{path}: truncated IDX header (needs {4 * magic[3]} bytes of sizes)")
    return DTYPES[magic[2]], tuple(int(d) for d in np.frombuffer(sizes, ">u4"))


def read_idx_header(path: str | os.PathLike) -> IdxHeader:
    """Read and check an IDX file's header, reading (or inflating) only the header's bytes.

    The declared size is checked against the file: a raw file must hold exactly the declared
    bytes; a gzip file must be able to hold them (deflate expands at most ~1032:1) and its
    trailer's size field (ISIZE, the size modulo 2^32) must agree.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, for a bad magic number, a truncated header, or a size
            the file cannot hold.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such IDX file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        take = _Inflater(path, f).take if compressed else f.read
        header = IdxHeader(path, *_parse_header(path, take), compressed)
        _check_size(header, f, size)
    return header


def _check_size(header: IdxHeader, f: BinaryIO, size: int) -> None:
    path, declared, total = header.path, header.nbytes, header.offset + header.nbytes
    if not header.compressed:
        if size - header.offset != declared:
            what = "truncated" if size - header.offset < declared else "has trailing bytes"
            raise ValueError(f"{path}: {what}: header declares {header.shape} ({declared} bytes "
                             f"of data), file holds {size - header.offset}; re-download the file")
        return
    if total > DEFLATE_MAX_RATIO * size:
        raise ValueError(f"{path}: header declares {header.shape} ({declared} bytes), more than "
                         f"{size} bytes of gzip can hold; the file is corrupt or truncated")
    f.seek(max(size - 4, 0))
    isize = int.from_bytes(f.read(4), "little")
    if isize != total % 2**32:
        raise ValueError(f"{path}: header declares {header.shape} ({total} bytes with the header) "
                         f"but the gzip trailer records {isize} (mod 2^32); the file is corrupt "
                         f"or truncated; re-download it")


def read_idx(path: str | os.PathLike, *, max_bytes: int | None = None) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a native-endian numpy array.

    The header is checked first (see :func:`read_idx_header`) and the declared bytes against
    the memory limit (see :mod:`.limits`); gzip data is inflated in chunks, stopping at the
    declared size.

    Args:
        path: the file.
        max_bytes: refuse arrays larger than this (default: ``$NEURALSMITH_MAX_BYTES``, else
            the available memory).

    Returns:
        The array with the shape the header declares.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a wrong magic number, a truncated file, a size the file cannot hold
            or beyond the limit, trailing data or corrupt gzip data; the message names the file.

    Example:
        >>> import tempfile, numpy as np
        >>> p = write_idx(tempfile.mkdtemp() + "/x-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
        >>> read_idx(p).tolist()
        [0, 1, 2, 3, 4]
    """
    header = read_idx_header(path)
    check_fits(header.nbytes, header.path, f"the array {header.shape}", max_bytes)
    return read_payload(header)


def read_payload(header: IdxHeader) -> np.ndarray:
    """The values of a file whose header was read by :func:`read_idx_header`.

    Raises:
        ValueError: naming the file, if it changed or its gzip data is corrupt or truncated.
    """
    path, expected = header.path, header.nbytes
    with open(path, "rb") as f:
        stream = _Inflater(path, f) if header.compressed else f
        skipped = stream.take(header.offset) if header.compressed else f.read(header.offset)
        if len(skipped) != header.offset:
            raise ValueError(f"{path}: changed while being read; read it again")
        buf = filled(expected, stream.readinto, path)
        if len(buf) < expected:
            raise ValueError(f"{path}: truncated: header declares {header.shape} ({expected} "
                             f"bytes of data), the file holds {len(buf)}; re-download the file")
        if header.compressed:
            stream.finish()
        elif f.read(1):
            raise ValueError(f"{path}: has trailing bytes after the declared data")
    return native(buf.view(header.dtype).reshape(header.shape))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz`` (atomic).

    Raises:
        ValueError: for a dtype or number of dimensions IDX cannot hold.
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= MAX_NDIM:
        raise ValueError(f"IDX holds uint8, int8, int16, int32, float32, float64 arrays of 1 to "
                         f"{MAX_NDIM} dimensions; got {array.dtype} with {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(DTYPES[code]).tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    return atomic_write_bytes(path, payload)


def idx_files(folder: str | os.PathLike) -> dict[str, Path]:
    """The four IDX files of ``folder`` (each name optionally ending in ``.gz``).

    Raises:
        FileNotFoundError: if the folder does not exist or lacks one of the files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    found, missing = {}, []
    for key, stem in IDX_STEMS.items():
        hits = [folder / n for n in (stem + ".gz", stem) if (folder / n).is_file()]
        if hits:
            found[key] = hits[0]
        else:
            missing.append(stem)
    if missing:
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)} (each may end in .gz); "
                                f"an IDX folder holds the four MNIST-format files")
    return found


def read_idx_folder(folder: str | os.PathLike, *, name: str | None = None,
                    n_classes: int | None = None, max_bytes: int | None = None) -> ImageSet:
    """Load a folder of the four MNIST-format IDX files, pixels and labels exactly as stored.

    All four headers are read and checked (types, shapes, image and label counts, and the
    bytes the arrays need against the memory limit) before any payload is read.

    Args:
        folder: holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally ``.gz``.
        name: the data set's name (default: the folder's name).
        n_classes: the number of classes, if known; labels must lie below it. Default:
            one more than the largest label.
        max_bytes: refuse data needing more (default: ``$NEURALSMITH_MAX_BYTES``, else the
            available memory).

    Returns:
        An :class:`ImageSet` with uint8 images (n, rows, cols) and int64 labels.

    Raises:
        FileNotFoundError: for a missing folder or file.
        ValueError: for a bad file, image and label counts that disagree, images that are not
            (n, rows, cols) uint8, train and test image sizes that differ, labels out of range,
            or data beyond the memory limit.
    """
    headers = {key: read_idx_header(path) for key, path in idx_files(folder).items()}
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        _check_pair(headers[x], headers[y])
    train, test = headers["x_train"], headers["x_test"]
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(f"{test.path}: images are {test.shape[1:]} but {train.path} holds "
                         f"{train.shape[1:]}; train and test images must have one size")
    n_labels = headers["y_train"].shape[0] + headers["y_test"].shape[0]
    need = sum(h.nbytes for h in headers.values()) + 8 * n_labels  # + the int64 labels
    check_fits(need, folder, "the four IDX files", max_bytes)
    arrays = {key: read_payload(header) for key, header in headers.items()}
    labels = {k: arrays.pop(k).astype(np.int64) for k in ("y_train", "y_test")}
    n_classes = check_labels(labels, {k: headers[k].path for k in labels}, n_classes)
    folder = Path(folder)
    return ImageSet(arrays["x_train"], labels["y_train"], arrays["x_test"], labels["y_test"],
                    n_classes=n_classes, name=name or folder.resolve().name, source=str(folder))


def _check_pair(x: IdxHeader, y: IdxHeader) -> None:
    if len(x.shape) != 3 or x.dtype != np.uint8:
        raise ValueError(f"{x.path}: expected uint8 images (n, rows, cols); "
                         f"got {x.dtype} {x.shape}")
    if len(y.shape) != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{y.path}: expected integer labels (n,); got {y.dtype} {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{y.path}: {y.shape[0]} labels for {x.shape[0]} images in "
                         f"{x.path.name}; the counts must agree (re-download or rebuild the files)")
