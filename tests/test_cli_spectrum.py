"""`neuralsmith diagnose --spectrum` and the new schemes in `neuralsmith init list`."""

from __future__ import annotations

import json

from neuralsmith import data
from neuralsmith.experiments import diagnose as experiment


def test_diagnose_spectrum_json_and_figure(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = cli("diagnose", "--arch", "32x4", "--activation", "tanh", "--init", "critical",
                          "--spectrum", "--steps", "1", "--out", out, "--json")
    result = json.loads(stdout)
    assert code == 0 and set(result["spectra"]) == {"init", "after 1 steps"}
    init = result["spectra"]["init"]
    assert init["method"] == "exact" and init["shape"] == [10, 64] and len(init["values"]) == experiment.SPECTRUM_SAMPLES
    assert init["verdict"] in ("isometric", "ill-conditioned", "collapsing", "exploding")
    assert (out / "figures" / "spectrum.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "results.json").read_text())["spectra"]["init"]["chi"] == init["chi"]


def test_diagnose_spectrum_table(cli, tmp_path):
    code, stdout, _ = cli("diagnose", "--arch", "16x2", "--spectrum", "--figure", tmp_path / "flow.png")
    assert code == 0 and "Jacobian spectrum" in stdout and "chi" in stdout
    assert (tmp_path / "spectrum.png").is_file()


def test_diagnose_without_spectrum_has_no_spectra(cli, tmp_path):
    code, stdout, _ = cli("diagnose", "--arch", "8", "--figure", tmp_path / "flow.png", "--json")
    assert code == 0 and "spectra" not in json.loads(stdout) and not (tmp_path / "spectrum.png").exists()


def test_spectrum_follows_the_seed():
    ds = data.load("digits")
    config = experiment.Config(arch=(16, 16), activation="tanh", spectrum=True)
    a = experiment.measure_all(config, ds.x_train, ds.y_train)[1]["init"]
    b = experiment.measure_all(config, ds.x_train, ds.y_train)[1]["init"]
    assert a.values.equal(b.values)


def test_init_list_shows_the_isometry_schemes(cli):
    code, stdout, _ = cli("init", "list", "--json")
    names = {row["name"]: row for row in json.loads(stdout)}
    assert code == 0 and "Xiao" in names["delta_orthogonal"]["paper"]
    assert "Pennington" in names["critical"]["paper"] and "sigma_b" in names["critical"]["options"]


def test_diagnose_critical_bad_nonlinearity_is_one_line(cli, tmp_path):
    code, _, err = cli("diagnose", "--arch", "8", "--init", "critical", "--init-opt", "nonlinearity=relu",
                       "--out", tmp_path / "run")
    assert code == 2 and "He's start" in err and err.count("\n") == 1 and not (tmp_path / "run").exists()
