"""A study's summary (results.json, results.csv), figures and self-contained report.html.

The page answers the study's question first (did pre-training help, at which depth, against
the best random start and PyTorch's default; :mod:`neuralsmith.study.findings`), then shows
the evidence: the figures with captions that say what to see, the full table (sortable), the
learning-rate grid when one was searched, and how the run was made (settings, versions, data
checksum, machine, wall time; :mod:`neuralsmith.study.provenance`).

Divergence is a result, not a crash: a member whose training loss ends non-finite is counted
(``diverged`` per row, ``diverged_members`` overall), left out of the function-space embedding
(which cannot place NaN outputs), and marked on the box plots, which draw the finite errors.

:func:`write_report` reads only what is on disk (trial records, tensors, provenance), so
:func:`rebuild` remakes the same page from a finished or partial run without training.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralsmith import plots
from neuralsmith.diagnostics import BLOCKED
from neuralsmith.runfolder import RunFolder, atomic_write_text, load_toml, read_json, toml_ready
from neuralsmith.study import findings, function_space, page, provenance, stats
from neuralsmith.study.findings import PRETRAINED
from neuralsmith.study.spec import StudySpec
from neuralsmith.study.runner import SPECTRUM_SAMPLES as SPECTRUM_INPUTS
from neuralsmith.study.store import TrialStore

GENERATED = "<span id='generated'>"  # the one part of the page that differs when it is rebuilt

def function_space_figure(spec: StudySpec, store: TrialStore, depth: int) -> tuple[Any, dict[str, Any]] | None:
    """Both families' trajectories embedded together by t-SNE and ISOMAP, and their separability.

    Returns:
        The figure and ``{"knn_accuracy", "chance", "networks", "left_out"}``: leave-one-out
        1-NN accuracy of telling the families apart from their final points in the full
        function space, and its chance level (:func:`neuralsmith.study.stats.chance_knn`).
    """
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
    panels = [(function_space.embed(points, m, seed=spec.seed), NAMES[m]) for m in function_space.METHODS]
    left_out = 2 * spec.seeds - sum(sizes)
    title = (f"{sizes[0]} {spec.families[0]} and {sizes[1]} {spec.families[1]} networks, depth {depth}, "
             f"epochs 0-{n_epochs - 1}" + (f"; {left_out} diverged left out" if left_out else ""))
    fig = plots.function_space(panels, family, epoch, tuple(spec.families), title)
    return fig, {"knn_accuracy": score, "chance": stats.chance_knn(sizes), "networks": sum(sizes),
                 "left_out": left_out}


NAMES = {"tsne": "t-SNE", "isomap": "ISOMAP"}


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
                  if r["depth"] == d} for d in spec.depths if any(r["depth"] == d for r in records)}
    fig = plots.error_boxplots(errors, f"{spec.name}: test error of each seed, by start and depth")
    for ax, depth in zip(fig.axes, sorted(errors)):
        top = ax.get_ylim()[1]
        for i, r in enumerate(r for r in records if r["depth"] == depth):
            if sum(r["diverged"]):
                ax.plot(i + 1, top, "x", color="red", clip_on=False)
                ax.annotate(f"{sum(r['diverged'])} diverged", (i + 1, top), fontsize=8, color="red",
                            ha="center", va="bottom", xytext=(0, 4), textcoords="offset points")
    return fig


def _flow_notes(records: list[dict[str, Any]], key: str) -> dict[str, str]:
    """Legend notes for starts whose gradient flow is blocked by a zero output layer."""
    return {r["start"]: "zero output layer: no gradient below it at step 0" for r in records
            if r[key].get("verdict") == BLOCKED}


def _figures(spec: StudySpec, records: list[dict[str, Any]], store: TrialStore, run: RunFolder,
             image_shape: tuple[int, int] | None) -> tuple[dict[str, Path], dict[str, Any]]:
    deepest = max(r["depth"] for r in records)
    at_deep = [r for r in records if r["depth"] == deepest]
    figs = {
        "test_error_boxplots": error_boxplots(spec, records),
        "learning_curves": plots.learning_curves(
            {r["start"]: np.nanmean(np.array(r["curves"]["test_error"], dtype=float), axis=1).tolist()
             for r in at_deep}, title=f"mean test error over seeds after each epoch, depth {deepest}"),
        "gradient_flow_init": plots.layer_lines(
            {r["start"]: r["gradient_flow_init"]["grad_norm"] for r in at_deep},
            title=f"weight-gradient norm by layer at the start, depth {deepest}",
            notes=_flow_notes(at_deep, "gradient_flow_init")),
        **_spectrum_figure(spec, records),
        "gradient_flow_trained": plots.layer_lines(
            {r["start"]: r["gradient_flow_trained"]["grad_norm"] for r in at_deep},
            title=f"weight-gradient norm by layer after fine-tuning, depth {deepest}"),
    }
    separability: dict[str, Any] = {}
    made = function_space_figure(spec, store, deepest)
    if made is not None:
        figs["function_space"], separability = made
    figs.update(_filters_and_sigmoid(spec, store, deepest, image_shape))
    return {name: plots.save(fig, run.figures / f"{name}.png") for name, fig in figs.items()}, separability


def _spectrum_figure(spec: StudySpec, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Jacobian spectra at the start, one panel per depth, one line per start (if recorded)."""
    panels = {f"depth {d}": {_spectrum_label(r): (r["spectrum_init"]["edges"], r["spectrum_init"]["density"])
                             for r in records if r["depth"] == d and "spectrum_init" in r} for d in spec.depths}
    panels = {title: curves for title, curves in panels.items() if curves}
    return {"spectrum_init": plots.spectrum_density(panels, n_cols=min(3, len(panels)),
                                                     shared_legend=True)} if panels else {}


def _spectrum_label(record: dict[str, Any]) -> str:
    """A start's name; a zero output layer (Jacobian exactly 0, nothing to draw) says so."""
    blocked = record["gradient_flow_init"].get("verdict") == BLOCKED
    return f"{record['start']} (zero output layer: J = 0)" if blocked else record["start"]


def _spectrum_section(records: list[dict[str, Any]]) -> str:
    """chi, spread, condition number and verdict of each trial's Jacobian at the start."""
    rows = [r for r in records if "spectrum_init" in r]
    if not rows:
        return ""
    cols = ["depth", "start", "chi (mean s²)", "spread (decades)", "condition", "zero s", "verdict"]
    body = [[r["depth"], r["start"], _g(s["chi"]), _g(s["spread"]), _g(s["condition"]),
             f"{100 * s.get('zero_fraction', 0.0):.0f}%", s["verdict"]] for r in rows for s in [r["spectrum_init"]]]
    return ("<h2>Input-output Jacobian at the start</h2><p class='muted'>Singular values s of dy/dx on "
            f"{SPECTRUM_INPUTS} training inputs, pooled over seeds (neuralsmith.spectrum; thresholds there): chi "
            "below 0.1 is collapsing, above 10 exploding, a 5-95% spread above one decade ill-conditioned, "
            "else isometric.</p><div class='table-wrap'>" + page.html_table(cols, body) + "</div>")


def _g(value: float | None) -> tuple[str, float] | str:
    """A number in 3 significant digits, sortable; None (a stored NaN or infinity) as "inf/nan"."""
    return "inf/nan" if value is None else (f"{value:.3g}", value)


def _filters_and_sigmoid(spec: StudySpec, store: TrialStore, depth: int,
                         image_shape: tuple[int, int] | None) -> dict[str, Any]:
    figs = {}
    shown = next((s for s in (*PRETRAINED, *spec.starts) if s in spec.starts and store.done(depth, s)), None)
    if shown is not None and image_shape is not None:
        w = store.load(depth, shown)[1]["first_layer"]
        figs["filters"] = plots.image_grid(w[:100], image_shape, f"first-layer filters after fine-tuning ({shown})")
    figs["sigmoid_derivative"] = plots.sigmoid_derivative()
    return figs


def _csv(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["depth", "start", "seed", "lr", "test_error", "final_test_error", "diverged"])
    for r in records:
        for s, (e, f, d) in enumerate(zip(r["test_error"], r["final_test_error"], r["diverged"])):
            writer.writerow([r["depth"], r["start"], s, r.get("lr", ""), e, f, d])
    return buf.getvalue()


def write_report(spec: StudySpec, records: list[dict[str, Any]], out: str | Path, facts: dict[str, Any],
                 seconds: float, *, failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write results.json, results.csv, figures/*.png and a self-contained report.html.

    Args:
        records: the finished trials (all of them, or those of a partial run).
        facts: the run's provenance (:func:`neuralsmith.study.provenance.collect`).
        seconds: the study's wall time (for a partial run, the finished trials' own time).
        failed: trials that failed on a cluster (named on the page).
    """
    run, store = RunFolder(out), TrialStore(out)
    rows, comparisons = findings.summarize(records), findings.compare(records)
    found = findings.answers(rows, comparisons)
    shape = tuple(facts["data"]["image_shape"]) if facts.get("data", {}).get("image_shape") else None
    figures, separability = _figures(spec, records, store, run, shape)
    diverged, members = sum(r["diverged"] for r in rows), sum(r["seeds"] for r in rows)
    trials = len(spec.depths) * len(spec.starts)
    results = {"spec": spec.to_dict(), "data": facts.get("data", {}), "summary": rows,
               "comparisons": comparisons, "answers": found, "verdict": findings.verdict(found),
               "diverged_members": diverged, "members": members, "function_space": separability,
               "seconds": seconds, "partial": len(records) < trials, "trials_done": len(records),
               "trials": trials, "provenance": facts, "failed": failed or []}
    run.write_results(results, seed=spec.seed)
    atomic_write_text(run.path / "results.csv", _csv(records))
    html_page = page.document(f"neuralsmith study: {spec.name}",
                              _body(spec, results, rows, comparisons, found, figures, records))
    atomic_write_text(run.path / "report.html", html_page)
    return results


QUESTION = ("Does unsupervised pre-training help a deep network, at which depth, and compared with the best "
            "modern random start? (after Erhan et al. 2010, <i>Why does unsupervised pre-training help deep "
            "learning?</i>)")


def _body(spec: StudySpec, results: dict[str, Any], rows: list[dict[str, Any]],
          comparisons: list[dict[str, Any]], found: list[dict[str, Any]], figures: dict[str, Path],
          records: list[dict[str, Any]]) -> str:
    return "".join([
        f"<h1>neuralsmith study: {page.esc(spec.name)}</h1>",
        _opening(spec, results, rows, found),
        "<h2>Figures</h2>", _figure_list(spec, results, figures),
        "<h2>Every start and depth</h2>", _results_table(rows, comparisons),
        _grid_section(spec, records),
        _spectrum_section(records),
        "<h2>How this was made</h2>", _provenance(spec, results),
    ])


def _budget(spec: StudySpec, data: dict[str, Any]) -> str:
    tuned = (f"its learning rate chosen per start and depth from {list(spec.lr_grid)} by median validation "
             "error" if spec.lr_grid else f"learning rate {spec.lr:g} for every start (not tuned)")
    pre = (f"; pre-training ({', '.join(s for s in spec.starts if s in PRETRAINED)}) {spec.pretrain_epochs} epochs per layer"
           if any(s in PRETRAINED for s in spec.starts) else "")
    return (f"<p><b>Data</b>: {page.esc(data.get('name', spec.data))}, {data.get('n_train', '?')} training, "
            f"{data.get('n_valid', '?')} validation and {data.get('n_test', '?')} test examples. "
            f"<b>Networks</b>: {spec.activation} MLPs, {spec.hidden} units per hidden layer, depths "
            f"{', '.join(map(str, spec.depths))}; {spec.seeds} seeds per start and depth. <b>Budget</b>: "
            f"{spec.epochs} epochs of SGD (momentum {spec.momentum:g}, batch {spec.batch_size}), {tuned}; the "
            f"test error is read at each network's best validation epoch{pre}.</p>")


def _opening(spec: StudySpec, results: dict[str, Any], rows: list[dict[str, Any]],
             found: list[dict[str, Any]]) -> str:
    partial = (f"<p class='flag'><b>Partial run</b>: {results['trials_done']} of {results['trials']} trials "
               "finished; the page shows those.</p>" if results["partial"] else "")
    answers = "".join(f"<li>{page.esc(findings.sentence(a))}</li>" for a in found)
    return (f"<p class='lead'>{QUESTION}</p>{partial}{_budget(spec, results['data'])}"
            f"<p class='lead'><b>{page.esc(results['verdict'])}</b></p><ul class='answers'>{answers}</ul>"
            f"{_chance_flags(spec, rows)}{_glance(found)}{_diverged(results)}")


def _chance_flags(spec: StudySpec, rows: list[dict[str, Any]]) -> str:
    stuck = [f"{r['start']} (depth {r['depth']}, {r['median']:.1f}%)" for r in rows if r["at_chance"]]
    if not stuck:
        return ""
    tried = "at every learning rate tried" if spec.lr_grid else f"at the one learning rate used ({spec.lr:g})"
    return (f"<p class='flag'>At chance {tried}: " + page.esc(", ".join(stuck)) +
            ". These did not start learning within the budget, so their result says as much about the "
            "budget as about the start.</p>")


def _glance(found: list[dict[str, Any]]) -> str:
    cols = ["depth", "best start", "best random start", "best pre-trained", "pre-trained − best random (points)",
            "95% CI (unadjusted)", "Holm p", "pre-training helped?"]
    body = []
    for a in found:
        m, c = a["medians"], a["versus_best_random"] or {}
        name = lambda s: f"{s} ({m[s]:.2f}%)" if s else "—"  # noqa: E731
        body.append([a["depth"], name(a["winner"]), name(a["best_random"]), name(a["best_pretrained"]),
                     (page.number(c.get("mean_diff"), signed=True), c.get("mean_diff", "")),
                     _ci(c), (page.number(c.get("p_holm"), 3), c.get("p_holm", "")), a["helped"]])
    return "<div class='table-wrap'>" + page.html_table(cols, body) + "</div>"


def _ci(c: dict[str, Any]) -> str:
    if not c or math.isnan(c.get("ci_low", math.nan)):
        return ""
    return f"{c['ci_low']:+.2f} to {c['ci_high']:+.2f}"


def _diverged(results: dict[str, Any]) -> str:
    diverged, members = results["diverged_members"], results["members"]
    if not diverged:
        return f"<p class='muted'>No network diverged ({members} trained).</p>"
    return (f"<p class='flag'><b>{diverged} of {members} networks diverged</b> (non-finite training loss): "
            "they are left out of the function-space embedding and marked &times; on the box plots; their "
            "test error is the one at their best validation epoch, if finite.</p>")


def _captions(spec: StudySpec, results: dict[str, Any]) -> dict[str, str]:
    """What each figure shows and what to look for."""
    deepest, fs = max(r["depth"] for r in results["summary"]), results["function_space"]
    sep = (f" Telling the two families apart from their final points by their nearest neighbour works "
           f"{fs['knn_accuracy']:.0%} of the time (leave-one-out 1-NN; chance {fs['chance']:.0%}): far above "
           "chance means the two starts end in different regions of function space." if fs else "")
    return {
        "test_error_boxplots": "Test error of every network, by start (x axis) and depth (panel). Boxes span the "
            "quartiles over seeds, the line is the median, the triangle the mean. Lower is better: look for "
            "the pre-trained starts (dbn, sda) pulling ahead of the random ones as depth grows.",
        "learning_curves": f"Mean test error over the {spec.seeds} seeds after each fine-tuning epoch at depth "
            f"{deepest}. A curve that stays flat near chance ({_chance_text(results)}) never started learning.",
        "gradient_flow_init": f"Weight-gradient norm of each layer at the start, depth {deepest} (mean over "
            "seeds, log scale). A line that falls towards layer 1 is a vanishing gradient. A pre-trained stack's "
            "classifier starts at zero, so at step 0 no gradient reaches the layers below it: such a line is "
            "labelled 'zero output layer' and is not vanishing (it flows after the first update).",
        "spectrum_init": "Density of the singular values s of the input-output Jacobian dy/dx at the start "
            "(log10 s, exact, a few training inputs pooled over seeds), one panel per depth. All mass at s = 1 "
            "is dynamical isometry (Pennington et al. 2017): every input direction passes gradients unchanged; "
            "a wide spread means a few directions dominate (ill-conditioned), mass far below 1 a collapse.",
        "gradient_flow_trained": "The same after fine-tuning: which layers still receive a gradient.",
        "function_space": f"Where {spec.families[0]} and {spec.families[1]} networks go in function space "
            f"(Erhan et al. 2010, figure 5): each dot is one network's outputs on {spec.function_space_examples} "
            "fixed test images at one epoch, embedded in 2-D by t-SNE (left) and ISOMAP (right); every "
            "trajectory starts at epoch 0 (light) and darkens with training (colour bars)." + sep,
        "filters": "First-layer weights after fine-tuning, one image per hidden unit (scaled each on its own).",
        "sigmoid_derivative": "The logistic sigmoid's derivative is at most 1/4: through k sigmoid layers a "
            "gradient picks up a factor of at most (1/4)^k before the weights are counted.",
    }


def _chance_text(results: dict[str, Any]) -> str:
    classes = results["data"].get("n_classes")
    return f"{100 * (1 - 1 / classes):.0f}% for {classes} classes" if classes else "the majority-class error"


def _figure_list(spec: StudySpec, results: dict[str, Any], figures: dict[str, Path]) -> str:
    captions = _captions(spec, results)
    return "".join(page.figure(path, captions.get(name, page.esc(name))) for name, path in figures.items())


def _results_table(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]]) -> str:
    cols = ["depth", "start", "lr", "median (%)", "mean ± std", "vs best random (points)", "95% CI", "Holm p",
            "vs default (points)", "Holm p ", "diverged", "note"]
    body = []
    for r in rows:
        vb = _comparison(comparisons, r, "best random")
        vd = _comparison(comparisons, r, "default")
        body.append([r["depth"], r["start"], "" if r["lr"] is None else f"{r['lr']:g}",
                     (page.number(r["median"]), r["median"]), f"{page.number(r['mean'])} ± {page.number(r['std'])}",
                     _delta(vb), _ci(vb), _p(vb), _delta(vd), _p(vd), r["diverged"],
                     "at chance" if r["at_chance"] else ""])
    return ("<p class='muted'>Click a column heading to sort. Differences are paired by seed (negative: this "
            "start has the lower error); the p-values are paired t-tests corrected together by Holm's method "
            f"over all {len(comparisons)} comparisons on this page (the intervals are not adjusted, so one "
            "may exclude zero while its corrected p is above 0.05).</p><div class='table-wrap'>"
            + page.html_table(cols, body) + "</div>")


def _comparison(comparisons: list[dict[str, Any]], row: dict[str, Any], role: str) -> dict[str, Any]:
    return next((c for c in comparisons if (c["depth"], c["start"], c["role"]) ==
                 (row["depth"], row["start"], role)), {})


def _delta(c: dict[str, Any]) -> tuple[str, Any] | str:
    if not c:
        return ""
    return (f"{page.number(c['mean_diff'], signed=True)} vs {page.esc(c['against'])}", c["mean_diff"])


def _p(c: dict[str, Any]) -> tuple[str, Any] | str:
    return (page.number(c["p_holm"], 3), c["p_holm"]) if c else ""


def _grid_section(spec: StudySpec, records: list[dict[str, Any]]) -> str:
    if not spec.lr_grid:
        return ""
    cols = ["depth", "start", *[f"lr {lr:g}" for lr in spec.lr_grid], "kept"]
    body = [[r["depth"], r["start"], *[_grid_cell(g) for g in r["grid"]], f"{r['lr']:g}"] for r in records]
    return ("<h2>Learning-rate grid</h2><p class='muted'>Each cell: median validation error (the choice) / "
            "median test error, over all seeds; the kept rate has the lowest median validation error. "
            "'chance' marks a rate at which the start did not learn.</p><div class='table-wrap'>"
            + page.html_table(cols, body) + "</div>")


def _grid_cell(g: dict[str, Any]) -> tuple[str, Any]:
    text = f"{page.number(g['selection_score'])} / {page.number(g['median_test_error'])}"
    return (text + (" chance" if g["at_chance"] else ""), g["selection_score"])


def _provenance(spec: StudySpec, results: dict[str, Any]) -> str:
    facts, data = results["provenance"], results["data"]
    machine = facts.get("machine", {})
    items = {
        "wall time": f"{results['seconds']:.0f} s" + (" (finished trials only)" if results["partial"] else ""),
        **{k: v for k, v in facts.get("versions", {}).items()},
        "machine": f"{machine.get('processor', '?')}, {machine.get('cpus', '?')} CPUs, "
                   f"{machine.get('torch_threads', '?')} torch threads; {machine.get('platform', '?')}",
        "data": f"{data.get('name', '?')} from {data.get('source', '?')}",
        "data sha256": data.get("sha256", "not recorded"),
        "started": facts.get("started") or "not recorded",
        "report generated": f"{GENERATED}{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}</span>",
    }
    rows = "".join(f"<dt>{page.esc(k)}</dt><dd>{v if k == 'report generated' else page.esc(v)}</dd>"
                   for k, v in items.items())
    config = page.esc(_toml({"kind": "study", "study": spec.to_dict()}))
    return (f"<dl>{rows}</dl><details><summary>The settings (<code>config.toml</code>; rerun with "
            f"<code>neuralsmith study --config config.toml</code>)</summary><pre>{config}</pre></details>")


def _toml(record: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(toml_ready(record))


def rebuild(out: str | Path) -> dict[str, Any]:
    """Remake report.html, results.json/.csv and the figures of a study run folder, training nothing.

    Works on a finished run and on a partial one (the finished trials). The page equals the
    one the run wrote, byte for byte, apart from the time it was generated.

    Raises:
        FileNotFoundError: when ``out`` has no ``config.toml``.
        ValueError: when ``out`` is not a single study's run folder, or has no finished trial.
    """
    out = Path(out)
    if not (out / "config.toml").is_file():
        raise FileNotFoundError(f"{out} has no config.toml: give the folder a study wrote (its --out)")
    config = load_toml(out / "config.toml")
    if config.get("kind") != "study":
        raise ValueError(f"{out} holds a {config.get('kind')!r} run, not a study; for a suite give "
                         f"one data set's folder, e.g. {out}/DATA")
    spec = StudySpec.from_mapping(config["study"], where=str(out / "config.toml"))
    store = TrialStore(out)
    records = [store.load(d, s)[0] for d in spec.depths for s in spec.starts if store.done(d, s)]
    if not records:
        raise ValueError(f"{out} has no finished trial yet: nothing to report")
    done = read_json(out / "results.json") if (out / "results.json").is_file() else {}
    finished = done.get("partial") is False or (done and "partial" not in done)
    seconds = done["seconds"] if finished else sum(r["seconds"] for r in records)
    return write_report(spec, records, out, provenance.load(out), seconds, failed=done.get("failed") or [])
