"""A suite of studies over several data sets: the config, the interval, the table, the CLI end to end."""

import contextlib
import io
import json
import math
import re
from pathlib import Path

import pytest

from neuralsmith.cli import main
from neuralsmith.data import synthetic
from neuralsmith.runfolder import load_toml
from neuralsmith.study import StudySpec, SuiteSpec
from neuralsmith.study.papers import MODELS, paper_figure
from neuralsmith.study.suite import binomial_interval, data_folder, format_table, model_columns

LAROCHELLE = Path(__file__).resolve().parents[2] / "configs" / "larochelle2007.toml"

TINY = """
[study]
name = "tiny"
depths = [1, 3]
starts = ["uniform", "dbn"]
seeds = 1
hidden = 8
epochs = 1
pretrain_epochs = 1
validation = 0.2
function_space_examples = 20
families = ["uniform", "dbn"]
threads = 1

[suite]
data = ["rectangles", "convex"]

[suite.overrides.convex]
validation = 0.25
"""


def test_larochelle_config_is_a_suite_of_the_papers_sets_and_models():
    suite = SuiteSpec.from_toml(LAROCHELLE)
    assert suite.data[-3:] == ("rectangles", "rectangles-image", "convex")
    assert {"fashion-mnist-rot", "fashion-mnist-bg-rand", "fashion-mnist-bg-img",
            "fashion-mnist-rot-bg-img"} <= set(suite.data)
    assert [label for label, *_ in model_columns(suite.study)][:4] == list(MODELS)
    assert suite.spec_for("convex").validation == 0.25 and suite.spec_for("convex").data == "convex"
    assert suite.spec_for("fashion-mnist").validation == suite.study.validation
    assert StudySpec.from_toml(LAROCHELLE).hidden == suite.study.hidden  # the study reader takes it too


def test_interval_is_the_papers_binomial_interval_by_hand():
    # Larochelle et al. print NNet on mnist-basic as 4.69 +- 0.19 on 50 000 test images:
    # 100 * 1.96 * sqrt(0.0469 * 0.9531 / 50000) = 100 * 1.96 * 9.4552e-4 = 0.18532
    assert binomial_interval(4.69, 50000) == pytest.approx(0.18532, abs=1e-5)
    assert binomial_interval(50.0, 100) == pytest.approx(9.8)  # 1.96 * sqrt(0.25 / 100)
    assert binomial_interval(0.0, 10) == 0.0 and math.isnan(binomial_interval(math.nan, 10))


@pytest.mark.parametrize("error, n, match", [(5.0, 0, "n .* >= 1"), (101.0, 10, r"\[0, 100\]"),
                                             (-1.0, 10, r"\[0, 100\]")])
def test_interval_refuses_bad_input(error, n, match):
    with pytest.raises(ValueError, match=match):
        binomial_interval(error, n)


def test_table_prints_the_published_figure_beside_ours_with_its_source():
    row = dict(data="convex", model="DBN-3", error=20.0, interval=binomial_interval(20.0, 50000),
               paper=paper_figure("convex", "DBN-3").error, paper_source=paper_figure("convex", "DBN-3").source)
    text = format_table([row, {**row, "data": "fashion-mnist", "paper": None, "paper_source": None}])
    convex, fashion = (next(line for line in text.splitlines() if line.startswith(d)) for d in ("convex", "fashion"))
    assert "20.00 +- 0.35 [18.6]" in convex and "[" not in fashion
    assert "[18.6] convex DBN-3: Larochelle et al. (2007)" in text


@pytest.mark.parametrize("body, match", [
    ("[suite]\ndatas = ['convex']\n", "unknown key.*datas"),
    ("[study]\ndata = 'convex'\n[suite]\ndata = ['convex']\n", r"\[study\].*\[suite\] data"),
    ("[suite]\ndata = 'convex'\n", "must be a list"),
    ("[suite]\ndata = []\n", "one or more"),
    ("[suite]\ndata = ['convex']\n[suite.overrides.convex]\nvalidaton = 0.2\n", "overrides.convex.*validaton"),
])
def test_bad_suite_config_is_one_line_on_stderr(tmp_path, cli, body, match):
    (tmp_path / "s.toml").write_text(body)
    code, out, err = cli("study", "--config", tmp_path / "s.toml", "--out", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(match, err)


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    """The tiny suite run through the CLI, on generated sets of 120 + 300 images, cache isolated."""
    root = tmp_path_factory.mktemp("suite")
    (root / "tiny.toml").write_text(TINY)
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()) as stdout:
        mp.setenv("NEURALSMITH_CACHE", str(root / "cache"))
        for name in ("rectangles", "convex"):
            mp.setitem(synthetic.PAPER_SIZES, name, (120, 300))
        code = main(["study", "--config", str(root / "tiny.toml"), "--out", str(root / "run"), "--device", "cpu"])
    return code, stdout.getvalue(), root / "run"


def test_tiny_suite_runs_each_data_set_as_a_study(tiny_suite):
    code, _, out = tiny_suite
    assert code == 0
    for data in ("rectangles", "convex"):
        assert (out / data_folder(data) / "report.html").is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["rectangles"]["n_valid"] == 24 and results["data"]["convex"]["n_valid"] == 30
    config = load_toml(out / "config.toml")
    assert config["kind"] == "suite" and config["suite"]["overrides"] == {"convex": {"validation": 0.25}}
    assert SuiteSpec.from_toml(out / "config.toml") == SuiteSpec.from_toml(out.parent / "tiny.toml")


def test_tiny_suite_prints_and_writes_the_table_with_intervals(tiny_suite):
    _, stdout, out = tiny_suite
    table = (out / "table.txt").read_text()
    assert table in stdout
    header = table.splitlines()[1].split()
    assert header == ["data", "NNet", "DBN-1", "DBN-3", "uniform-3"]
    rows = json.loads((out / "results.json").read_text())["table"]
    assert len(rows) == 2 * 4
    for row in rows:
        assert row["n_test"] == 300
        assert row["interval"] == pytest.approx(binomial_interval(row["error"], 300))
        assert f"{row['error']:.2f} +- {row['interval']:.2f}" in table
    convex = next(line for line in table.splitlines() if line.startswith("convex"))
    assert "[18.6]" in convex  # the published DBN-3 figure, beside ours


@pytest.mark.parametrize("flags, match", [((), "--resume to continue it, --overwrite"),
                                          (("--resume", "--epochs", "2"), r"other settings \(study.epochs\)")])
def test_suite_rerun_is_refused_without_resume_or_with_other_settings(tiny_suite, cli, flags, match):
    _, _, out = tiny_suite
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    code, _, err = cli("study", "--config", out.parent / "tiny.toml", "--out", out, *flags)
    assert code == 2 and re.search(match, err)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
