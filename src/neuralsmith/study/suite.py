"""A suite: the same study on several data sets, summed up as one table of test errors.

A suite config is a study config whose ``[study]`` table holds the settings every data set
shares (no ``data`` key) and whose ``[suite]`` table lists the data sets, with optional
per-set changes::

    [suite]
    data = ["rectangles", "convex"]

    [suite.overrides.convex]
    validation = 0.25

Each data set runs as an ordinary study into its own sub-folder (resumable like any study);
the table maps (start, depth) to the paper's models (:data:`papers.MODELS`) and gives each
test error a 95% interval, with the published figure beside it where there is one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from neuralsmith.runfolder import RunFolder, atomic_write_text, load_toml
from neuralsmith.study.papers import MODELS, paper_figure
from neuralsmith.study.spec import StudySpec

Z95 = 1.96  # two-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class SuiteSpec:
    """One study per data set.

    Attributes:
        study: the settings every data set shares (its ``data`` is replaced per set).
        data: the data sources, in table order.
        overrides: per data source, study settings that differ for it (e.g. ``validation``).
    """

    study: StudySpec
    data: tuple[str, ...]
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("suite: data must name one or more data sets; got none")
        folders = [data_folder(d) for d in self.data]
        if len(set(folders)) != len(folders):
            raise ValueError(f"suite: data names each data set once; got {list(self.data)}")
        for name, changes in self.overrides.items():
            if not isinstance(changes, Mapping) or "data" in changes:
                raise ValueError(f"suite: overrides.{name} must be a table of study settings "
                                 f"other than data; got {changes!r}")
            try:
                self.study.replace(**changes)
            except ValueError as exc:
                raise ValueError(f"suite: overrides.{name}: {exc}") from None

    def spec_for(self, data: str) -> StudySpec:
        """The study run on ``data``: the shared settings with that set's overrides."""
        return self.study.replace(data=data, name=f"{self.study.name} {data}",
                                  **self.overrides.get(data, {}))

    @classmethod
    def from_toml(cls, path: str | Path, data: Sequence[str] | None = None,
                  **overrides: Any) -> "SuiteSpec":
        """Read a suite config; ``data`` replaces its list, ``overrides`` change ``[study]``.

        Raises:
            ValueError: for a file without a ``[suite]`` table, unknown keys or wrong types.
        """
        raw = load_toml(path)
        table, shared = raw.get("suite"), raw.get("study", {})
        if not isinstance(table, dict):
            raise ValueError(f"{path}: not a suite config (no [suite] table with data = [...])")
        unknown = sorted(set(table) - {"data", "overrides"})
        if unknown or "data" in shared:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown) or 'data'} in "
                             f"[{'suite' if unknown else 'study'}]; a suite lists its data sets "
                             f"in [suite] data = [...] and per-set changes in [suite.overrides.NAME]")
        names = list(data) if data is not None else table.get("data")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: [suite] data must be a list of data-source names; got {names!r}")
        study = StudySpec.from_mapping({**shared, **{k: v for k, v in overrides.items() if v is not None}},
                                       where=str(path))
        return cls(study, tuple(names), table.get("overrides", {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"study": ..., "suite": {"data": [...], "overrides": {...}}}``."""
        study = {k: v for k, v in self.study.to_dict().items() if k != "data"}
        return {"study": study, "suite": {"data": list(self.data),
                                          "overrides": {k: dict(v) for k, v in self.overrides.items()}}}


def is_suite(path: str | Path) -> bool:
    """Whether the config at ``path`` has a ``[suite]`` table."""
    return "suite" in load_toml(path)


def data_folder(data: str) -> str:
    """The sub-folder of a suite's run folder that holds the study on ``data``.

    Example:
        >>> data_folder("fashion-mnist-rot"), data_folder("~/sets/my.npz")
        ('fashion-mnist-rot', 'sets_my.npz')
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", data).strip("._") or "data"


def binomial_interval(error: float, n: int, z: float = Z95) -> float:
    r"""Half-width (in %) of the normal-approximation interval of a test error (in %).

    .. math:: \pm z \sqrt{p (1 - p) / n}, \qquad p = \text{error} / 100

    The interval Larochelle et al. (2007) give with each test error: it measures the test
    set's sampling noise only, not the spread over seeds or hyper-parameters.

    Args:
        error: test error in percent, in [0, 100] (NaN gives NaN).
        n: number of test examples.
        z: the normal quantile (1.96 for 95%).

    Raises:
        ValueError: for ``n < 1`` or an error outside [0, 100].

    Example:
        >>> round(binomial_interval(4.69, 50000), 2)  # 1.96 * sqrt(0.0469 * 0.9531 / 50000)
        0.19
    """
    if n < 1:
        raise ValueError(f"n (test examples) must be >= 1; got {n}")
    if math.isnan(error):
        return math.nan
    if not 0.0 <= error <= 100.0:
        raise ValueError(f"error is a percentage in [0, 100]; got {error}")
    p = error / 100.0
    return 100.0 * z * math.sqrt(p * (1.0 - p) / n)


def model_columns(spec: StudySpec) -> list[tuple[str, str, int]]:
    """``(label, start, depth)`` of every trial: the paper's models first, by their names."""
    named = {v: k for k, v in MODELS.items()}
    trials = [(s, d) for d in spec.depths for s in spec.starts]
    first = [(named[t], *t) for t in MODELS.values() if t in trials]
    return first + [(f"{s}-{d}", s, d) for s, d in trials if (s, d) not in named]


def suite_rows(suite: SuiteSpec, results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (data set, model): mean test error over seeds, its interval, the paper's."""
    rows = []
    for data in suite.data:
        summary = {(r["start"], r["depth"]): r for r in results[data]["summary"]}
        n_test = results[data]["data"]["n_test"]
        for label, start, depth in model_columns(suite.spec_for(data)):
            if (start, depth) not in summary:  # the trial failed on a cluster (results' "failed")
                continue
            error, figure = summary[(start, depth)]["mean"], paper_figure(data, label)
            rows.append({"data": data, "model": label, "start": start, "depth": depth,
                         "seeds": summary[(start, depth)]["seeds"], "error": error,
                         "interval": binomial_interval(error, n_test), "n_test": n_test,
                         "paper": figure.error if figure else None,
                         "paper_source": figure.source if figure else None})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as text: one line per data set, ``error ± interval [paper]`` per model."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    data = list(dict.fromkeys(r["data"] for r in rows))
    cell = {(r["data"], r["model"]): r for r in rows}
    width = max(len(d) for d in data) + 2
    head = ("data".ljust(width) + "".join(m.ljust(22) for m in models)).rstrip()
    lines = ["test error (%) +- 1.96 sqrt(p(1-p)/n_test); [published figure, sources below]", head]
    for d in data:
        lines.append(d.ljust(width) + "".join(_cell(cell.get((d, m))).ljust(22) for m in models).rstrip())
    sources = [f"[{r['paper']:g}] {r['data']} {r['model']}: {r['paper_source']}" for r in rows if r["paper"] is not None]
    return "\n".join(lines + [""] + (sources or ["no published figure for these data sets and models"])) + "\n"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    ours = "nan" if math.isnan(row["error"]) else f"{row['error']:.2f} +- {row['interval']:.2f}"
    return ours + (f" [{row['paper']:g}]" if row["paper"] is not None else "")


def write_suite_report(suite: SuiteSpec, results: Mapping[str, Mapping[str, Any]], out: str | Path,
                       seconds: float) -> dict[str, Any]:
    """Write the suite's ``results.json`` and ``table.txt``; return results.json's content."""
    rows = suite_rows(suite, results)
    report = {"spec": suite.to_dict(), "table": rows, "text": format_table(rows),
              "data": {d: results[d]["data"] for d in suite.data}, "seconds": seconds}
    RunFolder(out).write_results(report, seed=suite.study.seed)
    atomic_write_text(Path(out) / "table.txt", report["text"])
    return report
