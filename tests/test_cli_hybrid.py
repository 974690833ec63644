"""The classrbm and hybrid commands: run folders, labeled fractions, the run-folder policy,
resume after an interruption, evaluate, one-line errors."""

import csv
import io
import json

import pytest

from neuralsmith.experiments import hybrid as experiment
from neuralsmith.rbm.classrbm import ClassSettings
from neuralsmith.runfolder import RunFolder, load_toml, read_json

SMALL = {"classrbm": ("classrbm", "--data", "digits", "--hidden", "8", "--epochs", "2", "--quiet"),
         "dhbm": ("hybrid", "--model", "dhbm", "--arch", "8-6", "--data", "digits", "--labeled", "0.2",
                  "--epochs", "2", "--quiet")}


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(params=["classrbm", "dhbm"])
def trained(request, cli, tmp_path):
    """A finished small run of each command: (kind, its arguments, the run folder)."""
    out = tmp_path / "run"
    code, _, err = cli(*SMALL[request.param], "--out", out)
    assert code == 0, err
    return request.param, SMALL[request.param], out


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
    assert config["kind"] == "classrbm" and config["hidden"] == 16
    assert (config["train"]["objective"], config["train"]["schedule"]) == ("hybrid", "linear")
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {"learning_curves.png", "filters.png"}
    assert (tmp_path / "checkpoints" / "model.safetensors").is_file()


def test_labeled_fraction_keeps_a_stratified_share(cli, tmp_path):
    code, _, err = cli("classrbm", "--data", "digits", "--objective", "semisupervised",
                       "--unsupervised", "entropy", "--unlabeled-ratio", "2",
                       "--labeled", "0.1", "--hidden", "8", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert code == 0, err
    train = load_toml(tmp_path / "config.toml")["train"]
    assert (train["unsupervised"], train["unlabeled_ratio"]) == ("entropy", 2)
    results = read_json(tmp_path / "results.json")
    n_train = results["data"]["n_train"]
    assert abs(results["n_labeled"] - 0.1 * n_train) <= 10
    assert results["n_labeled"] + results["n_unlabeled"] == n_train


def test_supervised_objective_ignores_the_unlabeled_rows(cli, tmp_path):
    code, _, err = cli("classrbm", "--data", "digits", "--objective", "discriminative",
                       "--labeled", "0.2", "--hidden", "8", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert code == 0, err
    assert read_json(tmp_path / "results.json")["weights"] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("model", ["dhbm", "dhda"])
def test_hybrid_trains_a_two_layer_model_online(cli, tmp_path, model):
    code, out, err = cli("hybrid", "--model", model, "--arch", "16-12", "--data", "digits",
                         "--labeled", "0.2", "--seed", "1", "--out", tmp_path, "--json")
    assert code == 0, err
    results = read_json(tmp_path / "results.json")
    assert results["objective"] == "semisupervised" and results["epochs"] == 1
    assert len(results["expert_test_errors"]) == 2 and results["model"]["kind"] == model
    config = load_toml(tmp_path / "config.toml")
    assert (config["kind"], config["arch"], config["train"]["batching"]) == (model, [16, 12], "stream")
    assert json.loads(out)["expert_test_errors"] == results["expert_test_errors"]
    code, text, err = cli("evaluate", tmp_path, "--json")
    assert code == 0, err
    evaluation = json.loads(text)
    assert evaluation["kind"] == model and evaluation["test_error"] == pytest.approx(results["test_error"])
    assert evaluation["expert_test_errors"] == pytest.approx(results["expert_test_errors"])


# --- evaluate ----------------------------------------------------------------------------------

def test_evaluate_scores_the_run_on_its_own_test_set(cli, trained):
    kind, _, out = trained
    code, text, err = cli("evaluate", out, "--json")
    assert code == 0, err
    result, results = json.loads(text), read_json(out / "results.json")
    assert result["kind"] == kind and result["n_test"] == results["data"]["n_test"]
    assert result["test_error"] == pytest.approx(results["test_error"])
    assert result["test_nll"] == pytest.approx(results["test_nll"])
    assert ("expert_test_errors" in result) == (kind != "classrbm")
    assert read_json(out / "evaluation.json") == result


# --- the run-folder policy ---------------------------------------------------------------------

def test_rerun_without_resume_or_overwrite_is_refused_and_changes_nothing(cli, trained):
    _, args, out = trained
    before = _snapshot(out)
    code, _, err = cli(*args, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    assert _snapshot(out) == before


def test_resume_with_other_settings_is_refused_and_changes_nothing(cli, trained):
    kind, args, out = trained
    before = _snapshot(out)
    code, _, err = cli(*args, "--lr", "0.5", "--seed", "4", "--out", out, "--resume")
    assert code == 2 and err.count("\n") == 1
    assert "other settings (seed, train.lr)" in err
    assert _snapshot(out) == before


def test_resume_of_a_finished_run_with_the_same_settings_keeps_it(cli, trained):
    _, args, out = trained
    results = read_json(out / "results.json")
    code, _, err = cli(*args, "--out", out, "--resume", "--device", "cpu")
    assert code == 0, err
    assert read_json(out / "results.json")["test_error"] == results["test_error"]
    assert (out / "metrics.csv").read_text().count("\n") == 3


def test_overwrite_starts_afresh(cli, trained):
    _, args, out = trained
    (out / "stray.txt").write_text("left by the earlier run")
    code, _, err = cli(*[a if a != "2" else "1" for a in args], "--out", out, "--overwrite")
    assert code == 0, err
    assert not (out / "stray.txt").exists() and (out / "metrics.csv").read_text().count("\n") == 2


def _without_seconds(metrics_csv):
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in csv.DictReader(io.StringIO(metrics_csv.read_text()))]


def test_interrupted_run_resumes_to_the_uninterrupted_result(cli, trained, monkeypatch, tmp_path):
    kind, args, whole = trained
    out = tmp_path / "killed"
    log_metrics = RunFolder.log_metrics

    def killed_after_the_first_epoch(self, row):
        log_metrics(self, row)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "log_metrics", killed_after_the_first_epoch)
    assert cli(*args, "--out", out)[0] == 130  # interrupted, as by Ctrl-C
    monkeypatch.undo()
    assert not (out / ".lock").exists() and not (out / "results.json").exists()
    code, text, err = cli("evaluate", out, "--json")  # the last training state
    assert code == 0 and json.loads(text)["kind"] == kind, err
    code, _, err = cli(*args, "--out", out, "--resume")
    assert code == 0, err
    drop = ("seconds", "versions")
    a, b = (read_json(run / "results.json") for run in (whole, out))
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert _without_seconds(whole / "metrics.csv") == _without_seconds(out / "metrics.csv")
    model = "checkpoints/model.safetensors"
    assert (whole / model).read_bytes() == (out / model).read_bytes()


# --- defaults: one home -------------------------------------------------------------------------


def test_deep_objective_is_semisupervised_when_labels_are_withheld():
    assert experiment.default_objective(0.1) == "semisupervised"
    assert experiment.default_objective(1.0) == ClassSettings(epochs=1).objective


def test_commands_keep_their_own_starting_points():
    shallow, deep = experiment.Config(), experiment.DeepConfig()
    assert (shallow.train.epochs, shallow.train.batching) == (10, "paired")
    assert (deep.train.epochs, deep.train.batching, deep.arch) == (1, "stream", (500, 500))


# --- bad values: one line, exit 2, nothing written ----------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("classrbm", "--objective", "adversarial"), "objective must be one of"),
    (("hybrid", "--unsupervised", "pseudolabels"), "unsupervised must be one of likelihood, entropy"),
    (("classrbm", "--schedule", "step"), "schedule must be one of constant, linear, cosine"),
    (("classrbm", "--labeled", "0"), "labeled must be a fraction in (0, 1]"),
    (("classrbm", "--objective", "semisupervised", "--hidden", "4"), "needs unlabeled rows"),
    (("hybrid", "--arch", "500,x"), "--arch takes hidden layer sizes"),
    (("hybrid", "--model", "dbm"), "model must be one of dhbm, dhda"),
    (("hybrid", "--combine", "vote"), "combine must be one of mean, product"),
    (("hybrid", "--corruption", "1.5"), "corruption must be a masking level in [0, 1)"),
    (("classrbm", "--patience", "-1"), "patience must be >= 0"),
    (("classrbm", "--resume", "--overwrite"), "--resume and --overwrite exclude each other"),
])
def test_bad_value_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, args, message):
    code, _, err = cli(*args, "--out", tmp_path / "bad")
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "bad").exists()


def test_pcd_or_another_supervised_part_for_a_deep_model_is_refused():
    with pytest.raises(ValueError, match="deep hybrid models learn by CD"):
        experiment.DeepConfig(arch=(4, 4), train=ClassSettings(epochs=1, method="pcd"))
    with pytest.raises(ValueError, match="supervised part is hybrid"):
        experiment.DeepConfig(train=ClassSettings(epochs=1, supervised="generative"))
