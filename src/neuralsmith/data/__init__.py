"""Data sets: one :class:`Dataset` contract for every source.

Example:
    >>> from neuralsmith import data
    >>> ds = data.load("digits", validation=0.1, seed=0)
    >>> ds.x_train.dtype, ds.n_classes, ds.image_shape
    (torch.float32, 10, (8, 8))
"""

from neuralsmith.data.dataset import Dataset
from neuralsmith.data.registry import info, list_sources, load

__all__ = ["Dataset", "info", "list_sources", "load"]
