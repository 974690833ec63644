import json
import math

import pytest

from neuralsmith.runfolder import RunFolder, atomic_write_text, dumps_toml, load_toml, read_json, write_json


def test_toml_round_trip(tmp_path):
    config = {"seed": 3, "lr": 0.05, "name": 'a "quoted" name', "flag": True, "sizes": [1, 2],
              "rbm": {"k": 1, "method": "pcd"}}
    (tmp_path / "c.toml").write_text(dumps_toml(config))
    assert load_toml(tmp_path / "c.toml") == config


def test_bad_toml_names_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("x = = 1")
    with pytest.raises(ValueError, match="bad.toml"):
        load_toml(path)


def test_missing_json_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_json(tmp_path / "nope.json")


def test_json_non_finite_becomes_null(tmp_path):
    write_json(tmp_path / "r.json", {"loss": math.nan, "ok": 1.5})
    assert json.loads((tmp_path / "r.json").read_text()) == {"loss": None, "ok": 1.5}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "two"


def test_run_folder_layout(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.write_config({"seed": 1})
    run.write_results({"test_error": 2.5}, seed=1)
    run.log_metrics({"epoch": 1, "loss": 0.7})
    run.log_metrics({"epoch": 2, "loss": 0.6})
    results = read_json(run.path / "results.json")
    assert results["seed"] == 1 and "torch" in results["versions"]
    assert [r["loss"] for r in run.read_metrics()] == ["0.7", "0.6"]
    assert run.checkpoints.is_dir() and run.figures.is_dir()
