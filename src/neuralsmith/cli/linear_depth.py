"""``neuralsmith linear-depth``: learning time of deep linear nets against depth, per start (Saxe et al. 2013)."""

from __future__ import annotations

from typing import Annotated

import typer

from neuralsmith.cli.common import TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import DeviceOpt, JsonOpt, LrOpt, OutOpt, OverwriteOpt, QuietOpt, ResumeOpt, \
    SeedOpt, console, emit_json, emit_rows, joined, parse_list, folder_mode
from neuralsmith.experiments import linear_depth as experiment
from neuralsmith.settings import flat_defaults, from_options

D = flat_defaults(experiment.Config)
Opt = typer.Option


def linear_depth_cmd(
    depths: Annotated[str, Opt(help="Weight layers, comma-separated.")] = joined(D["depths"]),
    inits: Annotated[str, Opt(help="The starts: normal (scaled Gaussian), orthogonal, pretrained, or schemes.")]
    = joined(D["inits"]),
    width: Annotated[int, Opt(help="Input, hidden and output size.")] = D["width"],
    n_train: Annotated[int, Opt(help="Training samples.")] = D["n_train"],
    lr: LrOpt = D["lr"],
    lr_scaling: Annotated[str, Opt(help="depth (lr / D: --lr is a depth-1 net's rate, Saxe et al.) or none.")]
    = D["lr_scaling"],
    thresholds: Annotated[str, Opt(help="Loss levels as fractions of the mean square of y; stops at the lowest.")]
    = joined(D["thresholds"]),
    max_epochs: Annotated[int, Opt(help="Epoch budget per (depth, start).")] = D["max_epochs"],
    batch_size: Annotated[int, Opt(help="SGD minibatch.")] = D["batch_size"],
    seed: SeedOpt = D["seed"], device: DeviceOpt = D["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Train deep linear nets of each depth from each start; record the epochs to reach a loss level."""
    config = from_options(experiment.Config, locals(),
                          depths=parse_list(depths, int, "--depths"),
                          inits=parse_list(inits, str, "--inits"),
                          thresholds=parse_list(thresholds, float, "--thresholds"))
    mode = folder_mode(out, resume, overwrite)
    results = experiment.run(config, out, mode=mode, progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
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
