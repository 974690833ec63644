"""Data sets stored as one ``.npz`` with ``x_train, y_train, x_test, y_test``.

Images are uint8 (0-255), bool, or floats in [0, 1], flat (n, features) or (n, rows, cols);
labels are integers. The file is read with ``allow_pickle=False``: a user's file is never
unpickled.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from neuralsmith.data.arrays import ImageSet, as_images, check_labels, check_pixels

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path: str | os.PathLike, *, name: str | None = None) -> ImageSet:
    """Load an ``.npz`` data set, pixels and labels exactly as stored.

    Args:
        path: the file, holding arrays x_train, y_train, x_test, y_test.
        name: the data set's name (default: the file name without ``.npz``).

    Returns:
        An :class:`ImageSet`; flat images get a square shape when the feature count is square.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a file numpy cannot read without pickle, a missing key, NaN or
            out-of-range pixels, counts that disagree, or bad labels.

    Example:
        >>> import tempfile, numpy as np
        >>> p = tempfile.mkdtemp() + "/toy.npz"
        >>> x = np.zeros((4, 16), np.uint8); y = np.array([0, 1, 2, 1])
        >>> np.savez(p, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
        >>> s = read_npz(p); (s.image_shape, s.n_classes, s.name)
        ((4, 4), 3, 'toy')
    """
    path = Path(path)
    arrays = _members(path)
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


def _members(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of the file, read without pickle."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .npz file")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array, not named arrays")
        with archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise KeyError(", ".join(missing))
            return {k: archive[k] for k in NPZ_KEYS}
    except KeyError as exc:
        raise ValueError(f"{path}: missing {exc.args[0]}; a data set .npz holds "
                         f"{', '.join(NPZ_KEYS)}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not an .npz numpy can read without pickle ({exc}); save it "
                         f"with numpy.savez(path, x_train=..., y_train=..., x_test=..., "
                         f"y_test=...)") from None
