"""``neuralsmith pretrain rbm`` and ``neuralsmith evaluate``: run folders end to end."""

import json

import pytest

from neuralsmith.runfolder import load_toml, read_json

SMALL = ("--data", "digits", "--hidden", "12", "--epochs", "2", "--batch-size", "50",
         "--binarize", "threshold", "--quiet")


@pytest.fixture
def trained_run(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("pretrain", "rbm", *SMALL, "--out", out)
    assert code == 0, err
    return out


def test_pretrain_writes_the_run_folder(trained_run):
    names = {p.relative_to(trained_run).as_posix() for p in trained_run.rglob("*")}
    assert {"config.toml", "results.json", "metrics.csv", "figures/filters.png",
            "figures/samples.png", "checkpoints/model.safetensors",
            "checkpoints/last.json"} <= names
    config = load_toml(trained_run / "config.toml")
    assert config["kind"] == "rbm" and config["hidden"] == 12
    assert (config["train"]["method"], config["train"]["k"]) == ("pcd", 1)
    results = read_json(trained_run / "results.json")
    assert results["epochs"] == 2 and results["seed"] == 0 and not results["diverged"]
    assert (trained_run / "metrics.csv").read_text().count("\n") == 3  # header + 2 epochs


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rerun_needs_resume_or_overwrite(cli, trained_run):
    before = _snapshot(trained_run)
    code, _, err = cli("pretrain", "rbm", *SMALL, "--out", trained_run)
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    assert _snapshot(trained_run) == before


def test_resume_with_other_settings_is_refused_and_changes_nothing(cli, trained_run):
    before = _snapshot(trained_run)
    code, _, err = cli("pretrain", "rbm", *SMALL[:5], "3", *SMALL[6:], "--lr", "0.5",
                       "--out", trained_run, "--resume")
    assert code == 2 and err.count("\n") == 1
    assert "other settings (train.epochs, train.lr)" in err
    assert _snapshot(trained_run) == before


def test_resume_with_the_same_settings_keeps_the_run(cli, trained_run):
    code, _, err = cli("pretrain", "rbm", *SMALL, "--out", trained_run, "--resume", "--device", "cpu")
    assert code == 0, err
    assert (trained_run / "metrics.csv").read_text().count("\n") == 3


def test_overwrite_starts_afresh(cli, trained_run):
    code, _, err = cli("pretrain", "rbm", *SMALL[:5], "1", *SMALL[6:], "--out", trained_run, "--overwrite")
    assert code == 0, err
    assert (trained_run / "metrics.csv").read_text().count("\n") == 2


def test_pretrain_json(cli, tmp_path):
    code, out, _ = cli("pretrain", "rbm", *SMALL, "--method", "cd", "--out", tmp_path / "r", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["epochs"] == 2 and "reconstruction_error" in summary


def test_evaluate_reports_exact_and_ais_log_likelihood(cli, trained_run):
    code, out, err = cli("evaluate", trained_run, "--ais", "--ais-steps", "300", "--json")
    result = json.loads(out)
    assert code == 0, err
    assert abs(result["ais_log_z"] - result["exact_log_z"]) < 0.5
    assert result["exact_test_log_likelihood"] < 0 and result["reconstruction_error"] > 0
    assert read_json(trained_run / "evaluation.json") == result


def test_evaluate_missing_run_is_a_one_line_error(cli, tmp_path):
    code, _, err = cli("evaluate", tmp_path / "nothing")
    assert code == 2 and err.count("\n") == 1 and "not a run folder" in err


def test_pretrain_bad_k_writes_nothing(cli, tmp_path):
    code, _, err = cli("pretrain", "rbm", *SMALL, "--k", "0", "--out", tmp_path / "bad")
    assert code == 2 and "k must be >= 1 (Gibbs steps per update); got 0" in err
    assert not (tmp_path / "bad").exists()


def test_pretrain_unknown_binarization(cli, tmp_path):
    code, _, err = cli("pretrain", "rbm", *SMALL, "--binarize", "otsu", "--out", tmp_path / "bad")
    assert code == 2 and "binarize must be one of none, threshold, stochastic" in err


def test_help_lists_pretrain_and_evaluate(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "pretrain" in out and "evaluate" in out


def test_gaussian_run_evaluates_without_likelihood(cli, tmp_path):
    out = tmp_path / "g"
    code, _, err = cli("pretrain", "rbm", "--hidden", "8", "--epochs", "1", "--visible", "gaussian",
                       "--lr", "0.01", "--quiet", "--out", out)
    assert code == 0, err
    code, text, _ = cli("evaluate", out, "--json")
    result = json.loads(text)
    assert code == 0 and "exact_log_z" not in result and "log_likelihood_note" in result
