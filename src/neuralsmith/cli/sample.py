"""``neuralsmith sample RUN``: draw images from a pre-trained DBN."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import JsonOpt, QuietOpt, SeedOpt, emit_mapping
from neuralsmith.pretraining import sample_run


def sample_cmd(
    run: Annotated[Path, typer.Argument(help="A run folder from `neuralsmith pretrain dbn`.")],
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 100,
    gibbs_steps: Annotated[int, typer.Option(help="Gibbs steps in the top RBM.")] = 1000,
    seed: SeedOpt = 0, json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Gibbs-sample the top RBM, pass down the directed layers, write figures/samples.png."""
    if n < 1:
        raise ValueError(f"--n must be >= 1; got {n}")
    path = sample_run(run, n=n, gibbs_steps=gibbs_steps, seed=seed)
    emit_mapping("samples", {"figure": str(path), "n": n, "gibbs_steps": gibbs_steps}, as_json=json, quiet=quiet)
