"""The :class:`Dataset` every source loads to, with validation splits and binarization."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import torch


@dataclass(frozen=True)
class Dataset:
    """Images as flat float32 rows in [0, 1], int64 labels.

    Attributes:
        x_train, y_train: training set, shapes (n_train, n_features) and (n_train,).
        x_test, y_test: test set.
        x_valid, y_valid: validation set carved from train (empty when none was asked for).
        image_shape: (height, width) for plotting rows as images.
        n_classes: number of label values.
        name: the source name.
        source: where it came from (a path, a URL or "generated").
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, int]
    n_classes: int
    name: str
    source: str
    x_valid: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    y_valid: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def checksum(self) -> str:
        """SHA-256 of the data as loaded (train, validation, test; images then labels, in that order).

        Two runs that report the same checksum saw the same examples in the same split.
        """
        digest = hashlib.sha256()
        for t in (self.x_train, self.y_train, self.x_valid, self.y_valid, self.x_test, self.y_test):
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def info(self) -> dict:
        """A JSON-ready summary: name, sizes, features, classes, image shape, source."""
        return {"name": self.name, "n_train": int(self.x_train.shape[0]),
                "n_valid": int(self.x_valid.shape[0]), "n_test": int(self.x_test.shape[0]),
                "n_features": self.n_features, "n_classes": self.n_classes,
                "image_shape": list(self.image_shape), "source": self.source}


def split_validation(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Move a seeded random ``fraction`` of the training set into the validation set.

    Raises:
        ValueError: if ``fraction`` is outside [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation must be a fraction in [0, 1); got {fraction}")
    n = ds.x_train.shape[0]
    n_valid = int(round(fraction * n))
    if n_valid == 0:
        return ds
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    valid, train = perm[:n_valid], perm[n_valid:]
    return replace(ds, x_train=ds.x_train[train], y_train=ds.y_train[train],
                   x_valid=ds.x_train[valid], y_valid=ds.y_train[valid])


BINARIZATIONS = ("threshold", "stochastic")


def binarize(ds: Dataset, how: str, seed: int = 0) -> Dataset:
    """Binarize pixels: ``threshold`` at 0.5, or ``stochastic`` (Bernoulli, seeded, fixed).

    Raises:
        ValueError: for an unknown method.
    """
    if how not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {', '.join(BINARIZATIONS)}; got {how!r}")
    g = torch.Generator().manual_seed(seed)

    def one(x: torch.Tensor) -> torch.Tensor:
        if how == "threshold":
            return (x > 0.5).float()
        return torch.bernoulli(x, generator=g)

    return replace(ds, x_train=one(ds.x_train), x_test=one(ds.x_test), x_valid=one(ds.x_valid))
