import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from neuralsmith import data
from neuralsmith.data import sources
from neuralsmith.data.sources import REMOTE_SETS, find_local

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
HAVE_DEBIAN = all((DEBIAN / f"{s}.gz").is_file() for s in
                  ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


def test_every_named_set_has_four_sums_and_sizes():
    for remote in REMOTE_SETS.values():
        assert len(remote.files) == 4 and remote.urls
        for f in remote.files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0


def test_missing_set_says_how_to_get_it(no_system_data):
    with pytest.raises(FileNotFoundError) as err:
        data.load("fashion-mnist")
    message = str(err.value)
    assert "neuralsmith data fetch fashion-mnist" in message
    assert "apt-get install dataset-fashion-mnist" in message and "NEURALSMITH_DATA" in message


def test_missing_mnist_does_not_suggest_the_fashion_package():
    with pytest.raises(FileNotFoundError, match="neuralsmith data fetch mnist") as err:
        data.load("mnist")
    assert "apt-get" not in str(err.value)


def test_neuralsmith_data_is_searched_first(idx_folder, toy_arrays, monkeypatch, tmp_path):
    idx_folder(toy_arrays(), tmp_path / "share" / "neuralsmith" / "kmnist")
    mine = idx_folder(toy_arrays(seed=1), tmp_path / "root" / "kmnist")
    monkeypatch.setenv("NEURALSMITH_DATA", str(tmp_path / "root"))
    assert find_local("kmnist") == mine
    ds = data.load("kmnist")
    assert ds.name == "kmnist" and ds.n_classes == 10 and ds.source == str(mine)


def test_user_data_folder_is_searched(idx_folder, toy_arrays, tmp_path, no_system_data):
    folder = idx_folder(toy_arrays(), tmp_path / "share" / "neuralsmith" / "fashion-mnist")
    assert find_local("fashion-mnist") == folder


@pytest.mark.skipif(not HAVE_DEBIAN, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_info_from_the_debian_package(cli):
    code, out, _ = cli("data", "info", "fashion-mnist", "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["n_train"], info["n_test"], info["n_features"], info["n_classes"]) == (60000, 10000, 784, 10)
    assert info["name"] == "fashion-mnist" and info["image_shape"] == [28, 28] and info["source"]


@pytest.mark.skipif(not HAVE_DEBIAN, reason="Debian's dataset-fashion-mnist is not installed")
def test_pinned_fashion_mnist_sums_match_debian_files_with_their_original_gzip_header():
    """Debian strips the file name from the gzip header and resets its mtime; put back the
    upstream header (FNAME flag, 2017 mtime) and the bytes hash to the published SHA-256."""
    mtimes = {"train": 1504176606, "t10k": 1504176627}
    for f in REMOTE_SETS["fashion-mnist"].files:
        body = (DEBIAN / f.name).read_bytes()
        assert body[3] == 0  # no FNAME in Debian's header
        header = b"\x1f\x8b\x08\x08" + struct.pack("<I", mtimes[f.name.split("-")[0]]) + body[8:10]
        upstream = header + f.name.removesuffix(".gz").encode() + b"\x00" + body[10:]
        assert len(upstream) == f.size and hashlib.sha256(upstream).hexdigest() == f.sha256
        assert gzip.decompress(upstream) == gzip.decompress(body)


@pytest.mark.skipif(not HAVE_DEBIAN, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_pixels_match_the_files(no_system_data, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": DEBIAN})
    ds = data.load("fashion-mnist")
    raw = np.frombuffer(gzip.decompress((DEBIAN / "t10k-images-idx3-ubyte.gz").read_bytes())[16:], np.uint8)
    assert np.array_equal((ds.x_test.numpy() * 255).round().astype(np.uint8).ravel(), raw)
    labels = np.frombuffer(gzip.decompress((DEBIAN / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:], np.uint8)
    assert np.array_equal(ds.y_test.numpy(), labels)
