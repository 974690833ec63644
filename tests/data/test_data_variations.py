import numpy as np
import pytest

from neuralsmith import data
from neuralsmith.data.arrays import ImageSet
from neuralsmith.data.patches import MIN_PATCH_STD, natural_patches, photographs
from neuralsmith.data.variations import VARIATIONS, over, rotate, split_variation, vary


@pytest.mark.parametrize("source, expected", [
    ("mnist-rot", ("mnist", "rot")), ("mnist-bg-rand", ("mnist", "bg-rand")),
    ("fashion-mnist-bg-img", ("fashion-mnist", "bg-img")),
    ("rectangles-rot-bg-img", ("rectangles", "rot-bg-img")), ("/a/b-c.npz-rot", ("/a/b-c.npz", "rot")),
    ("rectangles-image", None), ("-rot", None), ("digits", None)])
def test_split_variation(source, expected):
    assert split_variation(source) == expected


def test_rotation_by_zero_is_the_identity():
    x = np.random.default_rng(0).random((3, 6, 6), dtype=np.float32)
    assert np.allclose(rotate(x, np.zeros(3)), x, atol=1e-6)


def test_quarter_turns_move_pixels_exactly():
    x = np.random.default_rng(0).random((2, 5, 5), dtype=np.float32)
    quarter = rotate(x, np.full(2, np.pi / 2))
    assert np.allclose(quarter, np.rot90(x, k=1, axes=(1, 2)), atol=1e-5)  # counter-clockwise as shown
    assert np.allclose(rotate(quarter, np.full(2, np.pi / 2)), x[:, ::-1, ::-1], atol=1e-5)


def test_half_turn_of_a_non_square_image():
    x = np.random.default_rng(1).random((1, 4, 7), dtype=np.float32)
    assert np.allclose(rotate(x, np.array([np.pi])), x[:, ::-1, ::-1], atol=1e-5)


def test_over_keeps_ink_and_shows_background():
    image = np.array([0.0, 1.0, 0.5], np.float32)
    assert over(image, np.full(3, 0.5, np.float32)).tolist() == [0.5, 1.0, 0.75]


def _toy(n=200, side=8):
    x = np.zeros((n, side, side), np.uint8)
    x[:, 2:6, 3:5] = 255
    y = np.arange(n) % 2
    return ImageSet(x, y, x[:50], y[:50], 2, "toy", "memory")


def test_random_background_fills_the_empty_pixels_uniformly():
    base = _toy()
    v = vary(base, "bg-rand", seed=0)
    ink = base.x_train == 255
    assert (v.x_train[ink] == 255).all()
    background = v.x_train[~ink] / 255
    assert 0.45 < background.mean() < 0.55 and background.min() < 0.05 and background.max() > 0.95


def test_image_background_comes_from_textured_photograph_patches():
    v = vary(_toy(), "bg-img", seed=0)
    assert (v.x_train[:, 0:2, :].std(axis=(1, 2)) > 0).all()
    patches = natural_patches(100, (8, 8), np.random.default_rng(0))
    assert (patches.std(axis=(1, 2)) >= MIN_PATCH_STD - 1e-4).all() and patches.max() <= 1
    assert photographs().shape == (2, 427, 640)


@pytest.mark.parametrize("variation", VARIATIONS)
def test_variations_are_seeded_and_keep_labels(variation):
    base = _toy()
    a, b, c = (vary(base, variation, seed=s) for s in (0, 0, 1))
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
    assert np.array_equal(a.y_train, base.y_train) and a.name == f"toy-{variation}"
    assert a.x_train.dtype == np.uint8 and a.x_train.shape == base.x_train.shape


def test_rotation_angles_cover_the_whole_turn():
    x = np.zeros((400, 9, 9), np.uint8)
    x[:, 0:4, 4] = 255  # a bar from the centre upwards
    v = vary(ImageSet(x, np.zeros(400, int), x[:1], np.zeros(1, int), 1, "bar", "memory"), "rot")
    quadrants = [v.x_train[:, :4, :4], v.x_train[:, :4, 5:], v.x_train[:, 5:, :4], v.x_train[:, 5:, 5:]]
    assert all((q.reshape(400, -1).max(1) > 128).mean() > 0.15 for q in quadrants)


def test_unknown_variation_is_refused():
    with pytest.raises(ValueError, match="known: rot-bg-img, bg-rand, bg-img, rot"):
        vary(_toy(), "blur")


def test_load_applies_variations_to_names_and_paths(idx_folder):
    ds = data.load("digits-rot")
    assert ds.name == "digits-rot" and ds.x_train.shape == (1348, 64)
    assert not np.array_equal(ds.x_train.numpy(), data.load("digits").x_train.numpy())
    folder = idx_folder()
    assert data.load(f"{folder}-bg-rand").name == "toy-bg-rand"
