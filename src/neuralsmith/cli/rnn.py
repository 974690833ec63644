"""``neuralsmith rnn``: an Elman network on the adding problem or on images read as sequences."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from neuralsmith import rnn as rnn_api
from neuralsmith.cli.common import DeviceOpt, JsonOpt, OutOpt, QuietOpt, SeedOpt, console, emit_json, emit_mapping
from neuralsmith.device import resolve_device

_SHOWN = ("test_mse", "test_error", "mean_predictor_mse", "steps", "sequence_steps", "seconds",
          "gradient_ratio_at_start", "gradient_ratio_at_end", "distance_to_identity", "diverged")


def rnn_cmd(
    task: Annotated[str, typer.Option(help="adding, or a data source read as a sequence (digits...).")]
    = "adding",
    length: Annotated[int, typer.Option(help="Steps T of the adding problem.")] = 100,
    reading: Annotated[str, typer.Option(help="Images: pixel (one pixel a step) or row.")] = "pixel",
    cell: Annotated[str, typer.Option(help="relu or tanh.")] = "relu",
    init: Annotated[str, typer.Option(help="A scheme from `neuralsmith init list` (identity: the IRNN).")]
    = "identity",
    init_std: Annotated[Optional[float], typer.Option(
        help="identity: std of the input weights (Le et al.: 0.001); normal, sparse: their std.")] = None,
    constraint: Annotated[str, typer.Option(help="none, hard (||W_hh - I|| <= radius) or soft (penalty).")]
    = "none",
    radius: Annotated[float, typer.Option(help="Radius of the hard identity constraint.")] = 0.1,
    penalty: Annotated[float, typer.Option(help="Strength lambda of the soft identity constraint.")] = 1e-3,
    hidden: Annotated[int, typer.Option(help="Recurrent units.")] = 100,
    steps: Annotated[int, typer.Option(help="Optimizer steps (rounded up to whole passes).")] = 2000,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.01,
    momentum: Annotated[float, typer.Option(help="SGD / RMSprop momentum.")] = 0.0,
    optimizer: Annotated[str, typer.Option(help="sgd, adam or rmsprop.")] = "sgd",
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 16,
    clip: Annotated[float, typer.Option(help="Clip the gradient norm to this (0: no clipping).")] = 1.0,
    n_train: Annotated[int, typer.Option(help="Adding problem: training sequences.")] = 10_000,
    n_test: Annotated[int, typer.Option(help="Adding problem: test sequences.")] = 1_000,
    seed: SeedOpt = 0, out: OutOpt = None, device: DeviceOpt = "auto", json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train an Elman RNN (ReLU or tanh) from any start, with the identity constraint hard, soft or off."""
    config = rnn_api.RecurrentConfig(
        task=task, length=length, reading=reading, cell=cell, init=init, init_std=init_std,
        constraint=constraint, radius=radius, penalty=penalty, hidden=hidden, steps=steps, lr=lr,
        momentum=momentum, optimizer=optimizer, batch_size=batch_size, clip=clip if clip > 0 else None,
        n_train=n_train, n_test=n_test, seed=seed)
    results = rnn_api.run(config, out, progress=not (quiet or json), device=resolve_device(device))
    if json:
        emit_json(results)
        return
    emit_mapping(f"rnn: {task}, {cell}, {init}, constraint {constraint}",
                 {k: results[k] for k in _SHOWN if results.get(k) is not None}, as_json=False, quiet=quiet)
    if not quiet and "figure" in results:
        console.print(f"figure: {results['figure']}")
