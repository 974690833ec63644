"""Fashion-MNIST for the benchmarks: through ``neuralsmith.data`` once it offers it.

Until the ``fashion-mnist`` source lands on main, read the IDX files straight from
``/usr/share/datasets/fashion-mnist`` (gzip, 16-byte header). Benchmark-only helper.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

FOLDER = Path("/usr/share/datasets/fashion-mnist")


def _idx_images(path: Path) -> torch.Tensor:
    raw = np.frombuffer(gzip.open(path, "rb").read(), dtype=np.uint8, offset=16)
    return torch.from_numpy(raw.reshape(-1, 784).astype(np.float32) / 255.0)


def load(binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_train, x_test) as float32 rows in [0, 1]; thresholded at 0.5 with ``binarize``."""
    try:
        from neuralsmith import data

        ds = data.load("fashion-mnist", binarize="threshold" if binarize else None)
        return ds.x_train, ds.x_test
    except ValueError:  # not registered yet on this branch
        x_train = _idx_images(FOLDER / "train-images-idx3-ubyte.gz")
        x_test = _idx_images(FOLDER / "t10k-images-idx3-ubyte.gz")
        if binarize:
            x_train, x_test = (x_train > 0.5).float(), (x_test > 0.5).float()
        return x_train, x_test
