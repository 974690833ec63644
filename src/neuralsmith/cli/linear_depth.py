"""``neuralsmith linear-depth``: learning time of deep linear nets against depth, per start (Saxe et al. 2013)."""

from __future__ import annotations

from typing import Annotated

import typer

from neuralsmith import linear_depth as api
from neuralsmith.cli.common import JsonOpt, OutOpt, QuietOpt, SeedOpt, console, emit_json, emit_rows


def _numbers(text: str, kind: type, what: str, example: str) -> tuple:
    try:
        return tuple(kind(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"{what} takes comma-separated numbers, as in {example}; got {text!r}") from None


def linear_depth_cmd(
    depths: Annotated[str, typer.Option(help="Weight layers, comma-separated.")] = "2,4,8,16,32,64",
    inits: Annotated[str, typer.Option(help="normal (scaled Gaussian), orthogonal, pretrained, or schemes.")]
    = "normal,orthogonal,pretrained",
    width: Annotated[int, typer.Option(help="Input, hidden and output size.")] = 32,
    n_train: Annotated[int, typer.Option(help="Training samples.")] = 512,
    lr: Annotated[float, typer.Option(help="Learning rate of a depth-1 net (depth D: lr / D).")] = 1.0,
    lr_scaling: Annotated[str, typer.Option(help="depth (lr / D, Saxe et al.) or none.")] = "depth",
    thresholds: Annotated[str, typer.Option(help="Loss levels as fractions of E[y^2]; stops at the lowest.")]
    = "0.05,0.01",
    max_epochs: Annotated[int, typer.Option(help="Epoch budget per (depth, start).")] = 300,
    batch_size: Annotated[int, typer.Option(help="SGD minibatch.")] = 32,
    seed: SeedOpt = 0, out: OutOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Train deep linear nets of each depth from each start; record the epochs to reach a loss level."""
    config = api.LinearDepthConfig(
        depths=_numbers(depths, int, "--depths", "2,4,8"),
        inits=tuple(s.strip() for s in inits.split(",") if s.strip()),
        width=width, n_train=n_train, lr=lr, lr_scaling=lr_scaling,
        thresholds=_numbers(thresholds, float, "--thresholds", "0.05,0.01"), max_epochs=max_epochs,
        batch_size=batch_size, seed=seed)
    results = api.sweep(config, out, progress=not (quiet or json))
    if json:
        emit_json(results)
        return
    rows = [{"depth": r["depth"], "init": r["init"], "lr": r["lr"],
             **{f"epochs to {t}": r["epochs"][t] if r["epochs"][t] is not None else f">{max_epochs}"
                for t in r["epochs"]}} for r in results["records"]]
    emit_rows("epochs to reach each loss level", rows, as_json=False, quiet=quiet)
    if not quiet:
        console.print(f"deepest / shallowest: {results['depth_ratio']}")
        if "figure" in results:
            console.print(f"figure: {results['figure']}")
