"""Hostile input (issue 17): headers are checked against limits before any payload is read,
the cache is verified, and every refusal is a one-line ValueError naming the file."""

import io
import logging
import re
import runpy
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from neuralsmith import data
from neuralsmith import limits
from neuralsmith.data.idx import read_idx, read_idx_folder
from neuralsmith.data.npz import read_npz

BENCH = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" / "hostile_idx.py"))


def measured(fn):
    """Run ``fn``; return (its ValueError, seconds, tracemalloc peak bytes)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError) as info:
            fn()
    finally:
        seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return info.value, seconds, peak


def test_two_megabyte_gzip_declaring_2_31_images_is_refused_fast_and_small(tmp_path):
    folder = BENCH["hostile_folder"](tmp_path / "bomb")
    assert 1.5e6 < (folder / "train-images-idx3-ubyte.gz").stat().st_size < 2.5e6
    exc, seconds, peak = measured(lambda: data.load(str(folder)))
    assert "4 labels for 2147483648 images" in str(exc) and "\n" not in str(exc)
    assert seconds < 1.0 and peak < 200e6, (seconds, peak)
    assert not (tmp_path / "cache" / "data").exists() or not any((tmp_path / "cache" / "data").iterdir())


def test_matching_bombs_are_refused_by_the_memory_limit(tmp_path, monkeypatch):
    folder = BENCH["hostile_folder"](tmp_path / "bomb", n_images=2**28, bomb_labels=True)
    monkeypatch.setenv("NEURALSMITH_MAX_BYTES", "1G")
    exc, seconds, peak = measured(lambda: data.load(str(folder)))
    assert str(folder) in str(exc) and "NEURALSMITH_MAX_BYTES=1G" in str(exc)
    assert seconds < 1.0 and peak < 8e6
    assert not any((tmp_path / "cache").rglob("*.npy"))


def test_the_keyword_overrides_the_environment(tmp_path, monkeypatch):
    path = data.write_idx(tmp_path / "x.gz", np.zeros((100, 10), np.uint8))
    monkeypatch.setenv("NEURALSMITH_MAX_BYTES", "10")
    with pytest.raises(ValueError, match=rf"{path}: the array \(100, 10\) would need 1.0 kB, more than "
                                         r"NEURALSMITH_MAX_BYTES=10 .*raise the limit"):
        read_idx(path)
    assert read_idx(path, max_bytes=1000).shape == (100, 10)
    with pytest.raises(ValueError, match="max_bytes=999"):
        read_idx(path, max_bytes=999)


@pytest.mark.parametrize("value", ["", "lots", "-5", "0", "1.5G"])
def test_a_bad_limit_is_refused_by_name(monkeypatch, value, tmp_path):
    monkeypatch.setenv("NEURALSMITH_MAX_BYTES", value)
    if not value:  # empty means unset: the available memory
        assert limits.memory_limit()[1] == "the available memory"
        return
    with pytest.raises(ValueError, match="NEURALSMITH_MAX_BYTES=.*expected a positive number of bytes"):
        data.load("digits")


def test_default_limit_is_the_available_memory(monkeypatch):
    monkeypatch.delenv("NEURALSMITH_MAX_BYTES", raising=False)
    limit, origin = limits.memory_limit()
    assert origin == "the available memory" and 0 < limit
    assert limits.parse_bytes("512MiB", "x") == 512 << 20


def test_big_sparse_raw_file_with_a_bad_magic_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    with open(path, "wb") as f:
        f.write(b"\x08\x03\x00\x01")
        f.truncate(3 << 30)  # sparse: 3 GiB declared on disk, nothing written
    exc, seconds, peak = measured(lambda: read_idx(path))
    assert "not an IDX file" in str(exc) and seconds < 1.0 and peak < 1e6


def test_gzip_whose_trailer_disagrees_with_its_header_is_refused_before_inflating(tmp_path):
    path = tmp_path / "x.gz"
    blob = bytearray(BENCH["gzip_of_zeros"](BENCH["idx_head"]((2**24,)), 2**24))
    blob[-4:] = struct.pack("<I", 12)
    path.write_bytes(bytes(blob))
    exc, seconds, peak = measured(lambda: read_idx(path))
    assert "gzip trailer records 12" in str(exc) and peak < 1e6


def test_images_of_different_sizes_are_refused_from_the_headers(idx_folder, toy_arrays, monkeypatch):
    arrays = toy_arrays()
    arrays["x_test"] = np.zeros((4, 5, 5), np.uint8)
    folder = idx_folder(arrays)
    monkeypatch.setattr("neuralsmith.data.idx.read_payload", lambda h: pytest.fail("payload read"))
    with pytest.raises(ValueError, match=r"t10k-images.*\(5, 5\).*\(4, 3\)"):
        read_idx_folder(folder)


# --- .npz members ---

def npy_bytes(array=None, header=None, version=(1, 0)):
    """An npy stream: ``array`` as np.save writes it, or a bare ``header`` dict."""
    buf = io.BytesIO()
    if header is None:
        np.save(buf, array, allow_pickle=True)
    else:
        getattr(npy_format, f"write_array_header_{version[0]}_0")(buf, header)
    return buf.getvalue()


def good_members():
    x = np.arange(16, dtype=np.uint8).reshape(2, 2, 4)
    return {"x_train": x, "y_train": np.array([0, 1]), "x_test": x, "y_test": np.array([1, 0])}


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for key, value in members.items():
            z.writestr(f"{key}.npy", value if isinstance(value, bytes) else npy_bytes(value))
    return path


HOSTILE_MEMBERS = {
    "64 TiB declared": (npy_bytes(header={"descr": "|u1", "fortran_order": False,
                                          "shape": (2**46,)}), r"header declares \(70368744177664,\)"),
    "not npy": (b"PK\x03\x04 this is no npy data", "not an npy array"),
    "pickled objects": (npy_bytes(np.array([0, None], dtype=object)), "holds dtype object"),
    "strings": (npy_bytes(np.array(["a", "b"])), "holds dtype <U1"),
    "float labels": (npy_bytes(np.array([0.0, 1.0])), "y_train must be 1-D integer labels"),
    "truncated": (npy_bytes(np.array([0, 1]))[:-3], "the file is truncated or corrupt"),
    "version 3": (npy_bytes(header={"descr": "<i8", "fortran_order": False, "shape": (2,)},
                            version=(2, 0)).replace(b"\x02\x00", b"\x03\x00", 1) + bytes(16),
                  "npy format version 3.0 is not supported"),
}


@pytest.mark.parametrize("case", HOSTILE_MEMBERS)
def test_hostile_npz_member_is_refused_naming_file_and_member(tmp_path, case):
    blob, message = HOSTILE_MEMBERS[case]
    path = write_npz(tmp_path / "h.npz", {**good_members(), "y_train": blob})
    exc, seconds, peak = measured(lambda: data.load(str(path)))
    assert f"{path} [y_train]" in str(exc) and re.search(message, str(exc))
    assert seconds < 1.0 and peak < 8e6 and "\n" not in str(exc)


def test_npz_members_stored_big_endian_fortran_and_compressed_load_exactly(tmp_path):
    members = good_members()
    members["x_train"] = np.asfortranarray(np.linspace(0, 1, 24).reshape(2, 3, 4).astype(">f4"))
    members["x_test"] = members["x_train"][::-1].copy()
    members["y_train"] = np.array([3, 1], ">i2")
    path = write_npz(tmp_path / "e.npz", members, zipfile.ZIP_DEFLATED)
    images = data.load_images(str(path))
    assert np.array_equal(images.x_train, members["x_train"]) and images.x_train.dtype.isnative
    assert images.y_train.tolist() == [3, 1] and images.n_classes == 4


def test_npz_beyond_the_limit_is_refused_before_reading(tmp_path):
    path = write_npz(tmp_path / "s.npz", good_members())
    with pytest.raises(ValueError, match=rf"{path}: the four arrays would need .* max_bytes=10"):
        read_npz(path, max_bytes=10)


# --- the cache ---

def cache_files(tmp_path, name):
    return list((tmp_path / "cache").rglob(name))


def test_cached_labels_altered_beyond_the_classes_are_rebuilt_with_one_warning(idx_folder, tmp_path, caplog):
    folder = idx_folder()
    expected = data.load(str(folder))
    [npy] = cache_files(tmp_path, "y_train.npy")
    y = np.load(npy)
    y[0] = 200
    np.save(npy, y)
    with caplog.at_level(logging.WARNING, logger="neuralsmith.data.cache"):
        again = data.load(str(folder))
    assert again.n_classes == expected.n_classes and int(again.y_train.max()) < again.n_classes
    assert np.array_equal(again.y_train.numpy(), expected.y_train.numpy())
    [record] = caplog.records
    assert "y_train.npy" in record.getMessage() and "rebuilding it from the source" in record.getMessage()
    assert np.load(npy).max() < again.n_classes  # the entry was rewritten


def test_cached_pixels_altered_in_place_fail_the_checksum(idx_folder, tmp_path, caplog):
    folder = idx_folder()
    expected = data.load(str(folder)).x_train.numpy()
    [npy] = cache_files(tmp_path, "x_train.npy")
    blob = bytearray(npy.read_bytes())
    blob[-1] ^= 0xFF
    npy.write_bytes(bytes(blob))
    with caplog.at_level(logging.WARNING, logger="neuralsmith.data.cache"):
        assert np.array_equal(data.load(str(folder)).x_train.numpy(), expected)
    assert "does not match its recorded SHA-256" in caplog.text


def test_cached_array_declaring_a_huge_shape_is_rebuilt_cheaply(idx_folder, tmp_path):
    folder = idx_folder()
    expected = data.load(str(folder)).x_test.numpy()
    [npy] = cache_files(tmp_path, "x_test.npy")
    npy.write_bytes(npy_bytes(header={"descr": "|u1", "fortran_order": False, "shape": (2**46, 1, 1)}))
    tracemalloc.start()
    again = data.load(str(folder)).x_test.numpy()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(again, expected) and peak < 8e6


def test_a_refused_rebuild_leaves_nothing_in_the_cache(idx_folder, tmp_path):
    folder = idx_folder()
    data.load(str(folder))
    [npy] = cache_files(tmp_path, "x_train.npy")
    npy.write_bytes(b"damaged")
    with pytest.raises(ValueError, match="would need .* max_bytes=10"):
        data.load(str(folder), max_bytes=10)
    assert not cache_files(tmp_path, "*.*")


def test_a_bad_source_never_creates_a_cache_entry(idx_folder, toy_arrays, tmp_path):
    arrays = toy_arrays()
    arrays["y_test"] = arrays["y_test"][:-1]
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        data.load(str(idx_folder(arrays)))
    assert not cache_files(tmp_path, "*")
