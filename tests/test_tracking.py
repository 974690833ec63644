"""Experiment tracking: --tensorboard event files, RUN/metrics.jsonl, ``neuralsmith plot``."""

import json

import pytest

from neuralsmith import tracking
from neuralsmith.runfolder import RUNTIME_KEYS

RBM = ("pretrain", "rbm", "--hidden", "12", "--epochs", "2", "--batch-size", "50", "--quiet")
FINETUNE = ("finetune", "--arch", "16", "--init", "glorot_uniform", "--epochs", "2", "--quiet")


def _strict(line):
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def _events(folder):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is not installed (pip install 'neuralsmith[tensorboard]')")
    ea = accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0,
                                                                  "images": 0})
    ea.Reload()
    return ea


@pytest.fixture
def needs_tensorboard():
    pytest.importorskip("tensorboard", reason="tensorboard is not installed "
                        "(pip install 'neuralsmith[tensorboard]'; .ci/run installs it)")


def test_rbm_run_writes_scalars_histograms_and_images(cli, tmp_path, needs_tensorboard):
    code, _, err = cli(*RBM, "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert code == 0, err
    ea = _events(tmp_path / "tb")
    tags = ea.Tags()
    assert {"reconstruction_error", "pseudo_likelihood"} <= set(tags["scalars"])
    assert [e.step for e in ea.Scalars("reconstruction_error")] == [1, 2]
    assert "weights/weight" in tags["histograms"]
    assert {"filters", "samples"} <= set(tags["images"])


def test_finetune_writes_losses_errors_lr_and_gradient_norms(cli, tmp_path, needs_tensorboard):
    code, _, err = cli(*FINETUNE, "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert code == 0, err
    tags = _events(tmp_path / "tb").Tags()
    assert {"train_loss", "valid_error", "test_error", "lr"} <= set(tags["scalars"])
    assert any(t.startswith("grad_norm/") for t in tags["scalars"])
    assert any(t.startswith("gradients/") for t in tags["histograms"])


def test_dbn_layers_are_tagged(cli, tmp_path, needs_tensorboard):
    code, _, err = cli("pretrain", "dbn", "--arch", "12-8", "--epochs", "1", "--quiet",
                       "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert code == 0, err
    scalars = set(_events(tmp_path / "tb").Tags()["scalars"])
    assert {"layer1/reconstruction_error", "layer2/reconstruction_error"} <= scalars
    layers = [_strict(l)["layer"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert layers == [1, 2]


def test_metrics_jsonl_is_strict_json_one_line_per_epoch(cli, tmp_path):
    code, _, err = cli(*FINETUNE, "--out", tmp_path / "run")
    assert code == 0, err
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [_strict(line) for line in lines]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "valid_error"} <= set(rows[0])


def test_jsonl_writes_nan_as_null_and_resume_fills_missing_epochs(tmp_path):
    class History:
        rows = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": float("nan")}]

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "lo')  # killed mid-line
    log = tracking.JsonLines(path)
    log.begin(object(), History())
    log({"epoch": 3, "loss": 0.5})
    rows = [_strict(line) for line in path.read_text().splitlines()]
    assert rows == [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": None}, {"epoch": 3, "loss": 0.5}]


def test_tensorboard_is_a_runtime_setting():
    assert "tensorboard" in RUNTIME_KEYS


def test_missing_tensorboard_is_one_line_naming_the_install(cli, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("no tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    code, _, err = cli(*RBM, "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert code == 2 and err.count("\n") == 1
    assert "pip install 'neuralsmith[tensorboard]'" in err
    assert not (tmp_path / "run").exists()


def test_plot_redraws_the_figures(cli, tmp_path):
    out = tmp_path / "run"
    assert cli(*RBM, "--out", out)[0] == 0
    for png in (out / "figures").glob("*.png"):
        png.unlink()
    code, stdout, err = cli("plot", out, "--json")
    assert code == 0, err
    written = json.loads(stdout)
    assert set(written) == {"learning_curves", "filters", "samples"}
    for name in ("learning_curves", "filters", "samples"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0


def test_plot_of_a_folder_that_is_no_run_is_one_line(cli, tmp_path):
    code, _, err = cli("plot", tmp_path)
    assert code == 2 and "not a run folder" in err


def test_dbm_layers_and_joint_training_are_tagged(cli, tmp_path, needs_tensorboard):
    code, _, err = cli("pretrain", "dbm", "--arch", "12-8", "--pretrain-epochs", "1", "--epochs", "1",
                       "--n-chains", "10", "--quiet", "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb")
    assert code == 0, err
    scalars = set(_events(tmp_path / "tb").Tags()["scalars"])
    assert any(t.startswith("layer1/") for t in scalars) and any(t.startswith("joint/") for t in scalars)
    rows = [_strict(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("layer") or r.get("phase") for r in rows] == [1, 2, "joint"]
