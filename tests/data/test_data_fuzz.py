"""Property-based fuzzing of the readers (issue 17): generated IDX files, gzip streams and npz
members, valid, truncated, huge-declared or wrong-typed, either load exactly what was written
or raise a one-line ValueError naming the file, quickly and with little memory, and a refusal
leaves nothing in the cache."""

import gzip
import io
import struct
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from numpy.lib import format as npy_format

from neuralsmith import data
from neuralsmith.data.idx import IDX_STEMS, read_idx, write_idx
from neuralsmith.data.npz import NPZ_KEYS, read_npz

FUZZ = settings(max_examples=60, deadline=2000,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SECONDS, PEAK = 1.0, 8 << 20
IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def bounded(fn):
    """``fn()``'s result, or the ValueError it raised; asserts the time and memory bounds."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = fn()
    except ValueError as exc:
        assert "\n" not in str(exc)
        result = exc
    finally:
        seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < SECONDS and peak < PEAK, (seconds, peak)
    return result


small_arrays = st.builds(
    lambda dtype, shape, seed: (np.random.default_rng(seed).random(shape) * 100).astype(dtype),
    st.sampled_from(IDX_DTYPES), st.lists(st.integers(0, 6), min_size=1, max_size=4).map(tuple),
    st.integers(0, 2**16))


@FUZZ
@given(array=small_arrays, compress=st.booleans())
def test_written_idx_files_load_exactly(tmp_path, array, compress):
    path = write_idx(tmp_path / ("a.gz" if compress else "a"), array)
    back = bounded(lambda: read_idx(path))
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)


@FUZZ
@given(array=small_arrays, compress=st.booleans(), cut=st.integers(1, 10**6))
def test_truncated_idx_files_are_refused(tmp_path, array, compress, cut):
    path = write_idx(tmp_path / ("t.gz" if compress else "t"), array)
    blob = path.read_bytes()
    path.write_bytes(blob[: max(len(blob) - cut, 0)])
    exc = bounded(lambda: read_idx(path))
    assert isinstance(exc, ValueError) and str(path) in str(exc)


@FUZZ
@given(dims=st.lists(st.integers(2**20, 2**32 - 1), min_size=1, max_size=4),
       code=st.sampled_from([8, 9, 11, 12, 13, 14]), n_zeros=st.integers(0, 1 << 20),
       level=st.integers(1, 9))
def test_gzip_streams_declaring_huge_arrays_are_refused_unless_they_hold_them(tmp_path, dims, code, n_zeros, level):
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(header + bytes(n_zeros), compresslevel=level))
    result = bounded(lambda: read_idx(path, max_bytes=1 << 30))
    if isinstance(result, ValueError):
        assert str(path) in str(result)
    else:  # the stream really held the declared array
        assert result.nbytes == n_zeros and result.shape == tuple(dims) and not result.any()


# --- a folder with one hostile file: refused, and nothing in the cache ---

def hostile_blob(kind: str, good: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.bytes(int(rng.integers(0, 64)))
    if kind == "truncated":
        return good[: int(rng.integers(0, len(good)))]
    if kind == "huge":
        return good[:4] + struct.pack(">I", 2**31) + good[8:]
    return gzip.compress(good)[:-int(rng.integers(1, 12))]  # truncated gzip


@FUZZ
@given(which=st.sampled_from(list(IDX_STEMS)), seed=st.integers(0, 2**16),
       kind=st.sampled_from(["random", "truncated", "huge", "gzip"]))
def test_a_hostile_file_in_a_folder_leaves_nothing_in_the_cache(idx_folder, monkeypatch, which, seed, kind):
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setenv("NEURALSMITH_CACHE", str(Path(tmp) / "cache"))
        folder = idx_folder(folder=Path(tmp) / "set", gz=(False,) * 4)
        path = folder / IDX_STEMS[which]
        path.write_bytes(hostile_blob(kind, path.read_bytes(), seed))
        exc = bounded(lambda: data.load(str(folder)))
        assert isinstance(exc, ValueError) and str(folder) in str(exc)
        assert not (Path(tmp) / "cache").exists() or not any((Path(tmp) / "cache").rglob("*"))


# --- npz members ---

def member(kind: str, good: np.ndarray, seed: int) -> bytes:
    """One npy member: the good array, or a hostile stand-in of the given kind."""
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    if kind == "huge":
        npy_format.write_array_header_1_0(buf, {"descr": good.dtype.str, "fortran_order": False,
                                                "shape": (2**40,) + good.shape[1:]})
        return buf.getvalue() + good.tobytes()
    wrong = {"object": good.astype(object), "complex": good.astype(complex),
             "string": good.astype(str)}
    np.save(buf, wrong.get(kind, good), allow_pickle=True)
    blob = buf.getvalue()
    if kind == "random":
        return rng.bytes(int(rng.integers(0, 200)))
    if kind == "truncated":
        return blob[: int(rng.integers(0, len(blob)))]
    return blob


MEMBER_KINDS = ["good", "random", "truncated", "huge", "object", "complex", "string"]


@FUZZ
@given(kinds=st.lists(st.sampled_from(MEMBER_KINDS), min_size=4, max_size=4),
       n=st.integers(1, 5), side=st.integers(1, 4), seed=st.integers(0, 2**16),
       compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
@example(kinds=["good"] * 4, n=3, side=2, seed=0, compression=zipfile.ZIP_DEFLATED)
def test_npz_members_load_exactly_or_are_refused_by_name(tmp_path, kinds, n, side, seed, compression):
    rng = np.random.default_rng(seed)
    good = {"x_train": rng.integers(0, 256, (n, side, side), dtype=np.uint8),
            "y_train": rng.integers(0, 3, n), "x_test": rng.integers(0, 256, (n, side, side), dtype=np.uint8),
            "y_test": rng.integers(0, 3, n)}
    path = tmp_path / "f.npz"
    with zipfile.ZipFile(path, "w", compression) as z:
        for key, kind in zip(NPZ_KEYS, kinds):
            z.writestr(f"{key}.npy", member(kind, good[key], seed))
    result = bounded(lambda: read_npz(path))
    if isinstance(result, ValueError):
        assert str(path) in str(result)
        assert set(kinds) != {"good"}, result
    else:
        assert all(np.array_equal(getattr(result, k), good[k]) for k in NPZ_KEYS)
