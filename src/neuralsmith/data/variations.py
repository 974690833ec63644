"""Factors of variation added to any image set (Larochelle et al., 2007).

``SOURCE-rot``: each image rotated about its centre by an angle uniform in [0, 2pi).
``SOURCE-bg-rand``: a background of uniform noise in [0, 1].
``SOURCE-bg-img``: a background patch of a natural photograph (see :mod:`.patches`).
``SOURCE-rot-bg-img``: rotation, then an image background.

The paper does not say how digit and background are combined; we put the image over the
background as ink whose opacity is its intensity, :math:`x = d + (1 - d)\\,b`, so pixels
where the image is 1 stay 1 and pixels where it is 0 show the background. Results are
quantised to 8 bits like every image source.

References:
    Larochelle, Erhan, Courville, Bergstra & Bengio (2007). An empirical evaluation of deep
    architectures on problems with many factors of variation. ICML.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from neuralsmith.data.arrays import ImageSet, unit_float
from neuralsmith.data.patches import natural_patches

VARIATIONS = ("rot-bg-img", "bg-rand", "bg-img", "rot")  # longest first, for suffix matching
STREAM = 2  # random stream id of variations (generators use 1), so their draws never coincide
CHUNK = 8192  # images rotated per grid_sample call, to bound memory


def split_variation(source: str) -> tuple[str, str] | None:
    """Split ``BASE-VARIATION`` into (base, variation), or None if there is no such suffix.

    Example:
        >>> split_variation("mnist-rot-bg-img"), split_variation("mnist")
        (('mnist', 'rot-bg-img'), None)
    """
    for variation in VARIATIONS:
        if source.endswith("-" + variation) and len(source) > len(variation) + 1:
            return source[: -len(variation) - 1], variation
    return None


def vary(images: ImageSet, variation: str, *, seed: int = 0) -> ImageSet:
    """Apply a variation to train and test, each from its own seeded random stream.

    Args:
        images: the base image set.
        variation: one of ``rot``, ``bg-rand``, ``bg-img``, ``rot-bg-img``.
        seed: seed of the draws (angles, noise, patches).

    Returns:
        A new :class:`ImageSet` named ``BASE-VARIATION`` with uint8 images.

    Raises:
        ValueError: for an unknown variation.

    Example:
        >>> import numpy as np
        >>> x = np.zeros((2, 8, 8), np.uint8); y = np.array([0, 1])
        >>> v = vary(ImageSet(x, y, x, y, 2, "toy", "here"), "bg-rand")
        >>> v.name, v.x_train.dtype, bool(v.x_train.any())
        ('toy-bg-rand', dtype('uint8'), True)
    """
    if variation not in VARIATIONS:
        raise ValueError(f"unknown variation {variation!r}; known: {', '.join(VARIATIONS)}")
    x_train, x_test = (_vary(x, variation, np.random.default_rng([seed, STREAM, split]))
                       for split, x in enumerate((images.x_train, images.x_test)))
    return replace(images, x_train=x_train, x_test=x_test, name=f"{images.name}-{variation}",
                   source=f"{images.source} + {variation} (seed {seed})")


def _vary(x: np.ndarray, variation: str, rng: np.random.Generator) -> np.ndarray:
    x = unit_float(x)
    if variation.startswith("rot"):
        x = rotate(x, rng.uniform(0.0, 2.0 * math.pi, len(x)))
    if variation.endswith("bg-rand"):
        x = over(x, rng.random(x.shape, dtype=np.float32))
    if variation.endswith("bg-img"):
        x = over(x, natural_patches(len(x), x.shape[1:], rng))
    return quantize(x)


def rotate(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    r"""Rotate each image (n, rows, cols) about its centre by its angle (radians, bilinear).

    A positive angle turns the image counter-clockwise as displayed (row 0 at the top), like
    ``np.rot90``. Pixels brought in from outside the image are 0. ``grid_sample`` works in
    coordinates normalised to [-1, 1] per axis, so the rotation R is conjugated by the scaling
    S = diag(2/cols, 2/rows): :math:`\theta = S R S^{-1}`, exact for non-square images too.

    Example:
        >>> x = np.zeros((1, 3, 3), np.float32); x[0, 0, 1] = 1  # top middle
        >>> rotate(x, np.array([np.pi]))[0, 2, 1].round(4)  # half a turn: bottom middle
        np.float32(1.0)
    """
    rows, cols = x.shape[1:]
    cos, sin = np.cos(angles), np.sin(angles)
    zero = np.zeros_like(cos)
    theta = np.stack([np.stack([cos, -sin * rows / cols, zero], 1),
                      np.stack([sin * cols / rows, cos, zero], 1)], 1)  # (n, 2, 3)
    theta = torch.from_numpy(theta.astype(np.float32))
    out = np.empty_like(x)
    for start in range(0, len(x), CHUNK):
        batch = torch.from_numpy(x[start:start + CHUNK])[:, None]  # (b, 1, rows, cols)
        grid = F.affine_grid(theta[start:start + CHUNK], list(batch.shape), align_corners=False)
        out[start:start + CHUNK] = F.grid_sample(batch, grid, align_corners=False)[:, 0].numpy()
    return out


def over(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Image as ink over a background: ``image + (1 - image) * background``."""
    return image + (1.0 - image) * background


def quantize(x: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] to uint8 0-255, rounded (in place on one float32 copy).

    Example:
        >>> quantize(np.array([0.0, 0.5, 1.0, 1.2])).tolist()
        [0, 128, 255, 255]
    """
    y = np.multiply(x, np.float32(255.0), dtype=np.float32)
    np.rint(y, out=y)
    np.maximum(y, 0.0, out=y)
    np.minimum(y, 255.0, out=y)
    return y.astype(np.uint8)
