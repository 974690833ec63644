"""``neuralsmith finetune`` and ``neuralsmith evaluate`` on its runs, through the CLI."""

import json

import numpy as np
import pytest
import torch

from neuralsmith import data, experiments
from neuralsmith.experiments import finetune as experiment
from neuralsmith.experiments import stack as stack_experiment
from neuralsmith.runfolder import RunFolder, load_toml, read_json
from neuralsmith.stack import DBN, StackedDAE, greedy_pretrain_sda, save_stack

SMALL = ("--epochs", "2", "--batch-size", "64", "--quiet")


@pytest.fixture
def pretrained():
    """``make(folder, stack, data)``: a pre-trained run folder (config.toml + checkpoints/stack)."""

    def make(folder, model, source="digits"):
        sizes = model.config()["sizes"]
        config = stack_experiment.Config(kind=model.config()["kind"], data=str(source), arch=tuple(sizes[1:]))
        with experiments.open_run(folder, config) as run:
            save_stack(model, run.checkpoints)
        return folder

    return make


@pytest.fixture
def npz(tmp_path):
    """A tiny 20-feature, 3-class data set in an .npz file."""
    g = np.random.default_rng(0)
    path = tmp_path / "toy.npz"
    x, y = g.random((90, 20), dtype=np.float32), g.integers(0, 3, 90)
    np.savez(path, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    return path


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def arch_run(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("finetune", "--arch", "16", *SMALL, "--out", out)
    assert code == 0, err
    return out


def test_finetune_from_an_initializer_writes_the_run(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = cli("finetune", "--arch", "32", "--init", "glorot_uniform", "--epochs", "2",
                          "--out", out, "--json")
    assert code == 0
    results, summary = read_json(out / "results.json"), json.loads(stdout)
    for key in ("test_error", "valid_error", "train_error", "epochs", "seconds"):
        assert key in results and key in summary
    assert results["seed"] == 0 and results["sizes"] == [64, 32, 10] and summary["start"] == "glorot_uniform"
    assert (out / "figures" / "learning_curves.png").is_file()
    assert len((out / "metrics.csv").read_text().splitlines()) == 3
    config = load_toml(out / "config.toml")
    assert config["kind"] == "finetune" and config["arch"] == [32] and config["data"] == "digits"
    assert config["train"]["patience"] == 0


def test_finetune_a_dbn_pretrained_on_an_npz_uses_its_data(cli, tmp_path, npz, pretrained):
    pre = pretrained(tmp_path / "pre", DBN([20, 8], generator=torch.Generator().manual_seed(0)), npz)
    out = tmp_path / "ft"
    code, stdout, err = cli("finetune", pre, *SMALL[:-1], "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["start"] == "dbn" and json.loads(stdout)["sizes"] == "20-8-3"
    results = read_json(out / "results.json")
    assert results["data"]["name"] == "toy" and results["data"]["n_features"] == 20
    assert load_toml(out / "config.toml")["data"] == str(npz)


def test_a_stack_that_does_not_fit_the_data_is_one_line(cli, tmp_path, npz, pretrained):
    pre = pretrained(tmp_path / "pre", DBN([20, 8]), npz)
    code, _, err = cli("finetune", pre, "--data", "digits", "--out", tmp_path / "ft")
    assert code == 2 and err.count("\n") == 1
    assert "takes 20 inputs but digits has 64 features" in err and "leave out --data" in err
    assert not (tmp_path / "ft").exists()


def test_finetune_a_pretrained_sda(cli, tmp_path, pretrained):
    sda = StackedDAE([64, 16], levels=0.2, generator=torch.Generator().manual_seed(0))
    greedy_pretrain_sda(sda, data.load("digits").x_train, epochs=1, progress=False,
                        generator=torch.Generator().manual_seed(0))
    pre = pretrained(tmp_path / "pre", sda)
    code, stdout, err = cli("finetune", pre, "--epochs", "1", "--out", tmp_path / "ft", "--json")
    assert code == 0, err
    assert json.loads(stdout)["start"] == "sda"


def test_evaluate_json_on_a_finetune_run(cli, arch_run):
    code, stdout, err = cli("evaluate", arch_run, "--json")
    assert code == 0, err
    result, results = json.loads(stdout), read_json(arch_run / "results.json")
    assert result["kind"] == "finetune" and result["n_test"] == results["data"]["n_test"]
    assert result["test_error"] == pytest.approx(results["test_error"])
    assert result["test_loss"] == pytest.approx(results["test_loss"])
    assert read_json(arch_run / "evaluation.json") == result


def test_resume_with_other_settings_is_refused_and_changes_nothing(cli, arch_run):
    before = _snapshot(arch_run)
    code, _, err = cli("finetune", "--arch", "16", *SMALL, "--out", arch_run, "--resume",
                       "--lr", "0.5", "--init", "he_normal", "--activation", "relu")
    assert code == 2 and err.count("\n") == 1
    assert "other settings (activation, init, train.lr)" in err
    assert _snapshot(arch_run) == before


def test_rerun_needs_resume_or_overwrite(cli, arch_run):
    before = _snapshot(arch_run)
    code, _, err = cli("finetune", "--arch", "16", *SMALL, "--out", arch_run)
    assert code == 2 and "--resume" in err and "--overwrite" in err
    assert _snapshot(arch_run) == before


def test_resume_with_the_same_settings_keeps_the_run_and_overwrite_starts_afresh(cli, arch_run):
    before = read_json(arch_run / "results.json")
    code, _, err = cli("finetune", "--arch", "16", *SMALL, "--out", arch_run, "--resume", "--device", "cpu")
    assert code == 0, err
    assert read_json(arch_run / "results.json")["test_error"] == before["test_error"]
    assert cli("finetune", "--arch", "16", "--epochs", "1", "--quiet", "--out", arch_run, "--overwrite")[0] == 0
    assert read_json(arch_run / "results.json")["epochs"] == 1


class Killed(Exception):
    """Stands for kill -9 (click would turn a KeyboardInterrupt into an exit code)."""


def test_a_killed_run_resumes_to_the_uninterrupted_result(cli, tmp_path, arch_run, monkeypatch):
    log_metrics = RunFolder.log_metrics

    def killed_in_epoch_2(folder, row):  # after epoch 1's checkpoint (written before the callbacks)
        log_metrics(folder, row)
        if row["epoch"] == 1:
            raise Killed

    killed = tmp_path / "killed"
    monkeypatch.setattr(RunFolder, "log_metrics", killed_in_epoch_2)
    with pytest.raises(Killed):
        cli("finetune", "--arch", "16", *SMALL, "--out", killed)
    monkeypatch.undo()
    assert not (killed / "results.json").exists() and not (killed / ".lock").exists()
    assert cli("finetune", "--arch", "16", *SMALL, "--out", killed, "--resume")[0] == 0
    for name in ("model.safetensors", "last.safetensors", "best.safetensors"):
        assert (killed / "checkpoints" / name).read_bytes() == (arch_run / "checkpoints" / name).read_bytes()
    assert len((killed / "metrics.csv").read_text().splitlines()) == 3


def test_paths_with_spaces_and_non_ascii_round_trip(cli, tmp_path, npz, pretrained):
    pre = pretrained(tmp_path / "my runs" / "été 0", DBN([20, 6]), npz)
    out = tmp_path / "my runs" / "été 1"
    code, _, err = cli("finetune", pre, *SMALL, "--validation", "10", "--out", out)
    assert code == 0, err
    module, config = experiments.read_run(out)
    assert module is experiment and config.pretrained == str(pre) and config.data == str(npz)
    assert config.validation == 10.0 and read_json(out / "results.json")["data"]["n_valid"] == 10
    code, stdout, err = cli("evaluate", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["n_test"] == 30


@pytest.mark.parametrize("args, message", [
    (("--epochs", "1"), "either a pre-trained RUN folder or --arch"),
    (("--arch", "64-x",), "--arch takes hidden layer sizes"),
    (("--arch", "16", "--init", "nope"), "unknown init scheme 'nope'"),
    (("--arch", "16", "--patience", "-1"), "patience must be"),
    (("--arch", "16", "--validation", "5000"), "validation asks for 5000 examples"),
    (("--arch", "16", "--validation", "2.5"), "validation must be a fraction"),
    (("--arch", "16", "--binarize", "otsu"), "binarize must be one of"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, message):
    code, _, err = cli("finetune", *args, "--out", tmp_path / "r")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_pretrained_run_takes_no_arch_or_init(cli, tmp_path, pretrained):
    pre = pretrained(tmp_path / "pre", DBN([64, 8]))
    code, _, err = cli("finetune", pre, "--arch", "8", "--out", tmp_path / "r")
    assert code == 2 and "not both" in err
    code, _, err = cli("finetune", pre, "--init", "he_normal", "--out", tmp_path / "r")
    assert code == 2 and "--init he_normal applies to --arch" in err


def test_missing_pretrained_run(cli, tmp_path):
    code, _, err = cli("finetune", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert code == 2 and "not a run folder" in err


def test_lsuv_start_measures_training_rows(cli, tmp_path):
    code, stdout, err = cli("finetune", "--arch", "16", "--init", "lsuv", "--epochs", "1",
                            "--out", tmp_path / "r", "--json")
    assert code == 0, err
    assert json.loads(stdout)["start"] == "lsuv"


