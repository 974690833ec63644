"""``neuralsmith hybrid``: a deep hybrid model (DHBM or DHDA) trained in one stage, online by
default (one pass over a stream of rows, labeled and unlabeled mixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith.cli.classrbm import summary
from neuralsmith.cli.common import PrecisionOpt, TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import (ArchOpt, AlphaOpt, BetaOpt, DataOpt, DeviceOpt, JsonOpt, KOpt,
    LabeledOpt, LrOpt, MomentumOpt, OutOpt, OverwriteOpt, PatienceOpt, PickEpochOpt, QuietOpt,
    ResumeOpt, ScheduleOpt, SeedOpt, UnlabeledRatioOpt, UnsupervisedOpt, WeightDecayOpt,
    emit_mapping, joined, run_mode)
from neuralsmith.experiments import hybrid as experiment
from neuralsmith.nets import parse_hidden
from neuralsmith.settings import flat_defaults, from_options

Opt = typer.Option

D = flat_defaults(experiment.DeepConfig)


def hybrid_cmd(
    model: Annotated[str, Opt("--model", help="dhbm (Boltzmann experts) or dhda (denoising-autoencoder experts).")] = D["kind"],
    arch: ArchOpt = joined(D["arch"], "-"),
    data: DataOpt = D["data"],
    labeled: LabeledOpt = D["labeled"],
    objective: Annotated[Optional[str], Opt("--objective", help="hybrid, discriminative, generative or semisupervised (default: semisupervised when --labeled < 1, else hybrid).")] = None,
    alpha: AlphaOpt = D["alpha"],
    beta: BetaOpt = D["beta"],
    unsupervised: UnsupervisedOpt = D["unsupervised"],
    epochs: Annotated[int, Opt("--epochs", help="Passes over the data (1: online).")] = D["epochs"],
    batching: Annotated[str, Opt("--batching", help="stream (online, mixed batches) or paired.")] = D["batching"],
    unlabeled_ratio: UnlabeledRatioOpt = D["unlabeled_ratio"],
    lr: LrOpt = D["lr"],
    schedule: ScheduleOpt = D["schedule"],
    precision: PrecisionOpt = D["precision"],
    batch_size: Annotated[int, Opt("--batch-size", help="Rows per update.")] = D["batch_size"],
    k: KOpt = D["k"],
    momentum: MomentumOpt = D["momentum"],
    weight_decay: WeightDecayOpt = D["weight_decay"],
    corruption: Annotated[float, Opt("--corruption", help="Masking level of the dhda experts.")] = D["corruption"],
    top_down: Annotated[bool, Opt("--top-down/--no-top-down", help="Refine representations top-down.")] = D["top_down"],
    combine: Annotated[str, Opt("--combine", help="mean or product of the experts' beliefs.")] = D["combine"],
    validation: PickEpochOpt = D["validation"],
    patience: PatienceOpt = D["patience"],
    seed: SeedOpt = D["seed"], device: DeviceOpt = D["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Train a deep hybrid model, every layer an expert on the labels (Ororbia et al. 2015)."""
    config = from_options(experiment.DeepConfig, locals(), kind=model, arch=parse_hidden(arch),
                          objective=objective or experiment.default_objective(labeled))
    out = out or Path("runs") / f"{model}-{Path(data).stem}-{'-'.join(map(str, config.arch))}"
    results = experiment.run(config, out, mode=run_mode(resume, overwrite), progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
    emit_mapping(f"hybrid {model}", summary(out, config, results), as_json=json, quiet=quiet)
