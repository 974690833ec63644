"""`neuralsmith diagnose` and `neuralsmith init list`."""

from __future__ import annotations

import json

import pytest

from neuralsmith import data, diagnostics, init
from neuralsmith.experiments import diagnose as experiment
from neuralsmith.runfolder import load_toml


def test_diagnose_json_reads_vanishing(cli, tmp_path):
    figure = tmp_path / "flow.png"
    code, out, _ = cli("diagnose", "--arch", "32x6", "--activation", "sigmoid", "--init", "normal",
                       "--init-opt", "std=0.01", "--figure", figure, "--json")
    result = json.loads(out)
    assert code == 0 and result["reports"]["init"]["verdict"] == "vanishing"
    assert len(result["reports"]["init"]["layers"]) == 7 and result["init_options"] == {"std": 0.01}
    assert figure.read_bytes()[:4] == b"\x89PNG" and result["run"] is None


def test_diagnose_missing_scheme_option_names_it(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "8", "--init", "normal", "--figure", tmp_path / "f.png")
    assert code == 2 and "std=" in err and err.count("\n") == 1
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("opt, message", [
    ("std", "KEY=VALUE"),
    ("std=abc", "--init-opt std takes a number, as in std=0.01; got 'abc'"),
    ("foo=1", "got unknown ['foo']"),
])
def test_diagnose_bad_init_opt_is_one_line(cli, tmp_path, opt, message):
    code, _, err = cli("diagnose", "--arch", "8", "--init", "normal", "--init-opt", opt,
                       "--out", tmp_path / "run")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_a_whole_number_option_is_an_int():
    config = experiment.Config(init="sparse", init_options=("n_nonzero=4",))
    assert config.options == {"n_nonzero": 4} and isinstance(config.options["n_nonzero"], int)
    with pytest.raises(ValueError, match="n_nonzero takes a whole number"):
        experiment.Config(init="sparse", init_options=("n_nonzero=2.5",))


def test_diagnose_run_folder_with_steps(cli, tmp_path):
    out = tmp_path / "my runs" / "été"
    code, stdout, _ = cli("diagnose", "--arch", "32x3", "--activation", "tanh", "--init", "normal",
                          "--init-opt", "std=0.1", "--steps", "2", "--out", out, "--device", "cpu", "--quiet")
    assert code == 0 and stdout == ""
    results = json.loads((out / "results.json").read_text())
    assert set(results["reports"]) == {"init", "after 2 steps"} and results["seed"] == 0
    config = load_toml(out / "config.toml")
    assert config["kind"] == "diagnose" and config["arch"] == [32, 32, 32]
    assert config["init_options"] == ["std=0.1"]
    assert (out / "figures" / "gradient_flow.png").is_file()


def test_diagnose_out_follows_the_run_folder_policy(cli, tmp_path):
    out = tmp_path / "run"
    args = ("diagnose", "--arch", "8x2", "--quiet", "--out", out)
    assert cli(*args)[0] == 0
    before = (out / "results.json").read_bytes()
    code, _, err = cli(*args)
    assert code == 2 and "--resume" in err and "--overwrite" in err
    code, _, err = cli(*args, "--resume", "--steps", "1")
    assert code == 2 and "(steps)" in err and (out / "results.json").read_bytes() == before
    assert cli(*args, "--overwrite", "--steps", "1")[0] == 0
    assert "after 1 steps" in json.loads((out / "results.json").read_text())["reports"]


def test_measure_is_diagnostics_diagnose_on_the_cpu():
    ds = data.load("digits")
    config = experiment.Config(arch=(16, 16), init="normal", init_options=("std=0.5",), steps=2)
    mine = experiment.measure(config, ds.x_train, ds.y_train)
    theirs = diagnostics.diagnose([64, 16, 16, 10], "sigmoid", "normal", ds.x_train, ds.y_train,
                                  steps=2, std=0.5)
    assert {k: r.to_dict() for k, r in mine.items()} == {k: r.to_dict() for k, r in theirs.items()}


def test_diagnose_table_names_the_verdict(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("diagnose", "--arch", "16x2", "--init", "glorot_uniform")
    assert code == 0 and "ratio" in out and ("healthy" in out or "vanishing" in out)
    assert (tmp_path / "gradient_flow.png").is_file() and not (tmp_path / "config.toml").exists()


def test_diagnose_bad_arch_is_one_line(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "64-abc-10", "--figure", tmp_path / "f.png")
    assert code == 2 and err.count("\n") == 1 and "256x10" in err


def test_diagnose_unknown_init_is_one_line(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "8", "--init", "xavier", "--figure", tmp_path / "f.png")
    assert code == 2 and "unknown init scheme 'xavier'" in err


def test_init_list_json_has_every_scheme(cli):
    code, out, _ = cli("init", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list(init.SCHEMES)
    assert all(r["formula"] and r["paper"] for r in rows)


def test_init_list_table(cli):
    code, out, _ = cli("init", "list")
    assert code == 0 and "glorot_uniform" in out and "Glorot" in out


