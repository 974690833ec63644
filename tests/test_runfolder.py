import json
import math
import os
import socket
import stat
import subprocess
import sys

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
    with RunFolder.open(tmp_path / "run", {"seed": 1}) as run:
        run.write_results({"test_error": 2.5}, seed=1)
        run.log_metrics({"epoch": 1, "loss": 0.7})
        run.log_metrics({"epoch": 2, "loss": 0.6})
    results = read_json(run.path / "results.json")
    assert results["seed"] == 1 and "torch" in results["versions"]
    assert [r["loss"] for r in run.read_metrics()] == ["0.7", "0.6"]
    assert run.checkpoints.is_dir() and run.figures.is_dir()
    assert not (run.path / ".lock").exists()


def test_a_bare_run_folder_creates_nothing(tmp_path):
    run = RunFolder(tmp_path / "typo")
    assert run.read_metrics() == [] and not run.path.exists()


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(tmp_path):
    config = {"seed": 0, "device": "cpu", "train": {"lr": 0.1, "epochs": 3}}
    with RunFolder.open(tmp_path / "run", config) as run:
        run.write_results({"loss": 1.0})
    return run.path, config


def test_new_refuses_a_folder_with_a_run(finished):
    path, config = finished
    before = _snapshot(path)
    with pytest.raises(ValueError, match="--resume.*--overwrite"):
        RunFolder.open(path, config)
    assert _snapshot(path) == before


def test_resume_names_the_differing_keys_and_writes_nothing(finished):
    path, config = finished
    before = _snapshot(path)
    other = {**config, "train": {"lr": 0.5, "epochs": 3}, "seed": 1}
    with pytest.raises(ValueError, match=r"other settings \(seed, train.lr\)"):
        RunFolder.open(path, other, mode="resume")
    assert _snapshot(path) == before


def test_resume_ignores_settings_that_cannot_change_a_result(finished):
    path, config = finished
    with RunFolder.open(path, {**config, "device": "cuda", "threads": 4}, mode="resume") as run:
        assert (run.path / "results.json").is_file()


def test_overwrite_starts_afresh(finished):
    path, config = finished
    with RunFolder.open(path, {**config, "seed": 5}, mode="overwrite") as run:
        assert not (path / "results.json").exists() and run.read_config()["seed"] == 5


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a run folder"):
        RunFolder.open(tmp_path, {"seed": 0}, mode="overwrite")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_out_naming_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        RunFolder.open(tmp_path / "f", {"seed": 0})


def test_a_live_lock_is_refused_naming_its_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".lock").write_text(f"{holder.pid} {socket.gethostname()}\n")
        with pytest.raises(ValueError, match=f"another process \\(PID {holder.pid}\\)"):
            RunFolder.open(tmp_path, {"seed": 0})
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_process_lock_is_taken_over(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / ".lock").write_text(f"{gone.pid} {socket.gethostname()}\n")
    with RunFolder.open(tmp_path, {"seed": 0}) as run:
        assert (run.path / ".lock").read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_two_writers_one_folder(tmp_path):
    first = RunFolder.open(tmp_path / "run", {"seed": 0})
    try:
        with pytest.raises(ValueError, match=f"PID {os.getpid()}"):
            RunFolder.open(tmp_path / "run", {"seed": 0}, mode="resume")
    finally:
        first.unlock()


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with RunFolder.open(tmp_path / "run", {"seed": 0}) as run:
            run.write_results({"x": 1})
            write_json(run.path / "other.json", {})
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.path.iterdir() if p.is_file()}
    finally:
        os.umask(old)
    assert modes == {"config.toml": 0o644, "results.json": 0o644, "other.json": 0o644}


def test_paths_and_values_round_trip(tmp_path):
    path = tmp_path / "my runs" / "été 1 ☃"
    config = {"data": str(tmp_path / 'a "dir" with spaces' / "d.npz"), "note": "tab\tand\nnewline",
              "sizes": (3, 4), "nested": {"path": "C:\\x", "skip": None}}
    with RunFolder.open(path, config) as run:
        pass
    assert run.read_config() == {"data": config["data"], "note": config["note"], "sizes": [3, 4],
                                 "nested": {"path": "C:\\x"}}
    with RunFolder.open(path, config, mode="resume"):
        pass
