"""``neuralsmith pretrain dbm``, ``evaluate RUN --ais``, ``finetune RUN``, sampling and the study's ``dbm`` start."""

import json
from pathlib import Path

import pytest

from neuralsmith.experiments import dbm as dbm_experiment
from neuralsmith.runfolder import load_toml, read_json
from neuralsmith.study import StudySpec

SMALL = ("--arch", "12-8", "--pretrain-epochs", "1", "--epochs", "1", "--binarize", "threshold",
         "--batch-size", "50", "--n-chains", "20", "--quiet")


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from neuralsmith.cli import main

    out = tmp_path_factory.mktemp("dbm-runs") / "dbm"
    assert main(["pretrain", "dbm", *SMALL, "--out", str(out)]) == 0
    return out


def test_run_folder_holds_the_dbm_and_its_phases(run_dir):
    config = load_toml(run_dir / "config.toml")
    assert config["kind"] == "dbm" and config["arch"] == [12, 8]
    assert config["train"]["n_chains"] == 20 and config["train"]["k"] == 5  # the paper's 5 sweeps
    meta = read_json(run_dir / "checkpoints" / "stack.json")
    assert (meta["kind"], meta["sizes"], meta["binarize"]) == ("dbm", [64, 12, 8], "threshold")
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["layer-1", "layer-2", "joint"]
    assert (run_dir / "figures" / "samples.png").is_file() and (run_dir / "figures" / "filters.png").is_file()
    results = read_json(run_dir / "results.json")
    assert results["pretrain_epochs"] == [1, 1] and results["joint_epochs"] == 1


def test_evaluate_with_ais_gives_the_bound_and_agrees_with_the_exact_log_z(cli, run_dir):
    code, out, err = cli("evaluate", run_dir, "--ais", "--ais-runs", "50", "--ais-steps", "500", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["ais_log_z_lower"] <= r["exact_log_z"] <= r["ais_log_z_upper"]
    assert r["exact_test_log_likelihood_bound"] <= r["exact_test_log_likelihood"] < 0
    assert r["ais_test_log_likelihood_bound"] == pytest.approx(r["exact_test_log_likelihood_bound"], abs=0.1)
    assert read_json(run_dir / "evaluation.json") == r


def test_evaluate_without_ais_needs_no_estimate(cli, run_dir):
    code, out, err = cli("evaluate", run_dir, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert "ais_log_z" not in r and r["reconstruction_error"] > 0


@pytest.mark.parametrize("where, nth", [("layer-1-epochs", 1), ("joint", 1)])
def test_resume_after_a_kill_ends_bit_identical(cli, killed_cli, same_files, tmp_path, where, nth):
    """Killed after the first epoch of the second layer RBM, or of joint training; resumed: the same DBM, bit for bit."""
    args = ("pretrain", "dbm", "--arch", "12-8", "--pretrain-epochs", "2", "--epochs", "2",
            "--batch-size", "100", "--n-chains", "10", "--quiet")
    assert cli(*args, "--out", tmp_path / "straight")[0] == 0
    killed_cli(*args, "--out", tmp_path / "killed", where=lambda folder, name: where in folder, nth=nth)
    code, _, err = cli(*args, "--out", tmp_path / "killed")
    assert code == 2 and "--resume" in err
    code, _, err = cli(*args, "--out", tmp_path / "killed", "--resume")
    assert code == 0, err
    assert same_files(tmp_path / "killed" / "checkpoints", tmp_path / "straight" / "checkpoints",
                      ("stack.safetensors", "stack.json"))


def test_mismatched_resume_is_refused_and_changes_nothing(cli, run_dir):
    before = _snapshot(run_dir)
    code, _, err = cli("pretrain", "dbm", *SMALL[:-1], "--k", "3", "--quiet", "--out", run_dir, "--resume")
    assert code == 2 and err.count("\n") == 1 and "train.k" in err
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize("option, value, words", [
    ("--arch", "12-0", "arch"), ("--layers", "12,x", "12,x"), ("--n-chains", "0", "n_chains"),
    ("--mf-iters", "0", "mf_iters"), ("--visible", "softmax", "visible"), ("--schedule", "step", "schedule")])
def test_bad_options_are_one_line_and_exit_2(cli, tmp_path, option, value, words):
    code, _, err = cli("pretrain", "dbm", option, value, "--quiet", "--out", tmp_path / "bad")
    assert code == 2 and err.count("\n") == 1 and words in err
    assert not (tmp_path / "bad").exists()


def test_nothing_to_train_is_refused(cli, tmp_path):
    code, _, err = cli("pretrain", "dbm", "--pretrain-epochs", "0", "--epochs", "0", "--quiet",
                       "--out", tmp_path / "none")
    assert code == 2 and "nothing would train" in err


def test_finetune_starts_from_the_dbm(cli, run_dir, tmp_path):
    code, out, err = cli("finetune", run_dir, "--epochs", "1", "--out", tmp_path / "ft", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["start"] == "dbm" and result["sizes"] == "64-12-8-10"


@pytest.mark.parametrize("method", ["gibbs", "pt"])
def test_sample_is_seeded_and_judges_its_chains(run_dir, cli, method):
    """`sample RUN` on a dbm run: Gibbs or parallel tempering over every layer, seeded."""
    pictures = []
    for _ in range(2):
        code, out, err = cli("sample", run_dir, "--n", "9", "--gibbs-steps", "20", "--method", method,
                             "--n-temperatures", "3", "--seed", "3", "--device", "cpu", "--json")
        assert code == 0, err
        result = json.loads(out)
        pictures.append(Path(result["figure"]).read_bytes())
    assert pictures[0] == pictures[1] and result["method"] == method
    if method == "pt":
        assert all(0.0 <= a <= 1.0 for a in result["swap_acceptance"])


def test_sample_refuses_what_a_dbm_cannot_do(run_dir, cli):
    code, _, err = cli("sample", run_dir, "--method", "pt", "--tempering-base", "data", "--n", "2")
    assert code == 2 and "uniform" in err
    assert cli("sample", run_dir, "--gibbs-steps", "0")[0] == 2


def test_the_study_runs_dbm_only_when_asked(tmp_path):
    from neuralsmith.study import run

    assert "dbm" not in StudySpec().starts
    spec = StudySpec(depths=(2,), starts=("default", "dbm"), seeds=2, epochs=1, hidden=8,
                     families=("default", "dbm"), function_space_examples=20, pretrain_epochs=1)
    results = run(spec, tmp_path / "study", progress=False)
    assert {r["start"] for r in results["summary"]} == {"default", "dbm"}
    assert "dbm" in (tmp_path / "study" / "report.html").read_text()
