"""The classrbm and hybrid commands: run folders, labeled fractions, resume, one-line errors."""

import json

import pytest

from neuralsmith.runfolder import load_toml, read_json


def test_classrbm_writes_a_classifier_run_folder(cli, tmp_path):
    code, out, err = cli("classrbm", "--data", "digits", "--objective", "hybrid", "--alpha", "0.1",
                         "--hidden", "16", "--epochs", "2", "--schedule", "linear", "--seed", "3",
                         "--out", tmp_path, "--json")
    assert code == 0, err
    summary = json.loads(out)
    results = read_json(tmp_path / "results.json")
    assert 0.0 <= results["test_error"] <= 100.0 and summary["test_error"] == results["test_error"]
    assert results["seed"] == 3 and results["weights"] == [1.0, 0.1, 0.0]
    config = load_toml(tmp_path / "config.toml")
    assert config["objective"] == "hybrid" and config["schedule"] == "linear"
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {"learning_curves.png", "filters.png"}
    assert (tmp_path / "checkpoints" / "model.safetensors").is_file()


def test_labeled_fraction_keeps_a_stratified_share(cli, tmp_path):
    code, _, err = cli("classrbm", "--data", "digits", "--objective", "semisupervised",
                       "--unsupervised", "entropy", "--unlabeled-ratio", "2",
                       "--labeled", "0.1", "--hidden", "8", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert code == 0, err
    config = load_toml(tmp_path / "config.toml")
    assert (config["unsupervised"], config["unlabeled_ratio"]) == ("entropy", 2)
    results = read_json(tmp_path / "results.json")
    n_train = results["data"]["n_train"]
    assert abs(results["n_labeled"] - 0.1 * n_train) <= 10
    assert results["n_labeled"] + results["n_unlabeled"] == n_train


def test_supervised_objective_ignores_the_unlabeled_rows(cli, tmp_path):
    code, _, err = cli("classrbm", "--data", "digits", "--objective", "discriminative",
                       "--labeled", "0.2", "--hidden", "8", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert read_json(tmp_path / "results.json")["weights"] == [1.0, 0.0, 0.0]


def test_resume_continues_an_interrupted_run(cli, tmp_path):
    args = ["classrbm", "--data", "digits", "--hidden", "8", "--out", tmp_path, "--quiet"]
    assert cli(*args, "--epochs", "1")[0] == 0
    assert cli(*args, "--epochs", "2", "--resume")[0] == 0
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]


@pytest.mark.parametrize("model", ["dhbm", "dhda"])
def test_hybrid_trains_a_two_layer_model_online(cli, tmp_path, model):
    code, out, err = cli("hybrid", "--model", model, "--layers", "16,12", "--data", "digits",
                         "--labeled", "0.2", "--seed", "1", "--out", tmp_path, "--json")
    assert code == 0, err
    results = read_json(tmp_path / "results.json")
    assert results["objective"] == "semisupervised" and results["epochs"] == 1
    assert len(results["expert_test_errors"]) == 2 and results["model"]["kind"] == model
    assert load_toml(tmp_path / "config.toml")["batching"] == "stream"


def test_unknown_objective_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("classrbm", "--objective", "adversarial", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "objective must be one of" in err


def test_unknown_unsupervised_term_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("hybrid", "--unsupervised", "pseudolabels", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "unsupervised must be one of likelihood, entropy" in err


def test_unknown_schedule_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("classrbm", "--schedule", "step", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "schedule must be one of constant, linear, cosine" in err


def test_labeled_fraction_of_zero_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("classrbm", "--labeled", "0", "--out", tmp_path)
    assert code == 2 and "labeled must be a fraction in (0, 1]" in err


def test_semisupervised_with_every_label_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("classrbm", "--objective", "semisupervised", "--hidden", "4", "--out", tmp_path)
    assert code == 2 and "needs unlabeled rows" in err


def test_bad_layer_sizes_are_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("hybrid", "--layers", "500,x", "--out", tmp_path)
    assert code == 2 and "comma-separated hidden sizes" in err


def test_unknown_hybrid_model_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("hybrid", "--model", "dbm", "--out", tmp_path)
    assert code == 2 and "--model must be one of dhbm, dhda" in err


def test_pcd_for_a_deep_model_is_refused(cli, tmp_path):
    from neuralsmith.hybrid_runs import HybridRunConfig
    with pytest.raises(ValueError, match="deep hybrid models learn by CD"):
        HybridRunConfig(model="dhbm", layers=(4, 4), method="pcd")
