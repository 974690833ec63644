"""Data sets: one :class:`Dataset` contract for every source.

Sources: built-in ``digits``; ``mnist``, ``fashion-mnist``, ``kmnist`` from IDX files (see
:func:`fetch`); the synthetic ``rectangles``, ``rectangles-image``, ``convex`` of Larochelle
et al. (2007); any folder of IDX files or ``.npz``; and variations of any of them
(``-rot``, ``-bg-rand``, ``-bg-img``, ``-rot-bg-img``).

Example:
    >>> from neuralsmith import data
    >>> ds = data.load("digits", validation=0.1, seed=0)
    >>> ds.x_train.dtype, ds.n_classes, ds.image_shape
    (torch.float32, 10, (8, 8))
"""

from neuralsmith.data.arrays import ImageSet
from neuralsmith.data.dataset import Dataset, binarize, split_validation
from neuralsmith.data.fetch import fetch
from neuralsmith.data.idx import read_idx, read_idx_folder, write_idx
from neuralsmith.data.labels import labeled_subset, split_labeled
from neuralsmith.data.npz import read_npz
from neuralsmith.data.registry import catalog, info, list_sources, load, load_images
from neuralsmith.data.synthetic import convex, rectangles, rectangles_image
from neuralsmith.data.variations import vary

__all__ = ["Dataset", "ImageSet", "binarize", "catalog", "convex", "fetch", "info",
           "labeled_subset", "list_sources", "load", "load_images", "read_idx",
           "read_idx_folder", "read_npz", "rectangles", "rectangles_image", "split_labeled",
           "split_validation", "vary", "write_idx"]
