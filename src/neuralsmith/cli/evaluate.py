"""``neuralsmith evaluate RUN``: score a trained run on its test set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import JsonOpt, QuietOpt, SeedOpt, emit_mapping
from neuralsmith.rbm.experiment import evaluate

Opt = typer.Option


def evaluate_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder written by a training command.")],
    ais: Annotated[bool, Opt("--ais", help="Estimate log Z by annealed importance sampling.")] = False,
    ais_runs: Annotated[int, Opt("--ais-runs", help="AIS runs.")] = 100,
    ais_steps: Annotated[int, Opt("--ais-steps", help="AIS temperatures (paper: 14500).")] = 14500,
    seed: SeedOpt = 0,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Reconstruction error, exact log-likelihood where tractable, AIS log-likelihood (--ais)."""
    if not (run / "config.toml").is_file():
        raise FileNotFoundError(f"{run}: not a run folder (no config.toml)")
    result = evaluate(run, ais=ais, ais_runs=ais_runs, ais_steps=ais_steps, seed=seed)
    emit_mapping(f"evaluate {run}", result, as_json=json, quiet=quiet)
