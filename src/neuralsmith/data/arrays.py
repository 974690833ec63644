"""Raw image arrays before they become a :class:`Dataset`: the :class:`ImageSet` record and
the checks every reader applies (pixel range, label range)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from neuralsmith.data.dataset import Dataset

MAX_CLASSES = 10_000  # a label above this is almost surely not a class index


@dataclass(frozen=True)
class ImageSet:
    """Images as (n, rows, cols) uint8 in 0-255 or float32 in [0, 1], with int64 labels.

    What readers and generators produce and what the cache stores; :meth:`to_dataset` turns
    it into the flat float32 :class:`Dataset` contract.

    Example:
        >>> import numpy as np
        >>> x = np.full((2, 3, 3), 255, np.uint8)
        >>> ds = ImageSet(x, np.array([0, 1]), x, np.array([1, 0]), 2, "toy", "here").to_dataset()
        >>> ds.x_train.shape, ds.x_train.max().item(), ds.image_shape
        (torch.Size([2, 9]), 1.0, (3, 3))
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    source: str

    @property
    def image_shape(self) -> tuple[int, int]:
        return (int(self.x_train.shape[1]), int(self.x_train.shape[2]))

    def to_dataset(self) -> Dataset:
        """Flatten to float32 rows in [0, 1] and int64 labels."""
        return Dataset(_rows(self.x_train), _labels(self.y_train), _rows(self.x_test),
                       _labels(self.y_test), image_shape=self.image_shape,
                       n_classes=self.n_classes, name=self.name, source=self.source)


def _rows(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(unit_float(x).reshape(len(x), -1))


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(y, dtype=np.int64))


def unit_float(x: np.ndarray) -> np.ndarray:
    """Pixels as a new float32 array in [0, 1]: uint8 is divided by 255, bool becomes 0/1.

    Example:
        >>> unit_float(np.array([0, 51, 255], np.uint8)).tolist()
        [0.0, 0.20000000298023224, 1.0]
    """
    if x.dtype == np.uint8:
        return np.divide(x, np.float32(255.0), dtype=np.float32)
    return np.array(x, dtype=np.float32)


def check_pixels(x: np.ndarray, where: str | os.PathLike) -> np.ndarray:
    """Check pixels are uint8 (0-255), bool, or finite floats in [0, 1]; return them.

    Raises:
        ValueError: naming ``where``, for another dtype, NaN/inf, or floats outside [0, 1].
    """
    check_pixel_dtype(x.dtype, where)
    if x.dtype.kind != "f":
        return x
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{where}: pixels hold NaN or infinity; store finite values in [0, 1]")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"{where}: float pixels span [{x.min():.4g}, {x.max():.4g}]; they must "
                         f"lie in [0, 1] (divide 0-255 values by 255, or store uint8)")
    return x


def check_pixel_dtype(dtype: np.dtype, where: str | os.PathLike) -> None:
    """Check pixels are stored as uint8, bool or floats (before they are read).

    Raises:
        ValueError: naming ``where``, for any other dtype.
    """
    if dtype not in (np.uint8, np.bool_) and (dtype.kind != "f" or dtype.fields is not None):
        raise ValueError(f"{where}: pixels have dtype {dtype}; store uint8 (0-255) or "
                         f"floats in [0, 1]")


def as_images(x: np.ndarray, where: str | os.PathLike) -> np.ndarray:
    """Give flat rows (n, features) an image shape: square if possible, else (1, features).

    Raises:
        ValueError: if ``x`` is neither (n, features) nor (n, rows, cols).
    """
    if x.ndim == 3:
        return x
    if x.ndim != 2:
        raise ValueError(f"{where}: images must be (n, features) or (n, rows, cols); got {x.shape}")
    side = math.isqrt(x.shape[1])
    shape = (side, side) if side * side == x.shape[1] else (1, x.shape[1])
    return x.reshape(len(x), *shape)


def check_labels(labels: Mapping[str, np.ndarray], where: Mapping[str, object],
                 n_classes: int | None = None) -> int:
    """Check integer labels >= 0 (and < ``n_classes`` when given); return the class count.

    Args:
        labels: label arrays by name (``y_train``, ``y_test``).
        where: the file each came from, named in error messages.
        n_classes: the known number of classes, or None to use one more than the largest label.

    Raises:
        ValueError: for non-integer or non-1-D labels, or labels out of range.
    """
    for key, y in labels.items():
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"{where[key]}: {key} must be 1-D integer labels; "
                             f"got {y.dtype} {y.shape}")
    top = max((int(y.max()) for y in labels.values() if y.size), default=-1)
    limit = n_classes if n_classes is not None else MAX_CLASSES
    for key, y in labels.items():
        if y.size and (y.min() < 0 or y.max() >= limit):
            raise ValueError(f"{where[key]}: {key} out of range: labels span [{y.min()}, {y.max()}]"
                             f", classes must be 0..{limit - 1}")
    return n_classes if n_classes is not None else top + 1
