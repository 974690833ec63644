"""`neuralsmith diagnose` and `neuralsmith init list`."""

from __future__ import annotations

import json

from neuralsmith import init


def test_diagnose_json_reads_vanishing(cli, tmp_path):
    figure = tmp_path / "flow.png"
    code, out, _ = cli("diagnose", "--arch", "64-32x6-10", "--activation", "sigmoid", "--init", "normal",
                       "--init-opt", "std=0.01", "--figure", figure, "--json")
    result = json.loads(out)
    assert code == 0 and result["reports"]["init"]["verdict"] == "vanishing"
    assert len(result["reports"]["init"]["layers"]) == 7 and result["init_options"] == {"std": 0.01}
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_diagnose_missing_scheme_option_names_it(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "64-10", "--init", "normal", "--figure", tmp_path / "f.png")
    assert code == 2 and "std=" in err and err.count("\n") == 1


def test_diagnose_bad_init_opt_is_one_line(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "64-10", "--init-opt", "std", "--figure", tmp_path / "f.png")
    assert code == 2 and "KEY=VALUE" in err


def test_diagnose_run_folder_with_steps(cli, tmp_path):
    code, out, _ = cli("diagnose", "--arch", "64-32x3-10", "--activation", "tanh", "--init", "glorot_uniform",
                       "--steps", "2", "--out", tmp_path / "run", "--quiet")
    assert code == 0 and out == ""
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["reports"]) == {"init", "after 2 steps"} and results["seed"] == 0
    assert "arch = \"64-32x3-10\"" in (tmp_path / "run" / "config.toml").read_text()
    assert (tmp_path / "run" / "figures" / "gradient_flow.png").is_file()


def test_diagnose_table_names_the_verdict(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("diagnose", "--arch", "64-16x2-10", "--init", "glorot_uniform")
    assert code == 0 and "ratio" in out and ("healthy" in out or "vanishing" in out)
    assert (tmp_path / "gradient_flow.png").is_file()


def test_diagnose_bad_arch_is_one_line(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "64-abc-10", "--figure", tmp_path / "f.png")
    assert code == 2 and err.count("\n") == 1 and "64-256x10-10" in err


def test_diagnose_arch_must_fit_data(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "100-10", "--figure", tmp_path / "f.png")
    assert code == 2 and "start the arch with 64" in err


def test_diagnose_unknown_init_is_one_line(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "64-10", "--init", "xavier", "--figure", tmp_path / "f.png")
    assert code == 2 and "unknown init scheme 'xavier'" in err


def test_init_list_json_has_every_scheme(cli):
    code, out, _ = cli("init", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list(init.SCHEMES)
    assert all(r["formula"] and r["paper"] for r in rows)


def test_init_list_table(cli):
    code, out, _ = cli("init", "list")
    assert code == 0 and "glorot_uniform" in out and "Glorot" in out
