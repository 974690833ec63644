import numpy as np
import pytest

from neuralsmith import data
from neuralsmith.data.npz import read_npz


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_uint8_images_load_exactly(tmp_path, toy_arrays):
    arrays = toy_arrays()
    path = _save(tmp_path / "set.npz", **arrays)
    ds = data.load(str(path))
    assert ds.image_shape == (4, 3) and ds.name == "set" and ds.source == str(path)
    for split in ("train", "test"):
        x = getattr(ds, f"x_{split}").numpy()
        assert np.array_equal((x * 255).round().astype(np.uint8), arrays[f"x_{split}"].reshape(len(x), -1))
        assert np.array_equal(getattr(ds, f"y_{split}").numpy(), arrays[f"y_{split}"])


def test_float_flat_images_load_exactly(tmp_path):
    rng = np.random.default_rng(1)
    x_train, x_test = rng.random((5, 16), dtype=np.float32), rng.random((3, 16), dtype=np.float32)
    path = _save(tmp_path / "f.npz", x_train=x_train, y_train=np.arange(5), x_test=x_test, y_test=np.arange(3))
    ds = data.load(str(path))
    assert ds.image_shape == (4, 4) and ds.n_classes == 5
    assert np.array_equal(ds.x_train.numpy(), x_train) and np.array_equal(ds.x_test.numpy(), x_test)


def test_non_square_flat_images_get_a_one_row_shape(tmp_path):
    x = np.zeros((2, 12), np.uint8)
    path = _save(tmp_path / "f.npz", x_train=x, y_train=[0, 1], x_test=x, y_test=[1, 0])
    assert data.load(str(path)).image_shape == (1, 12)


def test_bool_images_become_zero_and_one(tmp_path):
    x = np.array([[[True, False], [False, True]]])
    path = _save(tmp_path / "b.npz", x_train=x, y_train=[0], x_test=x, y_test=[0])
    assert data.load(str(path)).x_train.tolist() == [[1.0, 0.0, 0.0, 1.0]]


# --- bad input: one named test per case ---

def _good(**override):
    x = np.zeros((2, 2, 2), np.uint8)
    arrays = {"x_train": x, "y_train": np.array([0, 1]), "x_test": x, "y_test": np.array([1, 0])}
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


def test_npz_missing_a_key_is_refused(tmp_path):
    path = _save(tmp_path / "m.npz", **_good(y_test=None))
    with pytest.raises(ValueError, match=rf"{path}: missing y_test"):
        read_npz(path)


def test_nan_pixels_are_refused(tmp_path):
    x = np.zeros((2, 2, 2), np.float32)
    x[1, 0, 0] = np.nan
    path = _save(tmp_path / "n.npz", **_good(x_test=x))
    with pytest.raises(ValueError, match=rf"{path} \[x_test\]: pixels hold NaN"):
        read_npz(path)


def test_out_of_range_float_pixels_are_refused(tmp_path):
    path = _save(tmp_path / "r.npz", **_good(x_train=np.full((2, 4), 255.0)))
    with pytest.raises(ValueError, match=r"\[x_train\]: float pixels span \[255, 255\].*divide 0-255 values by 255"):
        read_npz(path)


def test_integer_pixels_other_than_uint8_are_refused(tmp_path):
    path = _save(tmp_path / "i.npz", **_good(x_train=np.zeros((2, 4), np.int64)))
    with pytest.raises(ValueError, match="dtype int64; store uint8"):
        read_npz(path)


def test_negative_labels_are_refused(tmp_path):
    path = _save(tmp_path / "l.npz", **_good(y_train=np.array([0, -1])))
    with pytest.raises(ValueError, match=r"\[y_train\]: y_train out of range"):
        read_npz(path)


def test_float_labels_are_refused(tmp_path):
    path = _save(tmp_path / "l.npz", **_good(y_train=np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match="integer labels"):
        read_npz(path)


def test_npz_counts_that_disagree_are_refused(tmp_path):
    path = _save(tmp_path / "c.npz", **_good(y_test=np.array([1, 0, 1])))
    with pytest.raises(ValueError, match="3 labels in y_test for 2 images"):
        read_npz(path)


def test_pickled_object_arrays_are_never_unpickled(tmp_path):
    path = _save(tmp_path / "p.npz", **_good(y_train=np.array([0, object()], dtype=object)))
    with pytest.raises(ValueError, match=rf"{path} \[y_train\]: holds dtype object.*pickle, which is never used"):
        read_npz(path)


def test_file_that_is_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=rf"{path}: not an .npz"):
        data.load(str(path))


def test_npy_instead_of_npz_is_refused(tmp_path):
    path = tmp_path / "one.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="holds one array"):
        read_npz(path)


def test_missing_npz_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz: no such file or folder"):
        data.load(str(tmp_path / "absent.npz"))
