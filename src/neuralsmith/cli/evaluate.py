"""``neuralsmith evaluate RUN``: score any trained run on its own test set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith import experiments
from neuralsmith.cli.common import DeviceOpt, JsonOpt, QuietOpt, SeedOpt, emit_mapping

Opt = typer.Option


def evaluate_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder written by a training command.")],
    ais: Annotated[bool, Opt("--ais", help="RBM and DBM runs: estimate log Z by annealed importance sampling (a DBM: with the mean-field bound on the test log-likelihood).")] = False,
    ais_runs: Annotated[int, Opt("--ais-runs", help="AIS runs.")] = 100,
    ais_steps: Annotated[int, Opt("--ais-steps", help="AIS temperatures (paper: 14500).")] = 14500,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score a run on the test set of the data it was trained on (read from its config.toml).

    RBM: reconstruction error, free energy, exact log-likelihood where tractable, AIS (--ais).
    DBM: mean-field reconstruction error; exact or AIS (--ais) log Z and the mean-field bound.
    DBN / SdA: reconstruction error of each layer. Classifiers (finetune, classrbm, dhbm,
    dhda): test error and negative log-likelihood.
    """
    options = {"ais": ais, "ais_runs": ais_runs, "ais_steps": ais_steps} if ais else {}
    result = experiments.evaluate(run, seed=seed, device=device, **options)
    emit_mapping(f"evaluate {run}", result, as_json=json, quiet=quiet)
