import json

import numpy as np


def test_data_list_json(cli):
    code, out, _ = cli("data", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and {"digits", "fashion-mnist", "rectangles", "convex"} <= {r["name"] for r in rows}
    assert all(set(r) == {"name", "kind", "description", "available"} for r in rows)


def test_data_info_on_an_idx_folder(cli, idx_folder):
    code, out, _ = cli("data", "info", str(idx_folder()), "--json")
    info = json.loads(out)
    assert code == 0
    assert {k: info[k] for k in ("name", "n_train", "n_test", "n_features", "n_classes", "image_shape")} == {
        "name": "toy", "n_train": 6, "n_test": 4, "n_features": 12, "n_classes": 3, "image_shape": [4, 3]}


def test_data_info_on_an_npz(cli, tmp_path):
    x = np.zeros((3, 28, 28), np.uint8)
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=[0, 1, 2], x_test=x[:1], y_test=[2])
    code, out, _ = cli("data", "info", str(tmp_path / "mine.npz"), "--json")
    info = json.loads(out)
    assert code == 0 and (info["n_train"], info["n_test"], info["n_features"], info["n_classes"]) == (3, 1, 784, 3)
    assert info["source"] == str(tmp_path / "mine.npz")


def test_bad_file_is_one_line_naming_it_exit_2(cli, tmp_path, idx_folder):
    folder = idx_folder()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09\x01")
    code, out, err = cli("data", "info", str(folder))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "t10k-labels-idx1-ubyte: truncated" in err and "Traceback" not in err


def test_missing_folder_exit_2(cli, tmp_path):
    code, _, err = cli("data", "info", str(tmp_path / "nowhere"))
    assert code == 2 and "no such file or folder" in err


def test_missing_named_set_says_how_to_fetch_it(cli):
    code, _, err = cli("data", "info", "kmnist")
    assert code == 2 and "neuralsmith data fetch kmnist" in err and err.count("\n") == 1


def test_fetch_of_an_unknown_set_exit_2(cli):
    code, _, err = cli("data", "fetch", "cifar", "--quiet")
    assert code == 2 and "fetchable" in err


def test_data_info_of_a_variation(cli):
    code, out, _ = cli("data", "info", "digits-bg-rand", "--json")
    assert code == 0 and json.loads(out)["name"] == "digits-bg-rand"
