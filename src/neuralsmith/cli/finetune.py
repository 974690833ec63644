"""``neuralsmith finetune``: fine-tune a pre-trained stack, or the same MLP from any initializer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith import nets
from neuralsmith.cli.common import PrecisionOpt, TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import (DeviceOpt, JsonOpt, LrOpt, MomentumOpt, OutOpt, OverwriteOpt,
    PatienceOpt, QuietOpt, ResumeOpt, ScheduleOpt, SeedOpt, WeightDecayOpt, emit_mapping, run_mode)
from neuralsmith.experiments import finetune as experiment
from neuralsmith.settings import flat_defaults, from_options

Opt = typer.Option
D = flat_defaults(experiment.Config)


def finetune_cmd(
    run: Annotated[Optional[Path], typer.Argument(help="A run folder from `neuralsmith pretrain dbn|sda|dbm`.")] = None,
    arch: Annotated[Optional[str], Opt("--arch", help="Instead of RUN: hidden layer sizes, e.g. 500-500 (inputs and outputs come from the data).")] = None,
    init: Annotated[str, Opt("--init", help="Initializer for --arch (see `neuralsmith init list`).")] = D["init"],
    activation: Annotated[str, Opt("--activation", help="sigmoid, tanh or relu (linear with --arch).")] = D["activation"],
    data: Annotated[Optional[str], Opt("--data", help="Registered name, IDX folder or .npz file; default: RUN's data, else digits.")] = D["data"],
    binarize: Annotated[Optional[str], Opt("--binarize", help="none, threshold or stochastic; default: RUN's, else none.")] = D["binarize"],
    epochs: Annotated[int, Opt("--epochs", help="Passes over the training set.")] = D["epochs"],
    lr: LrOpt = D["lr"],
    momentum: MomentumOpt = D["momentum"],
    batch_size: Annotated[int, Opt("--batch-size", help="Minibatch size.")] = D["batch_size"],
    weight_decay: WeightDecayOpt = D["weight_decay"],
    schedule: ScheduleOpt = D["schedule"],
    optimizer: Annotated[str, Opt("--optimizer", help="sgd, adam or rmsprop.")] = D["optimizer"],
    precision: PrecisionOpt = D["precision"],
    clip_grad: Annotated[Optional[float], Opt("--clip-grad", help="Clip the gradient norm to this value.")] = D["clip_grad"],
    patience: PatienceOpt = D["patience"],
    validation: Annotated[float, Opt("--validation", help="Validation split: a fraction, or a count of examples if >= 1.")] = D["validation"],
    seed: SeedOpt = D["seed"], device: DeviceOpt = D["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Fine-tune an MLP (SGD + momentum by default); the same budget whether it was pre-trained or not."""
    config = from_options(experiment.Config, locals(), pretrained=None if run is None else str(run),
                          arch=None if arch is None else nets.parse_hidden(arch))
    out = out or Path("runs") / f"finetune-{Path(run).name if run else config.init}"
    results = experiment.run(config, out, mode=run_mode(resume, overwrite), progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
    summary = {"run": str(out), "start": results["start"], "sizes": "-".join(map(str, results["sizes"])),
               **{k: results[k] for k in ("train_error", "valid_error", "test_error", "test_loss",
                                          "best_epoch", "epochs", "diverged", "seconds")}}
    emit_mapping(f"fine-tuned ({results['start']})", summary, as_json=json, quiet=quiet)
