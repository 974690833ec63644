"""`neuralsmith rnn` and `neuralsmith linear-depth`."""

from __future__ import annotations

import json

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
    assert "clip = \"\"" in (tmp_path / "config.toml").read_text()  # no clipping recorded as empty


def test_rnn_normal_without_std_is_one_line(cli):
    code, _, err = cli("rnn", *TINY, "--init", "normal")
    assert code == 2 and "--init-std" in err and err.count("\n") == 1


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


def test_linear_depth_bad_depths_is_one_line(cli):
    code, _, err = cli("linear-depth", "--depths", "2,x")
    assert code == 2 and "2,4,8" in err and err.count("\n") == 1


def test_linear_depth_unknown_start_is_one_line(cli):
    code, _, err = cli("linear-depth", "--inits", "orthogonal,greedy")
    assert code == 2 and "unknown start 'greedy'" in err
