"""Divergence is a result, not a crash (issue 17): a study whose every member diverges still reports."""

from __future__ import annotations

import json

import torch

from neuralsmith.study.report import finite_members

DIVERGING = """[study]
name = "diverging"
depths = [1]
starts = ["default", "uniform", "dbn"]
families = ["uniform", "dbn"]
seeds = 2
hidden = 8
epochs = 2
lr = 1e38
momentum = 0.0
pretrain_epochs = 1
function_space_examples = 10
n_train = 200
"""


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_a_study_whose_members_all_diverge_writes_its_report_and_resumes(cli, tmp_path):
    config, out = tmp_path / "study.toml", tmp_path / "run"
    config.write_text(DIVERGING)
    code, stdout, err = cli("study", "--config", config, "--out", out, "--json", "--quiet")
    assert code == 0, err
    printed = _strict(stdout)
    assert printed["diverged_members"] == printed["members"] == 6
    assert all(row["diverged"] == 2 for row in printed["summary"])
    on_disk = _strict((out / "results.json").read_text())
    assert on_disk["diverged_members"] == 6
    page = (out / "report.html").read_text()
    assert "6 of 6 networks diverged" in page
    assert (out / "figures" / "test_error_boxplots.png").is_file()
    assert not list((out / "figures").glob("function_space_*"))  # nothing finite to embed
    code, stdout, err = cli("study", "--config", config, "--out", out, "--resume", "--json", "--quiet")
    assert code == 0, err
    assert _strict(stdout)["diverged_members"] == 6


def test_diverged_members_are_left_out_of_the_embedding():
    t = torch.rand(4, 3, 5)
    t[3, 1, 2] = float("nan")
    t[2, 2, 0] = float("inf")
    kept = finite_members(t)
    assert kept.shape == (4, 1, 5) and torch.equal(kept[:, 0], t[:, 0])
