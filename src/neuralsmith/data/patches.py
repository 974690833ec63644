"""Natural-image patches, cut from the photographs that ship with scikit-learn.

Larochelle et al. (2007) cut backgrounds from 20 photographs; offline we have scikit-learn's
two (``china.jpg``, ``flower.jpg``, 427x640), converted to grayscale. As in the paper, flat
patches (little texture) are skipped: patches are drawn uniformly among the positions whose
pixel standard deviation is at least ``MIN_PATCH_STD``.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 grayscale weights
MIN_PATCH_STD = 0.03  # pixel std (in [0, 1]) below which a patch is flat: ~40% of 28x28 ones


@functools.lru_cache(maxsize=1)
def photographs() -> np.ndarray:
    """scikit-learn's sample photographs as one grayscale float32 stack (2, 427, 640) in [0, 1]."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    return np.stack([(img.astype(np.float32) @ LUMA) / 255.0 for img in images])


def natural_patches(n: int, shape: tuple[int, int], rng: np.random.Generator,
                    min_std: float = MIN_PATCH_STD) -> np.ndarray:
    """Draw ``n`` grayscale patches uniformly among the textured positions of the photographs.

    Args:
        n: how many patches.
        shape: (rows, cols) of each patch.
        rng: the source of every random draw.
        min_std: positions whose patch has a pixel standard deviation below this are never drawn.

    Returns:
        float32 array (n, rows, cols) in [0, 1].

    Raises:
        ValueError: if the patches would not fit in the photographs.

    Example:
        >>> p = natural_patches(3, (8, 8), np.random.default_rng(0))
        >>> p.shape, bool(p.std(axis=(1, 2)).min() >= MIN_PATCH_STD - 1e-4)
        ((3, 8, 8), True)
    """
    photos = photographs()
    if shape[0] > photos.shape[1] or shape[1] > photos.shape[2]:
        raise ValueError(f"patches of {shape} do not fit in the {photos.shape[1:]} photographs; "
                         f"image backgrounds need images of at most that size")
    which, top, left = _textured_positions(tuple(shape), min_std)
    pick = rng.integers(0, len(which), n)
    windows = sliding_window_view(photos, shape, axis=(1, 2))  # (2, H-h+1, W-w+1, h, w), a view
    return np.ascontiguousarray(windows[which[pick], top[pick], left[pick]])


@functools.lru_cache(maxsize=8)
def _textured_positions(shape: tuple[int, int], min_std: float) -> tuple[np.ndarray, ...]:
    """(photo, top, left) of every patch position whose pixel std is at least ``min_std``.

    The std of every window comes from summed-area tables: var = E[x^2] - E[x]^2.
    """
    found = []
    for k, photo in enumerate(photographs().astype(np.float64)):
        mean, mean_sq = (_window_means(p, shape) for p in (photo, photo**2))
        top, left = np.nonzero(np.sqrt(np.maximum(mean_sq - mean**2, 0.0)) >= min_std)
        found.append((np.full(len(top), k), top, left))
    return tuple(np.concatenate(parts) for parts in zip(*found))


def _window_means(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mean of every ``shape`` window of ``image``, indexed by its top-left corner."""
    table = np.pad(image, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    h, w = shape
    sums = table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]
    return sums / (h * w)
