"""Fashion-MNIST for the benchmarks, through ``neuralsmith.data`` (60 000 train, 10 000 test)."""

from __future__ import annotations

import torch

from neuralsmith import data


def load(binarize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_train, x_test) as float32 rows in [0, 1]; thresholded at 0.5 with ``binarize``."""
    ds = data.load("fashion-mnist", binarize="threshold" if binarize else None)
    return ds.x_train, ds.x_test
