"""``neuralsmith study``: compare starts across depths and seeds, write report.html.

With a suite config (a ``[suite]`` table, e.g. ``configs/larochelle2007.toml``) it runs the
study on each listed data set and prints the suite's table; ``--data`` then takes a
comma-separated list that replaces the config's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith.cli.common import DeviceOpt, JsonOpt, QuietOpt, console, emit_json, emit_rows
from neuralsmith.study import StudySpec, SuiteSpec, run, run_suite
from neuralsmith.study.suite import is_suite

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "quick.toml"


def _ints(text: Optional[str], what: str) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{what} takes comma-separated integers, e.g. 1,2,3; got {text!r}") from None


def study(
    config: Annotated[Optional[Path], typer.Option("--config", help="Study spec (TOML).")] = None,
    data: Annotated[Optional[str], typer.Option(
        "--data", help="Data source (with a suite config: a comma-separated list).")] = None,
    depths: Annotated[Optional[str], typer.Option("--depths", help="e.g. 1,2,3")] = None,
    methods: Annotated[Optional[str], typer.Option("--methods", help="Starts, comma-separated.")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Networks per start and depth.")] = None,
    activation: Annotated[Optional[str], typer.Option("--activation", help="sigmoid, tanh or relu.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Fine-tuning epochs.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Root seed.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/study"),
    resume: Annotated[bool, typer.Option("--resume", help="Keep finished trials.")] = False,
    device: DeviceOpt = "auto",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Compare starts (initializers, DBN, SdA) across depths and seeds; write report.html."""
    overrides = dict(depths=_ints(depths, "--depths"), seeds=seeds, activation=activation,
                     epochs=epochs, seed=seed,
                     starts=[m.strip() for m in methods.split(",")] if methods else None)
    if config is not None and is_suite(config):
        _suite(SuiteSpec.from_toml(config, data=_names(data), **overrides), out, resume, device, json, quiet)
        return
    overrides["data"] = data
    spec = StudySpec.from_toml(config or DEFAULT_CONFIG, **overrides) if (config or DEFAULT_CONFIG.is_file()) \
        else StudySpec().replace(**overrides)
    results = run(spec, out, resume=resume, progress=not quiet and not json, device=device)
    if json:
        emit_json(results)
        return
    emit_rows("test error (%)", [{k: r[k] for k in ("depth", "start", "median", "mean", "std", "p_vs_default")}
                                 for r in results["summary"]], as_json=False, quiet=quiet)
    if not quiet:
        console.print(results["verdict"])
        console.print(f"report: {out / 'report.html'}")


def _names(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _suite(suite: SuiteSpec, out: Path, resume: bool, device: str, json: bool, quiet: bool) -> None:
    """Run a suite and print its table (or its results as JSON)."""
    results = run_suite(suite, out, resume=resume, progress=not quiet and not json, device=device)
    if json:
        emit_json(results)
    elif not quiet:
        typer.echo(results["text"], nl=False)
        typer.echo(f"table: {out / 'table.txt'}; per data set: {out}/DATA/report.html")
