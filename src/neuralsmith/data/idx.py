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
from pathlib import Path

import numpy as np

from neuralsmith.data.arrays import ImageSet, check_labels
from neuralsmith.runfolder import atomic_write_bytes

log = logging.getLogger(__name__)

DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_NDIM = 4
DEFLATE_MAX_RATIO = 1032  # deflate never expands more than ~1032:1, so gzip output is bounded
IDX_STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


class _Inflater:
    """Take exact byte counts out of a gzip stream, never inflating more than asked for."""

    def __init__(self, path: Path, raw: bytes):
        self.path, self._z, self._pending = path, zlib.decompressobj(wbits=31), raw

    def take(self, n: int) -> bytes:
        parts, got = [], 0
        try:
            while got < n and not self._z.eof:
                part = self._z.decompress(self._pending, n - got)
                self._pending = self._z.unconsumed_tail
                if not part and not self._pending:  # input used up, nothing left to inflate
                    break
                parts.append(part)
                got += len(part)
        except zlib.error as exc:
            raise ValueError(f"{self.path}: corrupt gzip data ({exc}); "
                             f"re-download the file") from None
        return b"".join(parts)

    def finish(self) -> None:
        """Check that the stream ends here, with a valid trailer and nothing after it."""
        if self.take(1):
            raise ValueError(f"{self.path}: holds more data than its IDX header declares")
        if not self._z.eof:
            raise ValueError(f"{self.path}: gzip stream is truncated; re-download the file")
        if self._z.unused_data:
            raise ValueError(f"{self.path}: trailing bytes after the gzip stream")


def _header(path: Path, take) -> tuple[np.dtype, tuple[int, ...]]:
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


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a native-endian numpy array.

    Args:
        path: the file.

    Returns:
        The array with the shape the header declares.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a wrong magic number, a truncated file, a size the file cannot hold,
            trailing data or corrupt gzip data; the message names the file.

    Example:
        >>> import tempfile, numpy as np
        >>> p = write_idx(tempfile.mkdtemp() + "/x-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
        >>> read_idx(p).tolist()
        [0, 1, 2, 3, 4]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such IDX file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return _read_gzip(path, raw)
    return _read_raw(path, raw)


class _Bytes:
    """Take byte counts from the front of an in-memory file."""

    def __init__(self, raw: bytes):
        self.raw, self.pos = raw, 0

    def take(self, n: int) -> bytes:
        out = self.raw[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def _read_raw(path: Path, raw: bytes) -> np.ndarray:
    dtype, shape = _header(path, _Bytes(raw).take)
    offset = 4 + 4 * len(shape)
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - offset != expected:
        what = "truncated" if len(raw) - offset < expected else "has trailing bytes"
        raise ValueError(f"{path}: {what}: header declares {shape} ({expected} bytes of data), "
                         f"file holds {len(raw) - offset}")
    return _to_native(np.frombuffer(raw, dtype, offset=offset).reshape(shape))


def _read_gzip(path: Path, raw: bytes) -> np.ndarray:
    stream = _Inflater(path, raw)
    dtype, shape = _header(path, stream.take)
    expected = math.prod(shape) * dtype.itemsize
    if expected > DEFLATE_MAX_RATIO * len(raw):
        raise ValueError(f"{path}: header declares {shape} ({expected} bytes), more than "
                         f"{len(raw)} bytes of gzip can hold; the file is corrupt or truncated")
    payload = stream.take(expected)
    if len(payload) < expected:
        raise ValueError(f"{path}: truncated: header declares {shape} ({expected} bytes of "
                         f"data), the gzip stream holds {len(payload)}")
    stream.finish()
    return _to_native(np.frombuffer(payload, dtype).reshape(shape))


def _to_native(array: np.ndarray) -> np.ndarray:
    return array if array.dtype.itemsize == 1 else array.astype(array.dtype.newbyteorder("="))


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
                    n_classes: int | None = None) -> ImageSet:
    """Load a folder of the four MNIST-format IDX files, pixels and labels exactly as stored.

    Args:
        folder: holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally ``.gz``.
        name: the data set's name (default: the folder's name).
        n_classes: the number of classes, if known; labels must lie below it. Default:
            one more than the largest label.

    Returns:
        An :class:`ImageSet` with uint8 images (n, rows, cols) and int64 labels.

    Raises:
        FileNotFoundError: for a missing folder or file.
        ValueError: for a bad file, image and label counts that disagree, images that are not
            (n, rows, cols) uint8, train and test image sizes that differ, or labels out of range.
    """
    files = idx_files(folder)
    arrays = {key: read_idx(path) for key, path in files.items()}
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        _check_pair(files[x], arrays[x], files[y], arrays[y])
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(f"{files['x_test']}: images are {arrays['x_test'].shape[1:]} but "
                         f"{files['x_train']} holds {arrays['x_train'].shape[1:]}")
    labels = {k: arrays[k].astype(np.int64) for k in ("y_train", "y_test")}
    n_classes = check_labels(labels, {k: files[k] for k in labels}, n_classes)
    folder = Path(folder)
    return ImageSet(arrays["x_train"], labels["y_train"], arrays["x_test"], labels["y_test"],
                    n_classes=n_classes, name=name or folder.resolve().name, source=str(folder))


def _check_pair(x_path: Path, x: np.ndarray, y_path: Path, y: np.ndarray) -> None:
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"{x_path}: expected uint8 images (n, rows, cols); "
                         f"got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{y_path}: expected integer labels (n,); got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{y_path}: {len(y)} labels for {len(x)} images in {x_path.name}; "
                         f"the counts must agree")
