"""Named sources and the :func:`load` entry point."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from neuralsmith.data.dataset import Dataset, binarize as _binarize, split_validation


def _digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images), 1/4 held out as test with seed 0."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.data.astype(np.float32) / 16.0)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test = len(y) // 4
    test, train = perm[:n_test], perm[n_test:]
    return Dataset(x[train], y[train], x[test], y[test], image_shape=(8, 8), n_classes=10,
                   name="digits", source="sklearn.datasets.load_digits")


SOURCES: dict[str, Callable[[], Dataset]] = {"digits": _digits}


def list_sources() -> list[str]:
    """Names of the registered sources."""
    return sorted(SOURCES)


def load(source: str, *, binarize: str | None = None, validation: float = 0.0,
         seed: int = 0) -> Dataset:
    """Load a data set by registered name.

    Args:
        source: a registered name (see :func:`list_sources`).
        binarize: None, ``"threshold"`` or ``"stochastic"``.
        validation: fraction of train moved to a validation split (seeded).
        seed: seed for the split and stochastic binarization.

    Raises:
        ValueError: for an unknown source.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; known: {', '.join(list_sources())}")
    ds = split_validation(SOURCES[source](), validation, seed)
    return _binarize(ds, binarize, seed) if binarize else ds


def info(source: str) -> dict:
    """The JSON summary of a source (see :meth:`Dataset.info`)."""
    return load(source).info()
