"""Hostile input (issue 17): every bad value, size or file is refused early, in one line.

Each case runs through the API (the documented exception) and through the CLI (exit 2, one
line on stderr, no traceback, nothing written).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os

import pytest
import torch

from neuralsmith import checkpoint, limits, runfolder, settings
from neuralsmith.experiments import diagnose, finetune, rbm, stack
from neuralsmith.study import StudySpec

BIG = "2000000000"


def strict_json(text: str):
    """Parse ``text`` as strict JSON: a bare NaN or Infinity fails."""
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def refused(result, *words: str) -> str:
    """Assert a CLI result is a one-line user error (exit 2) mentioning ``words``; return it."""
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuralsmith: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- sizes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["pretrain", "rbm", "--hidden", BIG], ["pretrain", "dbn", "--arch", BIG],
                                  ["diagnose", "--arch", BIG]])
def test_huge_sizes_are_refused_before_allocation(cli, tmp_path, args):
    out = tmp_path / "run"
    refused(cli(*args, "--out", out, "--quiet"), "needs at least", "GB", limits.ENV)
    assert not out.exists()


def test_size_limits_through_the_api(monkeypatch):
    with pytest.raises(ValueError, match="needs at least"):
        rbm.Config(hidden=int(BIG))
    with pytest.raises(ValueError, match="needs at least"):
        stack.Config(arch=(int(BIG),))
    with pytest.raises(ValueError, match="needs at least"):
        diagnose.Config(arch=(16, int(BIG)))
    monkeypatch.setenv(limits.ENV, "550000")  # 550 kB: a 64-64 RBM fits, a 64-512 one does not
    rbm.Config(hidden=64).check_size(64)
    with pytest.raises(ValueError, match=r"more than NEURALSMITH_MAX_BYTES=550000 \(550.0 kB\)"):
        rbm.Config(hidden=512).check_size(64)
    monkeypatch.setenv(limits.ENV, "lots")
    with pytest.raises(ValueError, match="positive number of bytes"):
        limits.max_bytes()


def test_the_limit_comes_from_the_environment_through_the_cli(cli, tmp_path, monkeypatch):
    monkeypatch.setenv(limits.ENV, "550000")  # the digits (474 kB as float32) fit, the RBM does not
    out = tmp_path / "run"
    refused(cli("pretrain", "rbm", "--hidden", "512", "--out", out, "--quiet"), "the RBM (64-512)")
    assert not out.exists()


def test_network_bytes_counts_parameters_and_activations():
    assert limits.network_bytes([2, 3], batch_size=10, copies=1, itemsize=1) == 2 * 3 + 3 + 10 * 5


# --- values -----------------------------------------------------------------------------------

def test_settings_refuse_nan_and_infinity():
    @dataclasses.dataclass(frozen=True)
    class Demo:
        lr: float = 0.1
        levels: tuple[float, ...] = (0.1,)
        bound: float = dataclasses.field(default=math.inf, metadata={settings.ALLOW_NONFINITE: True})

    for bad in ({"lr": math.nan}, {"lr": math.inf}, {"levels": [0.1, math.nan]}):
        with pytest.raises(ValueError, match="finite"):
            settings.from_dict(Demo, bad)
    assert settings.from_dict(Demo, {"bound": -math.inf}).bound == -math.inf


@pytest.mark.parametrize("args,words", [
    (["finetune", "--arch", "16", "--weight-decay", "nan"], ["weight_decay", "finite"]),
    (["pretrain", "rbm", "--lr", "inf"], ["lr", "finite"]),
    (["diagnose", "--init", "normal", "--init-opt", "std=abc"], ["std", "'abc'"]),
    (["diagnose", "--arch", "8,,"], ["--arch", "'8,,'"]),
    (["diagnose", "--arch", "8.9"], ["--arch", "'8.9'"]),
    (["finetune", "--arch", "16", "--seed", str(2**64)], ["seed", "2**63 - 1", str(2**64)]),
    (["pretrain", "rbm", "--validation", "5000"], ["got 5000"]),
    (["finetune", "--arch", "16", "--validation", "5000"], ["5000 examples"]),
    (["study", "--inits", "default,bogus", "--epochs", "1", "--seeds", "1"], ["'bogus'", "known"]),
])
def test_bad_values_are_refused_before_anything_runs(cli, tmp_path, args, words):
    out = tmp_path / "run"
    line = refused(cli(*args, "--out", out, "--quiet"), *words)
    assert "5000.0" not in line and "3.7" not in line  # the number the user typed
    assert not out.exists()


def test_study_spec_refuses_bad_values_in_a_config(cli, tmp_path):
    config = tmp_path / "study.toml"
    config.write_text("[study]\nlr = nan\n")
    refused(cli("study", "--config", config, "--out", tmp_path / "run", "--quiet"), "lr", "finite", str(config))
    with pytest.raises(ValueError, match="unknown start"):
        StudySpec(starts=("default", "bogus"))
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        StudySpec(lr=math.nan)
    with pytest.raises(ValueError, match="seed"):
        StudySpec(seed=2**64)


def test_every_config_checks_its_seed():
    for make in (lambda: rbm.Config(seed=2**64), lambda: stack.Config(seed=-1),
                 lambda: diagnose.Config(seed=2**64), lambda: finetune.Config(arch=(8,), seed=2**64)):
        with pytest.raises(ValueError, match=r"2\*\*63 - 1"):
            make()


# --- the command line -------------------------------------------------------------------------

def test_usage_errors_are_one_line(cli):
    line = refused(cli("pretrain", "rbm", "--bogus"), "--bogus", "neuralsmith pretrain rbm --help")
    assert "│" not in line
    refused(cli("pretrain", "rbm", "--hidden", "abc"), "--hidden")
    refused(cli("no-such-command"), "no-such-command")


def test_out_naming_a_file_is_refused(cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    refused(cli("pretrain", "rbm", "--out", target, "--quiet"), str(target))
    assert target.read_text() == "keep me"


def test_a_full_disk_names_the_file_and_the_bytes(cli, tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="no space left to write 13 bytes") as info:
        runfolder.write_json(tmp_path / "x.json", {"a": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "x.json")
    assert not list(tmp_path.iterdir())  # no temporary file left
    out = tmp_path / "run"
    refused(cli("pretrain", "rbm", "--hidden", "8", "--out", out, "--quiet"),
            str(out / "config.toml"), "no space left to write", "bytes")


def test_corrupt_or_unreadable_files_are_named(cli, tmp_path):
    bad = tmp_path / "bad.json"
    for payload in (b"{", b"\xff\xfe", b'{"a": NaN}'):
        bad.write_bytes(payload)
        with pytest.raises(ValueError, match="bad.json: not valid JSON"):
            runfolder.read_json(bad)
    toml = tmp_path / "study.toml"
    toml.write_bytes(b"\xff")
    refused(cli("study", "--config", toml, "--out", tmp_path / "run", "--quiet"), str(toml))
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    refused(cli("study", "--config", folder, "--out", tmp_path / "run", "--quiet"), str(folder))


def test_checkpoints_with_nan_weights_are_refused(cli, tmp_path):
    run = tmp_path / "dbn"
    code, _, err = cli("pretrain", "dbn", "--arch", "8", "--epochs", "1", "--out", run, "--quiet")
    assert code == 0, err
    folder = run / "checkpoints"
    tensors, meta = checkpoint.load(folder, "stack")
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.dim() == 2)
    tensors[key] = torch.full_like(tensors[key], math.nan)
    checkpoint.save(folder, "stack", tensors, meta)
    with pytest.raises(ValueError, match="NaN or infinite"):
        stack.load_stack(folder)
    before = sorted(run.rglob("*"))
    refused(cli("sample", run, "--quiet"), "stack.safetensors", "NaN")
    assert sorted(run.rglob("*")) == before


def test_strict_json_on_stdout(cli, tmp_path):
    for args in (["data", "list"], ["diagnose", "--arch", "8"],
                 ["finetune", "--arch", "8", "--epochs", "1", "--out", tmp_path / "ft"]):
        code, out, err = cli(*args, "--json", "--quiet")
        assert code == 0, err
        strict_json(out)
    assert runfolder.dumps_json({"p": math.nan, "q": [math.inf]}) == '{"p": null, "q": [null]}'


# --- architecture against the data ------------------------------------------------------------

def test_a_stack_whose_input_differs_from_the_data_is_refused(cli, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    data = tmp_path / "ten.npz"
    np.savez(data, x_train=rng.random((60, 10), dtype=np.float32), y_train=np.arange(60) % 3,
             x_test=rng.random((20, 10), dtype=np.float32), y_test=np.arange(20) % 3)
    pre = tmp_path / "dbn"
    code, _, err = cli("pretrain", "dbn", "--arch", "8", "--epochs", "1", "--out", pre, "--quiet")
    assert code == 0, err
    out = tmp_path / "ft"
    refused(cli("finetune", pre, "--data", data, "--epochs", "1", "--out", out, "--quiet"),
            "takes 64 inputs", "10 features")
    assert not out.exists()


def test_labels_beyond_the_output_layer_are_refused():
    from neuralsmith.data import Dataset

    ds = Dataset(x_train=torch.rand(4, 3), y_train=torch.tensor([0, 1, 2, 9]), x_test=torch.rand(2, 3),
                 y_test=torch.tensor([0, 1]), image_shape=(1, 3), n_classes=3, name="hostile", source="test")
    with pytest.raises(ValueError, match="label 9 does not fit an output layer of 3 classes"):
        finetune.check_labels(ds)
