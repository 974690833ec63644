"""The study end to end on a tiny spec: results, report, resume after a real kill, browser check."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from neuralsmith.study import StudySpec, run

TINY = dict(depths=(1, 2), starts=("default", "uniform", "sda"), seeds=3, epochs=2, hidden=16,
            families=("uniform", "sda"), function_space_examples=30, pretrain_epochs=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run(StudySpec(**TINY), out, progress=False)


def test_results_cover_every_trial(tiny_run):
    out, results = tiny_run
    assert {(r["depth"], r["start"]) for r in results["summary"]} == {
        (d, s) for d in TINY["depths"] for s in TINY["starts"]}
    assert all(0.0 <= r["median"] <= 100.0 for r in results["summary"])
    for name in ("report.html", "results.json", "results.csv", "config.toml"):
        assert (out / name).is_file()
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + len(TINY["depths"]) * len(TINY["starts"]) * TINY["seeds"]


def test_report_embeds_every_figure(tiny_run):
    out, _ = tiny_run
    page = (out / "report.html").read_text()
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert {"test_error_boxplots", "learning_curves", "function_space", "filters"} <= set(pngs)
    assert page.count("data:image/png;base64,") == len(pngs)
    assert "http://" not in page and "https://" not in page  # opens with no network


def test_function_space_number_is_reported(tiny_run):
    _, results = tiny_run
    assert 0.0 <= results["function_space"]["knn_accuracy"] <= 1.0


def test_seeded_study_is_reproducible(tiny_run, tmp_path):
    spec = StudySpec(**{**TINY, "depths": (1,), "starts": ("uniform",)})
    again = run(spec, tmp_path, progress=False)
    first = next(r for r in tiny_run[1]["summary"] if (r["depth"], r["start"]) == (1, "uniform"))
    assert again["summary"][0]["median"] == first["median"]


def test_killed_study_resumes_to_the_same_results(tmp_path):
    """Start the study in a subprocess, kill it after its first finished trial, resume."""
    spec = dict(TINY, starts=("default", "uniform"), depths=(1, 2, 3))
    config = tmp_path / "tiny.toml"
    config.write_text("[study]\n" + "\n".join(
        f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in spec.items()) + "\n")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "neuralsmith", "study", "--config", str(config), "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 120
    while not list((out / "trials").glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "trials").glob("*.json")))
    assert 1 <= done_before < 6
    assert subprocess.run(cmd + ["--resume"], env=env, check=False).returncode == 0
    straight = run(StudySpec(**spec), tmp_path / "straight", progress=False)
    resumed = json.loads((out / "results.json").read_text())
    assert [r["median"] for r in resumed["summary"]] == [r["median"] for r in straight["summary"]]
