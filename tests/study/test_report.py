"""The study report tells the truth (issue 19): answers first, paired Holm-corrected comparisons,
the learning-rate grid, provenance, a zero output layer not called vanishing, figures at full
width with colour bars, a clean page in headless Chromium, and `neuralsmith report RUN`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from neuralsmith import plots
from neuralsmith.study import StudySpec, run, stats

TINY = dict(depths=(1, 2), starts=("default", "uniform", "he", "sda"), seeds=3, epochs=2, hidden=16,
            families=("uniform", "sda"), function_space_examples=30, pretrain_epochs=1, lr_grid=(0.05, 0.2))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, run(StudySpec(**TINY), out, progress=False)


def _html(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


def test_the_page_answers_first_then_shows_figures_table_and_provenance(tiny):
    out, results = tiny
    page = _html(out)
    order = [page.index(s) for s in ("Does unsupervised pre-training help", "Pre-training",
                                     "<h2>Figures", "<h2>Every start and depth", "<h2>Learning-rate grid",
                                     "<h2>How this was made")]
    assert order == sorted(order)
    assert results["verdict"] in page.replace("&#x27;", "'")
    for fact in ("torch", "numpy", "neuralsmith", results["provenance"]["data"]["sha256"], "wall time",
                 "lr_grid"):
        assert fact in page
    assert len(results["answers"]) == 2 and all(a["best_random"] in ("default", "uniform", "he")
                                                for a in results["answers"])


def test_comparisons_are_paired_and_holm_corrected_over_the_page(tiny):
    _, results = tiny
    comps = results["comparisons"]
    assert {c["role"] for c in comps} == {"best random", "default"}
    assert [c["p_holm"] for c in comps] == pytest.approx(stats.holm([c["p"] for c in comps]), nan_ok=True)
    for c in comps:  # a start is never compared with itself, and best random is the best other non-pre-trained start
        assert c["against"] != c["start"]


def test_the_grid_keeps_the_rate_with_the_lowest_median_validation_error(tiny):
    out, _ = tiny
    for path in (out / "trials").glob("*.json"):
        record = json.loads(path.read_text())
        grid = record["grid"]
        assert [g["lr"] for g in grid] == list(TINY["lr_grid"])
        best = min(grid, key=lambda g: g["selection_score"])
        assert record["lr"] == best["lr"]


def test_a_zero_output_layer_is_not_labelled_vanishing(tiny):
    out, _ = tiny
    record = json.loads((out / "trials" / "depth2-sda.json").read_text())
    assert record["gradient_flow_init"]["verdict"] == "blocked"
    assert record["gradient_flow_init"]["grad_norm"][0] == 0.0


def test_function_space_has_both_methods_a_colour_bar_per_family_and_chance(tiny):
    _, results = tiny
    fs = results["function_space"]
    assert 0.0 <= fs["knn_accuracy"] <= 1.0 and fs["chance"] == pytest.approx(stats.chance_knn([3, 3]))
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(12, 2))
    fig = plots.function_space([(pts, "t-SNE"), (pts, "ISOMAP")], np.repeat([0, 1], 6),
                               np.tile(np.arange(3), 4), ("a", "b"))
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2 and all(b.get_ylabel().startswith("epoch") for b in bars)


def _strip_time(page: str) -> str:
    return re.sub(r"<span id='generated'>[^<]*</span>", "", page)


def test_report_command_rebuilds_the_page_byte_for_byte_apart_from_its_time(tiny, cli):
    out, _ = tiny
    before = _html(out)
    code, _, err = cli("report", out, "--quiet")
    assert code == 0, err
    assert _strip_time(_html(out)) == _strip_time(before)
    assert "<span id='generated'>" in before


def test_report_command_on_a_partial_run_says_so(tiny, tmp_path, cli):
    out, _ = tiny
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    for p in ("results.json", "report.html"):
        (partial / p).unlink()
    for p in (partial / "trials").glob("depth2-*"):
        p.unlink()
    code, out_text, err = cli("report", partial, "--json")
    assert code == 0, err
    assert json.loads(out_text)["partial"] is True
    assert "Partial run" in _html(partial)


def test_report_command_refuses_a_folder_that_is_not_a_study(tmp_path, cli):
    code, _, err = cli("report", tmp_path)
    assert code == 2 and "config.toml" in err and len(err.strip().splitlines()) == 1


CHECK = """() => {
  const W = document.documentElement.clientWidth;
  const imgs = Array.from(document.images).filter(i => i.getAttribute('src'));
  const text = Array.from(document.querySelectorAll('body *')).filter(e =>
      Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()) && e.getClientRects().length);
  return {
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).length,
    images: imgs.length,
    narrow: imgs.filter(i => i.getBoundingClientRect().width + 1 <
                              Math.min(i.naturalWidth, i.parentElement.clientWidth)).map(i => i.alt),
    wide: Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().width > W + 1)
                .map(e => e.tagName),
    scroll: document.documentElement.scrollWidth - W,
    small: text.filter(e => parseFloat(getComputedStyle(e).fontSize) < 10).map(e => e.tagName),
    mark: document.body.getAttribute('data-broken-images'),
  };
}"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
@pytest.mark.parametrize("width", [1280, 800])
def test_report_is_clean_in_headless_chromium(tiny, width):
    playwright = pytest.importorskip("playwright.sync_api")
    out, _ = tiny
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": 900})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto((out / "report.html").as_uri(), wait_until="load")
            facts = tab.evaluate(CHECK)
            tab.click("th:has-text('median (%)')")  # the sortable table sorts without an error
            tab.click("figure img >> nth=0")  # and a figure enlarges on click
            assert tab.is_visible("#zoom")
        finally:
            browser.close()
    assert errors == []
    assert facts["broken"] == 0 and facts["mark"] == "0" and facts["images"] >= 5
    assert facts["narrow"] == [] and facts["wide"] == [] and facts["scroll"] <= 0
    assert facts["small"] == []
