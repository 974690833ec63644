"""A study's summary (results.json, results.csv), figures and self-contained report.html.

Divergence is a result, not a crash: a member whose training loss ends non-finite is counted
(``diverged`` per row, ``diverged_members`` overall), left out of the function-space embedding
(which cannot place NaN outputs), and marked on the box plots, which draw the finite errors.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralsmith import plots
from neuralsmith.runfolder import RunFolder, atomic_write_text
from neuralsmith.study import function_space
from neuralsmith.study.spec import StudySpec
from neuralsmith.study.store import TrialStore

PRETRAINED = ("dbn", "sda", "dbm")


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); NaN when undefined."""
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return math.nan
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (depth, start): median, mean, std of test error, p-value against ``default``."""
    baseline = {r["depth"]: r["test_error"] for r in records if r["start"] == "default"}
    rows = []
    for r in records:
        e = [v for v in r["test_error"] if math.isfinite(v)]
        rows.append({"depth": r["depth"], "start": r["start"], "seeds": r["seeds"],
                     "median": statistics.median(e) if e else math.nan,
                     "mean": statistics.fmean(e) if e else math.nan,
                     "std": statistics.stdev(e) if len(e) > 1 else math.nan,
                     "p_vs_default": welch_p(e, baseline.get(r["depth"], [])) if r["start"] != "default" else math.nan,
                     "diverged": sum(r["diverged"]), "seconds": r["seconds"]})
    return rows


def pretraining_verdict(rows: list[dict[str, Any]]) -> str:
    """Plain words: do the pre-trained starts beat the uniform baseline at the deepest depth?"""
    deepest = max(r["depth"] for r in rows)
    at = {r["start"]: r["median"] for r in rows if r["depth"] == deepest and math.isfinite(r["median"])}
    if "uniform" not in at or not any(s in at for s in PRETRAINED):
        return ("The study has no finite result for a pre-trained start or for the uniform baseline "
                "(not run, or diverged): no verdict on pre-training.")
    parts = []
    for s in (p for p in PRETRAINED if p in at):
        verb = "beats" if at[s] < at["uniform"] else "does not beat"
        parts.append(f"{s} ({at[s]:.2f}%) {verb} the uniform baseline ({at['uniform']:.2f}%)")
    return f"At depth {deepest} (median test error over seeds): " + "; ".join(parts) + "."


def function_space_figure(spec: StudySpec, store: TrialStore, depth: int,
                          method: str) -> tuple[Any, float] | None:
    """The two families' trajectories embedded together, and their final-point separability."""
    if any(not store.done(depth, f) for f in spec.families):
        return None
    trajectories = [finite_members(store.load(depth, f)[1]["function_space"].float()) for f in spec.families]
    sizes = [t.shape[1] for t in trajectories]
    if min(sizes) < 1:  # a family with every member diverged: nothing of it to place
        return None
    points = torch.cat([t.transpose(0, 1).flatten(0, 1) for t in trajectories]).numpy()  # (S*T, d)
    n_epochs = trajectories[0].shape[0]
    family = np.repeat([0, 1], [s * n_epochs for s in sizes])
    epoch = np.tile(np.arange(n_epochs), sum(sizes))
    finals = torch.cat([t[-1] for t in trajectories]).numpy()
    score = function_space.separability(finals, np.repeat([0, 1], sizes))
    emb = function_space.embed(points, method, seed=spec.seed)
    left_out = 2 * spec.seeds - sum(sizes)
    title = (f"{method} of {sizes[0]}+{sizes[1]} networks, depth {depth} (1-NN separability {score:.2f})"
             + (f"; {left_out} diverged left out" if left_out else ""))
    return plots.function_space(emb, family, epoch, tuple(spec.families), title), score


def finite_members(trajectory: torch.Tensor) -> torch.Tensor:
    """The members (dim 1) of a (epochs, members, d) trajectory whose outputs are all finite.

    Example:
        >>> t = torch.zeros(3, 2, 4); t[2, 1, 0] = float("nan")
        >>> finite_members(t).shape
        torch.Size([3, 1, 4])
    """
    keep = torch.isfinite(trajectory).flatten(2).all(dim=2).all(dim=0)
    return trajectory[:, keep]


def error_boxplots(spec: StudySpec, records: list[dict[str, Any]]) -> Any:
    """Box plots of the finite test errors; each start with diverged members gets a red x and the count."""
    errors = {d: {r["start"]: [e for e in r["test_error"] if math.isfinite(e)] for r in records
                  if r["depth"] == d} for d in spec.depths}
    fig = plots.error_boxplots(errors, f"{spec.name}: test error by start and depth")
    for ax, depth in zip(fig.axes, sorted(errors)):
        top = ax.get_ylim()[1]
        for i, r in enumerate(r for r in records if r["depth"] == depth):
            if sum(r["diverged"]):
                ax.plot(i + 1, top, "x", color="red", clip_on=False)
                ax.annotate(f"{sum(r['diverged'])} diverged", (i + 1, top), fontsize=7, color="red",
                            ha="center", va="bottom", xytext=(0, 4), textcoords="offset points")
    return fig


def _figures(spec: StudySpec, records: list[dict[str, Any]], store: TrialStore, run: RunFolder,
             image_shape: tuple[int, int] | None) -> tuple[dict[str, Path], dict[str, float]]:
    deepest = max(spec.depths)
    at_deep = [r for r in records if r["depth"] == deepest]
    figs = {
        "test_error_boxplots": error_boxplots(spec, records),
        "learning_curves": plots.learning_curves(
            {r["start"]: np.nanmean(np.array(r["curves"]["test_error"]), axis=1).tolist() for r in at_deep},
            title=f"mean test error over {spec.seeds} seeds, depth {deepest}"),
        "gradient_flow_init": plots.layer_lines(
            {r["start"]: r["gradient_flow_init"]["grad_norm"] for r in at_deep},
            title=f"weight-gradient norm by layer at initialization, depth {deepest}"),
        "gradient_flow_trained": plots.layer_lines(
            {r["start"]: r["gradient_flow_trained"]["grad_norm"] for r in at_deep},
            title=f"weight-gradient norm by layer after training, depth {deepest}"),
    }
    separability = {}
    for method in function_space.METHODS:
        made = function_space_figure(spec, store, deepest, method)
        if made is not None:
            figs[f"function_space_{method}"], separability["knn_accuracy"] = made
    figs.update(_filters_and_sigmoid(spec, store, deepest, image_shape))
    return {name: plots.save(fig, run.figures / f"{name}.png") for name, fig in figs.items()}, separability


def _filters_and_sigmoid(spec: StudySpec, store: TrialStore, depth: int,
                         image_shape: tuple[int, int] | None) -> dict[str, Any]:
    figs = {}
    shown = next((s for s in (*PRETRAINED, *spec.starts) if s in spec.starts and store.done(depth, s)), None)
    if shown is not None and image_shape is not None:
        w = store.load(depth, shown)[1]["first_layer"]
        figs["filters"] = plots.image_grid(w[:100], image_shape, f"first-layer filters ({shown})")
    if hasattr(plots, "sigmoid_derivative"):
        figs["sigmoid_derivative"] = plots.sigmoid_derivative()
    return figs


def _csv(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["depth", "start", "seed", "test_error", "final_test_error", "diverged"])
    for r in records:
        for s, (e, f, d) in enumerate(zip(r["test_error"], r["final_test_error"], r["diverged"])):
            writer.writerow([r["depth"], r["start"], s, e, f, d])
    return buf.getvalue()


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"><figcaption>{path.stem}</figcaption></figure>'


def _table(rows: list[dict[str, Any]]) -> str:
    head = "<tr><th>depth</th><th>start</th><th>median</th><th>mean &plusmn; std</th><th>p (Welch, vs default)</th><th>diverged</th></tr>"
    body = "".join(
        f"<tr><td>{r['depth']}</td><td>{html.escape(r['start'])}</td><td>{r['median']:.2f}</td>"
        f"<td>{r['mean']:.2f} &plusmn; {r['std']:.2f}</td><td>{_p(r['p_vs_default'])}</td><td>{r['diverged']}</td></tr>"
        for r in rows)
    return f"<table>{head}{body}</table>"


def _diverged(diverged: int, members: int) -> str:
    if not diverged:
        return f"<p>No network diverged ({members} trained).</p>"
    return (f"<p class='diverged'><b>{diverged} of {members} networks diverged</b> (non-finite training "
            "loss): they are left out of the function-space embedding and marked &times; on the box "
            "plots; their test error is the one at their best validation epoch, if finite.</p>")


def _p(p: float) -> str:
    return "" if math.isnan(p) else f"{p:.3g}"


# Marks the page once every image has loaded or failed, so a headless browser can check it.
_CHECK_IMAGES = ("<script>window.addEventListener('load',function(){var n=0;"
                 "for(var i of document.images){if(!i.complete||i.naturalWidth===0)n++;}"
                 "document.body.setAttribute('data-broken-images',String(n));});</script>")

_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
          "figure{display:inline-block;margin:8px}img{max-width:520px}")


def write_report(spec: StudySpec, records: list[dict[str, Any]], out: str | Path,
                 data_info: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Write results.json, results.csv, figures/*.png and a self-contained report.html."""
    run, store = RunFolder(out), TrialStore(out)
    rows = summarize(records)
    shape = tuple(data_info["image_shape"]) if data_info.get("image_shape") else None
    figures, separability = _figures(spec, records, store, run, shape)
    verdict = pretraining_verdict(rows)
    diverged, members = sum(r["diverged"] for r in rows), sum(r["seeds"] for r in rows)
    results = {"spec": spec.to_dict(), "data": data_info, "summary": rows, "verdict": verdict,
               "diverged_members": diverged, "members": members,
               "function_space": separability, "seconds": seconds}
    run.write_results(results, seed=spec.seed)
    atomic_write_text(run.path / "results.csv", _csv(records))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>neuralsmith study: {html.escape(spec.name)}</h1>"
            f"<p>{html.escape(data_info['name'])}: {data_info['n_train']} training, {data_info['n_test']} test examples; "
            f"{spec.activation} MLPs of {spec.hidden} units per layer, depths {list(spec.depths)}, "
            f"{spec.seeds} seeds per start, {spec.epochs} epochs of fine-tuning; {seconds:.0f} s.</p>"
            f"<p><b>{html.escape(verdict)}</b></p>{_diverged(diverged, members)}<h2>Test error (%)</h2>{_table(rows)}"
            f"<h2>Figures</h2>{''.join(_img(p) for p in figures.values())}{_CHECK_IMAGES}</body></html>")
    atomic_write_text(run.path / "report.html", page)
    return results
