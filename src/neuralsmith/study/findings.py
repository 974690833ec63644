"""What a study found: the table of starts, paired comparisons, and the answer per depth.

The question (Erhan et al. 2010): does unsupervised pre-training help, at which depth, and
against what? Each start is compared, seed by seed (:mod:`neuralsmith.study.stats`), with
the *best random start* at its depth (the non-pre-trained start with the lowest median test
error: a modern initializer, not the weakest rival) and with PyTorch's ``default``. All the
page's p-values are corrected together by Holm's method.

Example:
    >>> recs = [{"depth": 1, "start": s, "seeds": 3, "test_error": e, "diverged": [False] * 3,
    ...          "seconds": 1.0, "lr": 0.1, "grid": []}
    ...         for s, e in (("default", [9.0, 8.0, 9.5]), ("he", [3.0, 3.5, 2.5]), ("dbn", [2.0, 2.6, 2.1]))]
    >>> rows = summarize(recs)
    >>> answers(rows, compare(recs))[0]["best_random"]
    'he'
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from neuralsmith.study import stats

PRETRAINED = ("dbn", "sda", "dbm")  # starts that learn from the data before fine-tuning
REFERENCE = "default"  # PyTorch's own start: what a user gets by doing nothing
SIGNIFICANCE = 0.05  # family-wise level of the page's Holm-corrected tests


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (depth, start): median, mean, std of the finite test errors, and the grid's outcome."""
    rows = []
    for r in records:
        e = [v for v in r["test_error"] if math.isfinite(v)]
        grid = r.get("grid") or []
        rows.append({"depth": r["depth"], "start": r["start"], "seeds": r["seeds"], "lr": r.get("lr"),
                     "median": statistics.median(e) if e else math.nan,
                     "mean": statistics.fmean(e) if e else math.nan,
                     "std": statistics.stdev(e) if len(e) > 1 else math.nan,
                     "diverged": sum(r["diverged"]), "seconds": r["seconds"],
                     "at_chance": bool(grid) and all(g["at_chance"] for g in grid)})
    return rows


def best_random(rows: list[dict[str, Any]], depth: int, exclude: str = "") -> str | None:
    """The non-pre-trained start with the lowest finite median at ``depth`` (None if none)."""
    pool = [r for r in rows if r["depth"] == depth and r["start"] not in PRETRAINED
            and r["start"] != exclude and math.isfinite(r["median"])]
    return min(pool, key=lambda r: r["median"])["start"] if pool else None


def compare(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every start against the best random start and against ``default``, paired by seed, Holm-corrected.

    Returns:
        One dict per comparison: depth, start, against, role (``"best random"`` or
        ``"default"``), n, mean_diff (percentage points, negative: ``start`` is better),
        ci_low, ci_high, p (paired t) and p_holm.
    """
    rows, errors = summarize(records), {(r["depth"], r["start"]): r["test_error"] for r in records}
    out = []
    for r in rows:
        rivals = {"best random": best_random(rows, r["depth"], exclude=r["start"]), "default": REFERENCE}
        for role, rival in rivals.items():
            if rival and rival != r["start"] and (r["depth"], rival) in errors:
                out.append({"depth": r["depth"], "start": r["start"], "against": rival, "role": role,
                            **stats.paired(errors[(r["depth"], r["start"])], errors[(r["depth"], rival)])})
    for c, p in zip(out, stats.holm([c["p"] for c in out])):
        c["p_holm"] = p
    return out


def _find(comparisons: list[dict[str, Any]], depth: int, start: str, role: str) -> dict[str, Any] | None:
    return next((c for c in comparisons if (c["depth"], c["start"], c["role"]) == (depth, start, role)), None)


def answers(rows: list[dict[str, Any]], comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per depth: the winner, the best random and best pre-trained starts, and how they compare."""
    out = []
    for depth in sorted({r["depth"] for r in rows}):
        at = {r["start"]: r for r in rows if r["depth"] == depth and math.isfinite(r["median"])}
        if not at:
            continue
        pre = [s for s in at if s in PRETRAINED]
        best_pre = min(pre, key=lambda s: at[s]["median"]) if pre else None
        rival = best_random(rows, depth)
        versus = _find(comparisons, depth, best_pre, "best random") if best_pre else None
        out.append({"depth": depth, "winner": min(at, key=lambda s: at[s]["median"]),
                    "medians": {s: at[s]["median"] for s in at}, "best_random": rival,
                    "best_pretrained": best_pre, "versus_best_random": versus,
                    "versus_default": _find(comparisons, depth, best_pre, "default") if best_pre else None,
                    "helped": _helped(versus)})
    return out


def _helped(c: dict[str, Any] | None) -> str:
    """``"yes"``/``"no"`` when the Holm-corrected paired test says better/worse, else ``"unclear"``."""
    if c is None or not c["p_holm"] < SIGNIFICANCE:  # NaN: too few pairs to say
        return "unclear"
    return "yes" if c["mean_diff"] < 0 else "no"


def _points(c: dict[str, Any]) -> str:
    ci = "" if math.isnan(c["ci_low"]) else f", 95% CI {c['ci_low']:+.2f} to {c['ci_high']:+.2f}"
    p = "" if math.isnan(c["p_holm"]) else f", Holm p = {c['p_holm']:.2g}"
    return f"{c['mean_diff']:+.2f} points{ci}{p}, {c['n']} paired seeds"


def sentence(a: dict[str, Any]) -> str:
    """One depth's answer in plain words."""
    m, head = a["medians"], f"Depth {a['depth']}: best start {a['winner']} ({a['medians'][a['winner']]:.2f}%)."
    if a["best_pretrained"] is None or a["best_random"] is None:
        return head + " No pre-trained and random start to compare."
    pre, rnd, c = a["best_pretrained"], a["best_random"], a["versus_best_random"]
    word = {"yes": "helped", "no": "hurt", "unclear": "made no clear difference"}[a["helped"]]
    text = (f"{head} Pre-training {word}: {pre} ({m[pre]:.2f}%) against the best random start, "
            f"{rnd} ({m[rnd]:.2f}%): {_points(c)}.")
    d = a["versus_default"]
    if d is not None and REFERENCE in m:
        text += f" Against PyTorch's default ({m[REFERENCE]:.2f}%): {_points(d)}."
    return text


def verdict(found: list[dict[str, Any]]) -> str:
    """The headline: at which depths pre-training helped, hurt, or made no clear difference."""
    if not any(a["best_pretrained"] and a["best_random"] for a in found):
        return "No pre-trained start and random start finished at the same depth: no verdict on pre-training."
    groups = {k: [a["depth"] for a in found if a["helped"] == k and a["best_pretrained"]]
              for k in ("yes", "no", "unclear")}
    words = {"yes": "helped at depth", "no": "hurt at depth", "unclear": "made no clear difference at depth"}
    parts = [f"{words[k]}{'s' if len(d) > 1 else ''} {', '.join(map(str, d))}" for k, d in groups.items() if d]
    return ("Compared with the best random start at each depth (paired over seeds, Holm-corrected at "
            f"{SIGNIFICANCE:g}), pre-training " + "; ".join(parts) + ".")
