"""``pretrain rbm --method pt`` and ``sample RUN --method pt``: run folders end to end."""

import json

import pytest

from neuralsmith import checkpoint
from neuralsmith.runfolder import load_toml, read_json

SMALL = ("--data", "digits", "--hidden", "12", "--batch-size", "50", "--binarize", "threshold",
         "--quiet", "--method", "pt", "--n-temperatures", "3")


@pytest.fixture(scope="module")
def pt_run(tmp_path_factory):
    from neuralsmith.cli import main

    out = tmp_path_factory.mktemp("pt") / "run"
    assert main(["pretrain", "rbm", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_pretrain_rbm_by_parallel_tempering(pt_run):
    train = load_toml(pt_run / "config.toml")["train"]
    assert (train["method"], train["n_temperatures"], train["temperature_spacing"]) == ("pt", 3, "linear")
    last = read_json(pt_run / "results.json")["final"]
    assert 0.0 <= last["swap_acceptance_min"] <= 1.0


def test_sample_an_rbm_run_by_parallel_tempering(cli, pt_run):
    args = ("sample", pt_run, "--method", "pt", "--n", "8", "--gibbs-steps", "40", "--thin", "5",
            "--n-temperatures", "4", "--temperature-spacing", "geometric", "--json")
    code, out, err = cli(*args)
    assert code == 0, err
    report = json.loads(out)
    assert report["figure"] == str(pt_run / "figures" / "samples-pt.png")
    assert len(report["betas"]) == 4 and report["betas"][0] == pytest.approx(0.01)
    assert len(report["swap_acceptance"]) == 3 and report["energy_ess"] > 0
    mix = report["class_mixing"]
    assert 0 < mix["visited"] <= 1 and 0 <= mix["entropy_ratio"] <= 1 and len(mix["frequencies"]) == 10
    assert read_json(pt_run / "sampling-pt.json") == report
    again = json.loads(cli(*args)[1])
    assert {k: v for k, v in again.items() if k != "seconds"} == \
        {k: v for k, v in report.items() if k != "seconds"}


def test_sample_by_pt_from_the_base_rates(cli, pt_run):
    code, out, err = cli("sample", pt_run, "--method", "pt", "--tempering-base", "data", "--n", "4",
                         "--gibbs-steps", "20", "--no-classify", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["tempering_base"] == "data" and "class_mixing" not in report


def test_sample_by_gibbs_prints_a_table(cli, pt_run):
    code, out, err = cli("sample", pt_run, "--n", "4", "--gibbs-steps", "20", "--no-classify")
    assert code == 0, err
    assert "energy_ess" in out and "swap_acceptance" not in out and "class_mixing" not in out
    assert (pt_run / "figures" / "samples.png").is_file()


def test_sample_a_dbn_by_parallel_tempering(cli, tmp_path):
    run = tmp_path / "dbn"
    assert cli("pretrain", "dbn", "--arch", "16-8", "--epochs", "1", "--quiet", "--out", run)[0] == 0
    code, out, err = cli("sample", run, "--method", "pt", "--n", "9", "--gibbs-steps", "20",
                         "--n-temperatures", "3", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert len(report["swap_acceptance"]) == 2 and (run / "figures" / "samples-pt.png").is_file()


@pytest.mark.parametrize("args, message", [
    (("--n-temperatures", "0"), "n_temperatures must be >= 2"),
    (("--temperature-spacing", "log"), "spacing must be one of linear, geometric"),
    (("--method", "mh"), "method must be one of gibbs, pt"),
    (("--beta-min", "1.5"), "beta_min must be in [0, 1)"),
])
def test_bad_sample_options_are_one_line(cli, pt_run, args, message):
    before = sorted(pt_run.rglob("*"))
    code, _, err = cli("sample", pt_run, "--method", "pt", *args)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert sorted(pt_run.rglob("*")) == before


@pytest.mark.parametrize("args, message", [
    (("--n-temperatures", "0"), "n_temperatures must be >= 2"),
    (("--hidden-units", "relu"), "tempers Bernoulli hidden units only"),
    (("--visible", "gaussian"), "--beta-min > 0"),
    (("--visible", "gaussian", "--beta-min", "0.1", "--tempering-base", "data"), "needs Bernoulli visible"),
    (("--tempering-base", "rates"), "tempering_base must be one of uniform, data"),
])
def test_bad_pretrain_options_are_one_line(cli, tmp_path, args, message):
    code, _, err = cli("pretrain", "rbm", *SMALL, *args, "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "r").exists()


def test_n_temperatures_without_pt_is_refused(cli, tmp_path):
    code, _, err = cli("pretrain", "rbm", "--method", "pcd", "--n-temperatures", "4", "--out", tmp_path / "r")
    assert code == 2 and "n_temperatures applies to method='pt'" in err


def test_resume_after_a_kill_ends_bit_identical(cli, killed_cli, same_files, tmp_path):
    """Killed after epoch 2 of 3 (PT replicas, swap counts and generator in the checkpoint)."""
    args = ("pretrain", "rbm", *SMALL, "--epochs", "3")
    assert cli(*args, "--out", tmp_path / "straight")[0] == 0
    killed_cli(*args, "--out", tmp_path / "killed", where=lambda folder, name: name == "last", nth=2)
    tensors, _ = checkpoint.load(tmp_path / "killed" / "checkpoints", "last")
    assert {"pt.state.0", "pt.state.1", "pt.accepted", "pt.proposed", "pt.steps"} <= set(tensors)
    code, _, err = cli(*args, "--out", tmp_path / "killed", "--resume")
    assert code == 0, err
    assert same_files(tmp_path / "killed" / "checkpoints", tmp_path / "straight" / "checkpoints",
                      ("model.safetensors", "last.safetensors"))
