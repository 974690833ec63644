"""`neuralsmith rnn` and `neuralsmith linear-depth`."""

from __future__ import annotations

import json

import pytest

from neuralsmith import experiments
from neuralsmith.experiments import linear_depth as ld_experiment
from neuralsmith.experiments import rnn as rnn_experiment

TINY = ("--length", "5", "--hidden", "8", "--steps", "4", "--n-train", "32", "--n-test", "8", "--device", "cpu")


def test_rnn_adding_json_and_run_folder(cli, tmp_path):
    code, out, _ = cli("rnn", "--task", "adding", *TINY, "--init", "identity", "--init-std", "0.001",
                       "--constraint", "hard", "--out", tmp_path / "run", "--json")
    result = json.loads(out)
    assert code == 0 and result["metric"] == "test_mse" and result["steps"] == 4
    assert result["distance_to_identity"] <= 0.1 + 1e-5
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test_mse"] == result["test_mse"]
    assert (tmp_path / "run" / "figures" / "learning_curve.png").is_file()


def test_rnn_digits_rows_table(cli, tmp_path):
    code, out, _ = cli("rnn", "--task", "digits", "--reading", "row", "--hidden", "8", "--steps", "10",
                       "--cell", "tanh", "--init", "orthogonal", "--optimizer", "adam", "--device", "cpu",
                       "--out", tmp_path)
    assert code == 0 and "test_error" in out and "sequence_steps" in out and "figure:" in out


def test_rnn_quiet_prints_nothing(cli, tmp_path):
    code, out, _ = cli("rnn", *TINY, "--constraint", "soft", "--clip", "0", "--quiet", "--out", tmp_path)
    assert code == 0 and out == ""
    assert "clip" not in (tmp_path / "config.toml").read_text()  # no clipping: left out of the TOML
    assert experiments.read_run(tmp_path)[1].clip is None  # and read back as None


def test_rnn_normal_without_std_takes_the_schemes_std(cli):
    code, out, err = cli("rnn", *TINY, "--init", "normal", "--json")
    assert code == 0, err
    assert json.loads(out)["init_options"] == {"std": 0.01}


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def rnn_run(cli, tmp_path):
    out = tmp_path / "run ü"  # a space and a non-ASCII character
    code, _, err = cli("rnn", *TINY, "--quiet", "--out", out)
    assert code == 0, err
    return out


def test_rnn_rerun_without_flags_is_refused(cli, rnn_run):
    before = _snapshot(rnn_run)
    code, _, err = cli("rnn", *TINY, "--quiet", "--out", rnn_run)
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    assert _snapshot(rnn_run) == before


def test_rnn_mismatched_resume_is_refused_and_changes_nothing(cli, rnn_run):
    before = _snapshot(rnn_run)
    code, _, err = cli("rnn", *TINY, "--quiet", "--lr", "0.5", "--init", "orthogonal", "--out", rnn_run, "--resume")
    assert code == 2 and err.count("\n") == 1 and "other settings (init, lr)" in err
    assert _snapshot(rnn_run) == before


def test_rnn_resume_same_settings_other_device_and_overwrite(cli, rnn_run):
    saved = json.loads((rnn_run / "results.json").read_text())
    code, out, err = cli("rnn", *TINY[:-1], "auto", "--out", rnn_run, "--resume", "--json")
    assert code == 0, err
    assert json.loads(out)["test_mse"] == pytest.approx(saved["test_mse"], rel=1e-5)  # auto: maybe a GPU
    code, out, err = cli("rnn", *TINY, "--seed", "1", "--out", rnn_run, "--overwrite", "--json")
    assert code == 0, err
    assert json.loads((rnn_run / "results.json").read_text())["seed"] == 1


def test_rnn_resume_without_out_is_one_line(cli):
    code, _, err = cli("rnn", *TINY, "--resume")
    assert code == 2 and "--out" in err and err.count("\n") == 1


@pytest.mark.parametrize("command, module", [("rnn", rnn_experiment), ("linear-depth", ld_experiment)])
def test_cli_defaults_are_the_api_defaults(cli, monkeypatch, command, module):
    seen = []
    monkeypatch.setattr(module, "run", lambda config, out, **kw: seen.append((config, out, kw)) or {
        "records": [], "depth_ratio": {}})
    code, _, err = cli(command, "--quiet")
    assert code == 0, err
    assert seen == [(module.Config(), None, {"mode": "new", "progress": False, "tensorboard": None})]


def test_rnn_bad_cell_is_one_line(cli):
    code, _, err = cli("rnn", *TINY, "--cell", "gru")
    assert code == 2 and "cell must be one of relu, tanh" in err


def test_rnn_unknown_task_is_one_line(cli):
    code, _, err = cli("rnn", *TINY, "--task", "copying")
    assert code == 2 and "'adding' or a data source" in err


def test_rnn_bad_constraint_is_one_line(cli):
    code, _, err = cli("rnn", *TINY, "--constraint", "strict")
    assert code == 2 and "constraint must be one of none, hard, soft" in err


def test_rnn_too_short_is_one_line(cli):
    code, _, err = cli("rnn", *TINY[2:], "--length", "1")
    assert code == 2 and "length" in err and err.count("\n") == 1


LD = ("--depths", "2,3", "--inits", "orthogonal,pretrained,normal", "--width", "4", "--n-train", "64",
      "--max-epochs", "30", "--thresholds", "0.1")


def test_linear_depth_json_and_run_folder(cli, tmp_path):
    code, out, _ = cli("linear-depth", *LD, "--out", tmp_path, "--json")
    result = json.loads(out)
    assert code == 0 and len(result["records"]) == 6 and set(result["depth_ratio"]["0.1"]) == {
        "orthogonal", "pretrained", "normal"}
    assert (tmp_path / "figures" / "learning_time.png").is_file() and (tmp_path / "results.json").is_file()


def test_linear_depth_table(cli, tmp_path):
    code, out, _ = cli("linear-depth", *LD, "--out", tmp_path)
    assert code == 0 and "epochs to 0.1" in out and "deepest / shallowest" in out


def test_linear_depth_rerun_and_mismatched_resume_are_refused(cli, tmp_path):
    code, _, err = cli("linear-depth", *LD, "--device", "cpu", "--quiet", "--out", tmp_path)
    assert code == 0, err
    before = _snapshot(tmp_path)
    code, _, err = cli("linear-depth", *LD, "--quiet", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    code, _, err = cli("linear-depth", *LD, "--width", "5", "--quiet", "--out", tmp_path, "--resume")
    assert code == 2 and err.count("\n") == 1 and "other settings (width)" in err
    assert _snapshot(tmp_path) == before
    code, out, err = cli("linear-depth", *LD, "--out", tmp_path, "--resume", "--json")
    assert code == 0, err
    assert json.loads(out)["records"] == json.loads((tmp_path / "results.json").read_text())["records"]


def test_linear_depth_bad_depths_is_one_line(cli):
    code, _, err = cli("linear-depth", "--depths", "2,x")
    assert code == 2 and "--depths takes comma-separated int values" in err and err.count("\n") == 1


def test_linear_depth_unknown_start_is_one_line(cli):
    code, _, err = cli("linear-depth", "--inits", "orthogonal,greedy")
    assert code == 2 and "unknown start 'greedy'" in err
