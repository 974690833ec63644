r"""The synthetic shape problems of Larochelle et al. (2007), generated from a seed.

``rectangles``: the outline (1 pixel, white on black) of an axis-aligned rectangle; label 1 if
it is taller than wide, 0 if wider than tall. Sides uniform in 1..28, pairs whose sides differ
by less than 3 pixels rejected, position uniform among those that fit.

``rectangles-image``: the same task where the rectangle (inside and border) is one natural
image patch and the background another (see :mod:`.patches`). Sides at least 10 and differing
by at least 5 pixels, area between 25% and 75% of the image.

``convex``: label 1 for a convex set of white pixels, 0 for a non-convex one. A convex set is
the intersection of K half-planes, K ~ Geometric(0.195), each bounded by a line through a
uniform point with a uniform orientation; kept only with at least 19 pixels. A non-convex
candidate is the union of 2-4 such sets with K ~ Geometric(0.07) and at least 10 pixels each,
kept only if it is not digitally convex: some grid point of its convex hull is not in the set
(:func:`digitally_convex`).

All are 28x28. Default sizes are the paper's, counting its validation set in train as its
released files do: rectangles 1000 + 200 / 50000, rectangles-image 10000 + 2000 / 50000,
convex 6000 + 2000 / 50000 (``validation=1/6, 1/6, 0.25`` gives the paper's split).

Where the paper is silent we chose, and say so: each half-plane keeps the side holding an
anchor point drawn uniformly once per set (so the set is never empty by construction); the
convexity check is the exact hull test of :func:`digitally_convex` (the paper checks every
pair of pixels); labels are drawn Bernoulli(1/2).

References:
    Larochelle, Erhan, Courville, Bergstra & Bengio (2007). An empirical evaluation of deep
    architectures on problems with many factors of variation. ICML.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Callable

import numpy as np

from neuralsmith.data.arrays import ImageSet
from neuralsmith.data.dataset import Dataset
from neuralsmith.data.patches import natural_patches
from neuralsmith.data.variations import quantize

SIDE = 28
PAPER_SIZES = {"rectangles": (1200, 50000), "rectangles-image": (12000, 50000),
               "convex": (8000, 50000)}
GENERATOR_VERSION = 1  # bump when a generator's output changes, to invalidate caches
STREAM = 1  # random stream id of generators (variations use 2)

Draw = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _until(n: int, draw: Callable[[int], np.ndarray]) -> np.ndarray:
    """Concatenate accepted rows of ``draw(k)`` batches until there are ``n``; return n."""
    parts, have = [], 0
    while not parts or have < n:
        batch = draw(max(16, (n - have) * 3 // 2))
        parts.append(batch)
        have += len(batch)
    return np.concatenate(parts)[:n]


def _box(top: np.ndarray, left: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Masks (n, 28, 28) of the filled axis-aligned boxes."""
    r = np.arange(SIDE)
    rows = (r >= top[:, None]) & (r < (top + height)[:, None])
    cols = (r >= left[:, None]) & (r < (left + width)[:, None])
    return rows[:, :, None] & cols[:, None, :]


def _rectangle_params(n: int, rng: np.random.Generator, low: int, min_gap: int,
                      area: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """(top, left, height, width) rows: sides uniform in low..28, rejecting close sides and
    areas outside the given fractions of the image; position uniform among those that fit."""
    def draw(k: int) -> np.ndarray:
        hw = rng.integers(low, SIDE + 1, size=(k, 2))
        frac = hw.prod(1) / SIDE**2
        return hw[(np.abs(hw[:, 0] - hw[:, 1]) >= min_gap) & (frac >= area[0]) & (frac <= area[1])]

    hw = _until(n, draw)
    top = (rng.random(n) * (SIDE - hw[:, 0] + 1)).astype(np.int64)
    left = (rng.random(n) * (SIDE - hw[:, 1] + 1)).astype(np.int64)
    return np.stack([top, left, hw[:, 0], hw[:, 1]], 1)


def draw_rectangles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rectangle outlines, uint8 (n, 28, 28), and labels (1 = tall, 0 = wide)."""
    top, left, h, w = _rectangle_params(n, rng, low=1, min_gap=3).T
    outline = _box(top, left, h, w) & ~_box(top + 1, left + 1, h - 2, w - 2)
    return outline.astype(np.uint8) * 255, (h > w).astype(np.int64)


def draw_rectangles_image(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rectangles of one image patch on a background of another (1 = tall, 0 = wide)."""
    top, left, h, w = _rectangle_params(n, rng, low=10, min_gap=5, area=(0.25, 0.75)).T
    inside, background = (natural_patches(n, (SIDE, SIDE), rng) for _ in range(2))
    x = np.where(_box(top, left, h, w), inside, background)
    return quantize(x), (h > w).astype(np.int64)


def half_plane_sets(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Masks (n, 28, 28) of intersections of ``counts[i]`` random half-planes.

    Each line passes through a uniform point of the image with a uniform orientation; each
    half-plane keeps the side holding the set's anchor point. Each half-plane bounds the
    columns of every row (``a * col >= rhs(row)``), so a set is one interval per row.
    """
    order = np.argsort(-counts, kind="stable")  # sets still taking planes are then a prefix
    counts = counts[order]
    n, rows = len(counts), np.arange(SIDE)
    anchor = rng.uniform(-0.5, SIDE - 0.5, (n, 2))  # (row, col)
    lo, hi = np.full((n, SIDE), -np.inf), np.full((n, SIDE), np.inf)
    for k in range(int(counts.max(initial=0))):
        m = int(np.count_nonzero(counts > k))
        point = rng.uniform(-0.5, SIDE - 0.5, (m, 2))
        angle = rng.uniform(0.0, math.pi, m)
        nr, nc = np.sin(angle), np.cos(angle)  # the line's normal, (row, col)
        offset = nr * (anchor[:m, 0] - point[:, 0]) + nc * (anchor[:m, 1] - point[:, 1])
        side = np.where(offset >= 0, 1.0, -1.0)  # which side of the line the anchor is on
        # keep side * (nr (row - pr) + nc (col - pc)) >= 0, i.e. a * col >= rhs(row)
        a = np.where(side * nc == 0, 1e-12, side * nc)
        rhs = side[:, None] * ((nc * point[:, 1])[:, None] + nr[:, None] * (point[:, :1] - rows))
        bound = rhs / a[:, None]  # (m, 28): col >= bound if a > 0, col <= bound if a < 0
        lower = (a > 0)[:, None]
        np.maximum(lo[:m], np.where(lower, bound, -np.inf), out=lo[:m])
        np.minimum(hi[:m], np.where(lower, np.inf, bound), out=hi[:m])
    masks = np.empty((n, SIDE, SIDE), bool)
    masks[order] = (rows >= lo[:, :, None]) & (rows <= hi[:, :, None])
    return masks


def digitally_convex(masks: np.ndarray) -> np.ndarray:
    """Whether each pixel set (n, rows, cols) holds every grid point of its convex hull.

    Only each row's first and last pixels can be corners of the hull, and the hull's extent
    on row r is [min, max] over the chords between rows i < r < j of the first (last)
    pixels, with row r's own pixels. Chord crossings are fractions with denominators below
    the image height, so rounding them to grid points with a 1e-9 tolerance is exact. A set
    whose rows are not single runs fails at once.

    Example:
        >>> ring = np.ones((1, 5, 5), bool); ring[0, 1:4, 1:4] = False
        >>> digitally_convex(np.concatenate([np.ones((1, 5, 5), bool), ring])).tolist()
        [True, False]
    """
    n_cols = masks.shape[2]
    count = masks.sum(2)  # (n, rows)
    first = masks.argmax(2)
    last = n_cols - 1 - masks[:, :, ::-1].argmax(2)
    ok = ((count == last - first + 1) | (count == 0)).all(1)
    for start in range(0, len(masks), 1024):  # (chunk, row triples) stays small
        part = np.flatnonzero(ok[start:start + 1024]) + start
        ok[part] = _hull_points(first[part], last[part], count[part] > 0) == count[part].sum(1)
    return ok


@functools.lru_cache(maxsize=4)
def _triples(n_rows: int) -> tuple[np.ndarray, ...]:
    """Every row triple i < r < j sorted by r, and where each r's group starts."""
    i, r, j = np.array(list(itertools.combinations(range(n_rows), 3))).T
    order = np.argsort(r, kind="stable")
    i, r, j = i[order], r[order], j[order]
    return i, r, j, np.searchsorted(r, np.arange(1, n_rows - 1))


def _hull_points(first: np.ndarray, last: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Grid points in the convex hull of sets given by one run per row (n,)."""
    i, r, j, starts = _triples(first.shape[1])
    w = (r - i) / (j - i)  # where row r lies between rows i and j
    valid = has[:, i] & has[:, j]
    chord_lo = np.where(valid, first[:, i] + (first[:, j] - first[:, i]) * w, np.inf)
    chord_hi = np.where(valid, last[:, i] + (last[:, j] - last[:, i]) * w, -np.inf)
    lo = np.where(has, first, np.inf).astype(float)
    hi = np.where(has, last, -np.inf).astype(float)
    lo[:, 1:-1] = np.minimum(lo[:, 1:-1], np.minimum.reduceat(chord_lo, starts, axis=1))
    hi[:, 1:-1] = np.maximum(hi[:, 1:-1], np.maximum.reduceat(chord_hi, starts, axis=1))
    width = np.floor(hi + 1e-9) - np.ceil(lo - 1e-9) + 1
    return np.where(np.isfinite(width), np.maximum(width, 0), 0).sum(1).astype(np.int64)


def _convex_sets(n: int, rng: np.random.Generator, p: float, min_pixels: int) -> np.ndarray:
    def draw(k: int) -> np.ndarray:
        sets = half_plane_sets(rng.geometric(p, k), rng)
        return sets[sets.sum((1, 2)) >= min_pixels]

    return _until(n, draw)


def _nonconvex_sets(n: int, rng: np.random.Generator) -> np.ndarray:
    def draw(k: int) -> np.ndarray:
        pieces = rng.integers(2, 5, k)  # 2 to 4 convex sets
        union = np.zeros((k, SIDE, SIDE), bool)
        for j in range(4):
            i = np.flatnonzero(pieces > j)
            union[i] |= _convex_sets(len(i), rng, p=0.07, min_pixels=10)
        return union[~digitally_convex(union)]

    return _until(n, draw)


def draw_convex(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sets of white pixels, uint8 (n, 28, 28), and labels (1 = convex, 0 = not)."""
    y = (rng.random(n) < 0.5).astype(np.int64)
    x = np.empty((n, SIDE, SIDE), bool)
    x[y == 1] = _convex_sets(int(y.sum()), rng, p=0.195, min_pixels=19)
    x[y == 0] = _nonconvex_sets(n - int(y.sum()), rng)
    return x.astype(np.uint8) * 255, y


GENERATORS: dict[str, Draw] = {"rectangles": draw_rectangles,
                               "rectangles-image": draw_rectangles_image,
                               "convex": draw_convex}


def generate(name: str, n_train: int | None = None, n_test: int | None = None, *,
             seed: int = 0) -> ImageSet:
    """Generate a synthetic problem; train and test come from independent seeded streams.

    Args:
        name: ``rectangles``, ``rectangles-image`` or ``convex``.
        n_train: training images (default: the paper's, validation included).
        n_test: test images (default: the paper's 50000).
        seed: non-negative seed; the same seed gives the same images.

    Returns:
        An :class:`ImageSet` of uint8 (n, 28, 28) images and 2 classes.

    Raises:
        ValueError: for an unknown name, sizes below 1 or a negative seed.

    Example:
        >>> s = generate("rectangles", 8, 4, seed=3)
        >>> s.x_train.shape, s.x_test.shape, s.n_classes
        ((8, 28, 28), (4, 28, 28), 2)
    """
    if name not in GENERATORS:
        raise ValueError(f"unknown synthetic problem {name!r}; known: {', '.join(GENERATORS)}")
    n_train = PAPER_SIZES[name][0] if n_train is None else n_train
    n_test = PAPER_SIZES[name][1] if n_test is None else n_test
    if n_train < 1 or n_test < 1 or seed < 0:
        raise ValueError(f"n_train and n_test must be >= 1 and seed >= 0; "
                         f"got {n_train}, {n_test}, {seed}")
    (x_train, y_train), (x_test, y_test) = (
        GENERATORS[name](n, np.random.default_rng([seed, STREAM, split]))
        for split, n in enumerate((n_train, n_test)))
    return ImageSet(x_train, y_train, x_test, y_test, n_classes=2, name=name,
                    source=f"generated (Larochelle et al., 2007), seed {seed}")


def rectangles(n_train: int = 1200, n_test: int = 50000, *, seed: int = 0) -> Dataset:
    """Tall or wide rectangle outlines (see the module docstring); a :class:`Dataset`.

    Example:
        >>> ds = rectangles(10, 10)
        >>> ds.x_train.shape, sorted(ds.x_train.unique().tolist())
        (torch.Size([10, 784]), [0.0, 1.0])
    """
    return generate("rectangles", n_train, n_test, seed=seed).to_dataset()


def rectangles_image(n_train: int = 12000, n_test: int = 50000, *, seed: int = 0) -> Dataset:
    """Tall or wide rectangles of one natural-image patch on another; a :class:`Dataset`."""
    return generate("rectangles-image", n_train, n_test, seed=seed).to_dataset()


def convex(n_train: int = 8000, n_test: int = 50000, *, seed: int = 0) -> Dataset:
    """Convex or non-convex sets of white pixels; a :class:`Dataset`."""
    return generate("convex", n_train, n_test, seed=seed).to_dataset()
