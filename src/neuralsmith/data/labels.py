"""Keeping only some of the labels: the seeded, class-stratified labeled subset of a training set.

Semi-supervised experiments (Larochelle et al. 2012, section 6; Ororbia et al. 2015) train on
all the inputs but only a fraction of the labels. :func:`labeled_subset` picks that fraction
class by class, so every class keeps its share (and at least one example).

Example:
    >>> import torch
    >>> y = torch.arange(10).repeat(10)  # 10 classes x 10 examples
    >>> idx = labeled_subset(y, 0.2, seed=0)
    >>> len(idx), torch.bincount(y[idx]).tolist()
    (20, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["labeled_subset", "split_labeled"]


def labeled_subset(y: Tensor, fraction: float, seed: int = 0) -> Tensor:
    r"""Indices of a seeded, class-stratified ``fraction`` of the rows with labels ``y``.

    Class :math:`c` with :math:`n_c` examples keeps :math:`\max(1, \mathrm{round}(f\, n_c))` of
    them, drawn uniformly without replacement. Vectorized: a random permutation, stably sorted
    by class, gives each example its rank within its class; the ranks below the quota are kept.

    Args:
        y: int64 labels, shape (n,).
        fraction: in (0, 1]; 1 keeps every row.
        seed: the draw; the same seed gives the same subset.

    Returns:
        Sorted int64 indices into ``y``.

    Raises:
        ValueError: for a fraction outside (0, 1] or labels that are not a 1-D integer tensor.
    """
    if isinstance(fraction, bool) or not 0.0 < fraction <= 1.0:
        raise ValueError(f"labeled fraction must be in (0, 1] (e.g. 0.01 for 1% of the labels); "
                         f"got {fraction!r}")
    if y.dim() != 1 or y.dtype.is_floating_point:
        raise ValueError(f"y must be 1-D integer labels; got shape {tuple(y.shape)}, {y.dtype}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    order = perm[torch.sort(y[perm], stable=True).indices]  # grouped by class, random within
    counts = torch.bincount(y)
    starts = torch.cumsum(counts, 0) - counts  # (n_classes,) first position of each class
    ys = y[order]
    rank = torch.arange(len(y)) - starts[ys]
    quota = torch.clamp(torch.round(counts * fraction), min=1).to(torch.int64)
    return torch.sort(order[rank < quota[ys]]).values


def split_labeled(x: Tensor, y: Tensor, fraction: float,
                  seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """``(x_labeled, y_labeled, x_unlabeled)``: the rows of :func:`labeled_subset` and the rest.

    Example:
        >>> x, y = torch.rand(8, 3), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
        >>> xl, yl, xu = split_labeled(x, y, 0.5)
        >>> xl.shape[0], xu.shape[0], yl.tolist().count(0)
        (4, 4, 2)
    """
    keep = labeled_subset(y, fraction, seed)
    rest = torch.ones(len(y), dtype=torch.bool)
    rest[keep] = False
    return x[keep], y[keep], x[rest]
