import gzip
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neuralsmith import data
from neuralsmith.data.idx import read_idx, read_idx_folder, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_read_round_trip(tmp_path, dtype, suffix):
    x = (np.arange(60) - 30).astype(dtype).reshape(3, 4, 5)
    if dtype == np.uint8:
        x = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    back = read_idx(write_idx(tmp_path / f"x-idx3{suffix}", x))
    assert back.dtype == x.dtype and back.dtype.isnative and np.array_equal(back, x)


def test_gzip_is_detected_from_content_not_name(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"  # no .gz, but compressed
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])))
    assert read_idx(path).tolist() == [7, 9]


def test_folder_loads_pixels_and_labels_exactly(idx_folder, toy_arrays):
    arrays = toy_arrays()
    folder = idx_folder(arrays)
    ds = data.load(str(folder))
    assert ds.image_shape == (4, 3) and ds.n_features == 12 and ds.name == "toy"
    assert ds.x_train.dtype.is_floating_point and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    for split in ("train", "test"):
        pixels = (getattr(ds, f"x_{split}").numpy() * 255).round().astype(np.uint8)
        assert np.array_equal(pixels, arrays[f"x_{split}"].reshape(len(pixels), -1))
        assert np.array_equal(getattr(ds, f"y_{split}").numpy(), arrays[f"y_{split}"])
    assert ds.n_classes == int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    assert ds.source == str(folder)


def test_folder_of_raw_files_equals_folder_of_gzip_files(idx_folder, toy_arrays, tmp_path):
    a = read_idx_folder(idx_folder(toy_arrays(), tmp_path / "a", gz=(True,) * 4))
    b = read_idx_folder(idx_folder(toy_arrays(), tmp_path / "b", gz=(False,) * 4))
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("x_train", "y_train", "x_test", "y_test"))


# --- bad input: one named test per case, each a ValueError/FileNotFoundError naming the file ---

def _labels_file(tmp_path, payload: bytes, header=None):
    header = header if header is not None else bytes([0, 0, 8, 1]) + struct.pack(">I", 4)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(header + payload)
    return path


def test_truncated_idx_file_is_refused(tmp_path):
    path = _labels_file(tmp_path, b"\x01\x02")  # header says 4 labels
    with pytest.raises(ValueError, match=rf"{path}.*truncated"):
        read_idx(path)


def test_truncated_gzip_idx_file_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    whole = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 1, 0]) + bytes(range(256)))
    path.write_bytes(whole[: len(whole) - 12])
    with pytest.raises(ValueError, match=rf"{path}.*truncated"):
        read_idx(path)


def test_truncated_header_is_refused(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(path)


def test_wrong_magic_number_is_refused(tmp_path):
    path = _labels_file(tmp_path, b"\x01\x02\x03\x04", header=b"\x08\x03\x00\x01\x00\x00\x00\x04")
    with pytest.raises(ValueError, match=rf"{path}: not an IDX file \(magic number 08030001"):
        read_idx(path)


def test_trailing_bytes_are_refused(tmp_path):
    path = _labels_file(tmp_path, b"\x01\x02\x03\x04\x05")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(path)


def test_corrupt_gzip_data_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    blob = bytearray(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4])))
    blob[-8] ^= 0xFF  # break the CRC-32 in the trailer
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=rf"{path}: corrupt gzip data"):
        read_idx(path)


def test_declared_size_beyond_what_gzip_can_hold_is_refused_before_inflating(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 60000, 60000)))
    tracemalloc.start()
    with pytest.raises(ValueError, match="more than .* bytes of gzip can hold"):
        read_idx(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


def test_image_and_label_counts_that_disagree_are_refused(idx_folder, toy_arrays):
    arrays = toy_arrays()
    arrays["y_train"] = arrays["y_train"][:-1]
    folder = idx_folder(arrays)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*5 labels for 6 images"):
        data.load(str(folder))


def test_labels_out_of_range_are_refused(idx_folder, toy_arrays, monkeypatch, tmp_path):
    arrays = toy_arrays()
    arrays["y_test"][0] = 10  # mnist has classes 0..9
    idx_folder(arrays, tmp_path / "root" / "mnist")
    monkeypatch.setenv("NEURALSMITH_DATA", str(tmp_path / "root"))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*out of range.*0\.\.9"):
        data.load("mnist")


def test_images_that_are_not_three_dimensional_are_refused(idx_folder, toy_arrays):
    arrays = toy_arrays()
    arrays["x_test"] = arrays["x_test"].reshape(len(arrays["x_test"]), -1)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*\(n, rows, cols\)"):
        read_idx_folder(idx_folder(arrays))


def test_train_and_test_image_sizes_that_differ_are_refused(idx_folder, toy_arrays):
    arrays = toy_arrays()
    arrays["x_test"] = arrays["x_test"].reshape(len(arrays["x_test"]), 3, 4)
    with pytest.raises(ValueError, match=r"t10k-images.*\(3, 4\).*\(4, 3\)"):
        read_idx_folder(idx_folder(arrays))


def test_missing_file_in_folder_is_named(idx_folder):
    folder = idx_folder()
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte"):
        data.load(str(folder))


def test_folder_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-folder: no such file or folder"):
        data.load(str(tmp_path / "no-such-folder"))


def test_missing_idx_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such IDX file"):
        read_idx(tmp_path / "nothing-here")


# --- property-based: random and corrupted headers never crash, hang or allocate much ---

VALID = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + bytes(range(24))


def _read_must_be_safe(path):
    """read_idx either returns an array consistent with the file or raises ValueError."""
    tracemalloc.start()
    try:
        x = read_idx(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        x = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 8 << 20, f"read_idx allocated {peak} bytes for a {path.stat().st_size}-byte file"
    return x


settings.register_profile("idx", max_examples=75, deadline=2000,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(settings.get_profile("idx"))
@given(blob=st.binary(max_size=64), compress=st.booleans())
def test_random_bytes_never_crash_the_reader(tmp_path, blob, compress):
    path = tmp_path / "random"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    x = _read_must_be_safe(path)
    if x is not None:  # only a self-consistent file may load
        assert x.nbytes == len(blob) - 4 - 4 * x.ndim


@settings(settings.get_profile("idx"))
@given(edits=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.integers(0, len(VALID)), compress=st.booleans())
def test_corrupted_headers_never_crash_the_reader(tmp_path, edits, cut, compress):
    blob = bytearray(VALID)
    for position, value in edits:
        blob[position] = value
    blob = bytes(blob[: max(cut, 16)])
    path = tmp_path / "corrupt"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    x = _read_must_be_safe(path)
    if x is not None:
        assert x.nbytes == len(blob) - 4 - 4 * x.ndim


@settings(settings.get_profile("idx"))
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), code=st.sampled_from([8, 9, 11, 12, 13, 14]))
def test_huge_declared_sizes_are_refused_cheaply(tmp_path, dims, code):
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    for name, blob in (("raw", header + bytes(16)), ("gz", gzip.compress(header + bytes(16)))):
        path = tmp_path / name
        path.write_bytes(blob)
        _read_must_be_safe(path)
