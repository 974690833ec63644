import logging

import numpy as np
import pytest

from neuralsmith import data
from neuralsmith.data import cache, idx, registry
from neuralsmith.data.registry import catalog, list_sources, resolve


def test_every_registered_name_is_listed():
    assert list_sources() == ["convex", "digits", "fashion-mnist", "kmnist", "mnist",
                              "rectangles", "rectangles-image"]
    assert {row["name"] for row in catalog()} == set(list_sources())


def test_unknown_name_lists_names_and_variations():
    with pytest.raises(ValueError, match=r"unknown data source 'cifar'.*digits.*-rot-bg-img.*IDX.*\.npz"):
        data.load("cifar")


def test_file_that_is_neither_folder_nor_npz_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2\n")
    with pytest.raises(ValueError, match=r"x\.csv: a file but not an \.npz"):
        data.load(str(path))


def test_options_are_checked_before_loading(monkeypatch):
    monkeypatch.setattr(registry, "load_images", lambda s: pytest.fail("loaded"))
    with pytest.raises(ValueError, match="binarize must be one of"):
        data.load("digits", binarize="otsu")
    with pytest.raises(ValueError, match="validation must be a fraction"):
        data.load("digits", validation=1.0)


def test_split_and_binarization_apply_to_any_source(idx_folder, toy_arrays):
    arrays = toy_arrays(n_train=20)
    ds = data.load(str(idx_folder(arrays)), validation=0.25, binarize="threshold", seed=3)
    assert (ds.x_train.shape[0], ds.x_valid.shape[0]) == (15, 5)
    assert set(ds.x_train.unique().tolist()) <= {0.0, 1.0}


def test_digits_keeps_its_split():
    ds = data.load("digits")
    assert (ds.x_train.shape, ds.x_test.shape, ds.image_shape) == ((1348, 64), (449, 64), (8, 8))
    assert float(ds.x_train.max()) == 1.0


def test_second_load_comes_from_the_cache(idx_folder, monkeypatch, tmp_path):
    folder = idx_folder()
    first = data.load(str(folder))
    assert any((tmp_path / "cache" / "data").iterdir())
    monkeypatch.setattr(idx, "read_idx", lambda p: pytest.fail("decoded again"))
    second = data.load(str(folder))
    assert all(np.array_equal(getattr(first, k).numpy(), getattr(second, k).numpy())
               for k in ("x_train", "y_train", "x_test", "y_test"))
    assert second.name == first.name and second.source == first.source


def test_changed_files_are_decoded_again(idx_folder, toy_arrays):
    folder = idx_folder(toy_arrays(seed=0))
    before = data.load(str(folder)).x_train
    idx_folder(toy_arrays(seed=1), folder)
    assert not np.array_equal(data.load(str(folder)).x_train.numpy(), before.numpy())


def test_generated_sources_are_cached_by_parameters(monkeypatch):
    monkeypatch.setitem(registry.SOURCES, "rectangles", registry.Source(
        "rectangles", "synthetic", "", lambda: data.synthetic.generate("rectangles", 5, 5), lambda: "small"))
    a = data.load("rectangles-rot")
    monkeypatch.setattr(registry, "vary", lambda *a, **k: pytest.fail("generated again"))
    assert np.array_equal(data.load("rectangles-rot").x_test.numpy(), a.x_test.numpy())


def test_unwritable_cache_still_loads(idx_folder, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NEURALSMITH_CACHE", str(blocker))
    with caplog.at_level(logging.WARNING, logger="neuralsmith.data.cache"):
        assert data.load(str(idx_folder())).x_train.shape == (6, 12)
    assert "could not cache" in caplog.text


def test_corrupt_cache_entry_is_rebuilt(idx_folder, tmp_path):
    folder = idx_folder()
    expected = data.load(str(folder)).x_test.numpy()
    for npy in (tmp_path / "cache").rglob("x_test.npy"):
        npy.write_bytes(b"garbage")
    assert np.array_equal(data.load(str(folder)).x_test.numpy(), expected)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURALSMITH_CACHE", str(tmp_path / "c"))
    assert cache.cache_root() == tmp_path / "c"
    monkeypatch.delenv("NEURALSMITH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache.cache_root() == tmp_path / "x" / "neuralsmith"


def test_npz_is_not_cached(tmp_path):
    x = np.zeros((2, 4), np.uint8)
    np.savez(tmp_path / "s.npz", x_train=x, y_train=[0, 1], x_test=x, y_test=[0, 1])
    assert resolve(str(tmp_path / "s.npz"))[1] is None
