"""``neuralsmith rnn``: an Elman network on the adding problem or on images read as sequences."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from neuralsmith.cli.common import TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import DeviceOpt, JsonOpt, LrOpt, MomentumOpt, OutOpt, OverwriteOpt, QuietOpt, \
    ResumeOpt, SeedOpt, console, emit_json, emit_mapping, folder_mode
from neuralsmith.experiments import rnn as experiment
from neuralsmith.settings import flat_defaults, from_options

D = flat_defaults(experiment.Config)
Opt = typer.Option

_SHOWN = ("test_mse", "test_error", "mean_predictor_mse", "steps", "sequence_steps", "seconds",
          "gradient_ratio_at_start", "gradient_ratio_at_end", "distance_to_identity", "diverged")


def rnn_cmd(
    task: Annotated[str, Opt(help="adding, or a data source read as a sequence (digits...).")] = D["task"],
    length: Annotated[int, Opt(help="Steps T of the adding problem.")] = D["length"],
    reading: Annotated[str, Opt(help="Images: pixel (one pixel a step) or row.")] = D["reading"],
    cell: Annotated[str, Opt(help="relu or tanh.")] = D["cell"],
    init: Annotated[str, Opt(help="The start: a scheme from `neuralsmith init list` (identity: the IRNN).")]
    = D["init"],
    init_std: Annotated[Optional[float], Opt(
        help="identity: std of the input weights (Le et al.: 0.001; default LeCun normal); normal, sparse: "
             "their std (default: the scheme's, normal 0.01).")] = D["init_std"],
    constraint: Annotated[str, Opt(help="none, hard (||W_hh - I|| <= radius) or soft (penalty).")]
    = D["constraint"],
    radius: Annotated[float, Opt(help="Radius of the hard identity constraint.")] = D["radius"],
    penalty: Annotated[float, Opt(help="Strength lambda of the soft identity constraint.")] = D["penalty"],
    hidden: Annotated[int, Opt(help="Recurrent units.")] = D["hidden"],
    steps: Annotated[int, Opt(help="Optimizer steps (rounded up to whole passes).")] = D["steps"],
    lr: LrOpt = D["lr"],
    momentum: MomentumOpt = D["momentum"],
    optimizer: Annotated[str, Opt(help="sgd, adam or rmsprop.")] = D["optimizer"],
    batch_size: Annotated[int, Opt(help="Sequences per step.")] = D["batch_size"],
    clip: Annotated[float, Opt(help="Clip the gradient norm to this (0: no clipping).")] = D["clip"] or 0.0,
    n_train: Annotated[int, Opt(help="Adding problem: training sequences.")] = D["n_train"],
    n_test: Annotated[int, Opt(help="Adding problem: test sequences.")] = D["n_test"],
    seed: SeedOpt = D["seed"], device: DeviceOpt = D["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Train an Elman RNN (ReLU or tanh) from any start, with the identity constraint hard, soft or off."""
    config = from_options(experiment.Config, locals(), clip=clip if clip > 0 else None)
    mode = folder_mode(out, resume, overwrite)
    results = experiment.run(config, out, mode=mode, progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
    if json:
        emit_json(results)
        return
    emit_mapping(f"rnn: {task}, {cell}, {init}, constraint {constraint}",
                 {k: results[k] for k in _SHOWN if results.get(k) is not None}, as_json=False, quiet=quiet)
    if not quiet and "figure" in results:
        console.print(f"figure: {results['figure']}")
