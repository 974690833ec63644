"""``neuralsmith sample RUN``: draw images from a pre-trained DBN."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import DeviceOpt, JsonOpt, QuietOpt, SeedOpt, emit_mapping
from neuralsmith.experiments import stack as stack_experiment

#: the API's defaults (their one home)
API = {name: p.default for name, p in inspect.signature(stack_experiment.sample).parameters.items()}


def sample_cmd(
    run: Annotated[Path, typer.Argument(help="A run folder from `neuralsmith pretrain dbn`.")],
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = API["n"],
    gibbs_steps: Annotated[int, typer.Option(help="Gibbs steps in the top RBM.")] = API["gibbs_steps"],
    seed: SeedOpt = API["seed"], device: DeviceOpt = API["device"], json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Gibbs-sample the top RBM, pass down the directed layers, write RUN/figures/samples.png."""
    path = stack_experiment.sample(run, n=n, gibbs_steps=gibbs_steps, seed=seed, device=device)
    emit_mapping("samples", {"figure": str(path), "n": n, "gibbs_steps": gibbs_steps, "seed": seed},
                 as_json=json, quiet=quiet)
