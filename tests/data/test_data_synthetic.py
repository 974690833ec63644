import itertools

import numpy as np
import pytest

from neuralsmith import data
from neuralsmith.data import synthetic
from neuralsmith.data.patches import MIN_PATCH_STD
from neuralsmith.data.synthetic import PAPER_SIZES, digitally_convex, generate


@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_generated_sets_follow_the_contract(name):
    s = generate(name, 40, 20, seed=0)
    assert s.x_train.shape == (40, 28, 28) and s.x_test.shape == (20, 28, 28)
    assert s.x_train.dtype == np.uint8 and s.y_train.dtype == np.int64 and s.n_classes == 2
    assert set(np.unique(s.y_train)) <= {0, 1}
    ds = s.to_dataset()
    assert ds.n_features == 784 and ds.image_shape == (28, 28) and 0 <= ds.x_test.min() <= ds.x_test.max() <= 1


@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_same_seed_same_images_and_test_set_independent_of_n_train(name):
    a, b = generate(name, 10, 10, seed=4), generate(name, 30, 10, seed=4)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, generate(name, 10, 10, seed=5).x_test)


def test_paper_sizes_are_the_defaults():
    assert PAPER_SIZES == {"rectangles": (1200, 50000), "rectangles-image": (12000, 50000),
                           "convex": (8000, 50000)}


def _bounding_boxes(x):
    on = x > 0
    rows, cols = on.any(2), on.any(1)
    height = 28 - rows.argmax(1) - rows[:, ::-1].argmax(1)
    width = 28 - cols.argmax(1) - cols[:, ::-1].argmax(1)
    return height, width


def test_rectangles_are_outlines_labelled_tall_or_wide():
    x, y = synthetic.draw_rectangles(500, np.random.default_rng(0))
    h, w = _bounding_boxes(x)
    assert np.array_equal(y, (h > w).astype(int)) and (np.abs(h - w) >= 3).all()
    assert ((x > 0).sum((1, 2)) == np.where((h > 1) & (w > 1), 2 * (h + w) - 4, h * w)).all()
    assert set(np.unique(x)) == {0, 255} and 0.4 < y.mean() < 0.6


def test_rectangles_image_sizes_follow_the_paper():
    top, left, h, w = synthetic._rectangle_params(2000, np.random.default_rng(0), low=10, min_gap=5,
                                                  area=(0.25, 0.75)).T
    assert (h >= 10).all() and (w >= 10).all() and (np.abs(h - w) >= 5).all()
    assert ((h * w >= 0.25 * 784) & (h * w <= 0.75 * 784)).all()
    assert (top + h <= 28).all() and (left + w <= 28).all() and (top >= 0).all()


def test_rectangles_image_is_textured():
    x, _ = synthetic.draw_rectangles_image(50, np.random.default_rng(0))
    assert (x.std(axis=(1, 2)) / 255 > MIN_PATCH_STD / 2).all()


def test_convex_labels_match_convexity():
    x, y = synthetic.draw_convex(300, np.random.default_rng(0))
    masks = x > 0
    assert np.array_equal(digitally_convex(masks), y == 1)
    assert (masks[y == 1].sum((1, 2)) >= 19).all()


def _brute_force_convex(mask):
    """Every grid point inside a triangle (or on a segment) of set points is in the set."""
    points = [tuple(p) for p in np.argwhere(mask)]
    hull = np.zeros_like(mask)
    for a, b, c in itertools.combinations_with_replacement(points, 3):
        for q in np.argwhere(np.ones_like(mask)):
            d1 = (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0])
            d2 = (c[0] - b[0]) * (q[1] - b[1]) - (c[1] - b[1]) * (q[0] - b[0])
            d3 = (a[0] - c[0]) * (q[1] - c[1]) - (a[1] - c[1]) * (q[0] - c[0])
            on_segments = (d1 == 0 and min(a[0], b[0]) <= q[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= q[1] <= max(a[1], b[1]))
            area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
            inside = (d1 >= 0 and d2 >= 0 and d3 >= 0) or (d1 <= 0 and d2 <= 0 and d3 <= 0)
            if (inside and area != 0) or on_segments:
                hull[tuple(q)] = True
    return bool((hull <= mask).all())


def test_digital_convexity_matches_brute_force_on_small_sets():
    rng = np.random.default_rng(0)
    masks = rng.random((60, 4, 4)) < rng.uniform(0.2, 0.9, (60, 1, 1))
    masks[masks.sum((1, 2)) == 0, 0, 0] = True
    assert digitally_convex(masks).tolist() == [_brute_force_convex(m) for m in masks]


def test_digitally_convex_allows_thin_sets_that_skip_rows():
    mask = np.zeros((1, 5, 5), bool)
    mask[0, 0, 0] = mask[0, 2, 1] = mask[0, 4, 2] = True  # a digital line of slope 1/2
    assert digitally_convex(mask).tolist() == [True]


def test_public_functions_return_datasets():
    assert data.rectangles(4, 2).x_train.shape == (4, 784)
    assert data.rectangles_image(4, 2).n_classes == 2
    assert data.convex(4, 2, seed=1).x_test.shape == (2, 784)


@pytest.mark.parametrize("bad", [dict(n_train=0), dict(n_test=-1), dict(seed=-1)])
def test_bad_sizes_and_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="must be >= 1 and seed >= 0"):
        generate("rectangles", **{"n_train": 2, "n_test": 2, **bad})


def test_unknown_problem_is_refused():
    with pytest.raises(ValueError, match="known: rectangles, rectangles-image, convex"):
        generate("circles")


def test_half_plane_sets_keep_each_set_with_its_count():
    counts = np.tile([1, 40], 200)
    sizes = synthetic.half_plane_sets(counts, np.random.default_rng(0)).sum((1, 2))
    assert sizes[counts == 1].mean() > 3 * sizes[counts == 40].mean()
    assert (sizes[counts == 1] > 0).all()  # one half-plane keeps its anchor's half of the image
