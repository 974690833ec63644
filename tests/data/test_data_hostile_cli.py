"""The hostile files of ``test_data_hostile`` through the command line: one line on stderr,
exit 2, no traceback, no run folder and nothing in the cache left behind."""

import json
import struct

import numpy as np
import pytest

from neuralsmith.data.idx import IDX_STEMS

from test_data_hostile import HOSTILE_MEMBERS, cache_files, good_members, write_npz


def refused(result, *words):
    code, _, err = result
    assert code == 2 and err.count("\n") == 1 and err.startswith("neuralsmith: error: "), err
    assert "Traceback" not in err and all(w in err for w in words), err


@pytest.mark.parametrize("case", HOSTILE_MEMBERS)
def test_hostile_npz_through_the_cli(cli, tmp_path, case):
    blob, _ = HOSTILE_MEMBERS[case]
    path = write_npz(tmp_path / "h.npz", {**good_members(), "y_train": blob})
    refused(cli("data", "info", path), f"{path} [y_train]")
    refused(cli("pretrain", "rbm", "--data", path, "--hidden", "4", "--out", tmp_path / "run"), "[y_train]")
    assert not (tmp_path / "run").exists() and not cache_files(tmp_path, "*.npy")


def test_idx_header_declaring_2_31_images_through_the_cli(cli, tmp_path, idx_folder):
    folder = idx_folder(gz=(False, False, False, False))
    images = folder / IDX_STEMS["x_train"]
    raw = images.read_bytes()
    images.write_bytes(raw[:4] + struct.pack(">I", 2**31) + raw[8:])  # the count a bomb declares
    refused(cli("data", "info", folder), images.name)
    refused(cli("finetune", "--arch", "8", "--data", folder, "--out", tmp_path / "ft"), images.name)
    assert not (tmp_path / "ft").exists() and not cache_files(tmp_path, "*.npy")


def test_a_tampered_cache_is_rebuilt_under_the_cli(cli, tmp_path, idx_folder):
    folder = idx_folder()
    code, out, _ = cli("data", "info", folder, "--json")
    classes = json.loads(out)["n_classes"]
    [npy] = cache_files(tmp_path, "y_train.npy")
    y = np.load(npy)
    y[0] = 200
    np.save(npy, y)
    code, out, err = cli("data", "info", folder, "--json")
    assert code == 0 and json.loads(out)["n_classes"] == classes, err
    assert np.load(npy).max() < classes
