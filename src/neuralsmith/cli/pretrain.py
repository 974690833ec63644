"""``neuralsmith pretrain``: an RBM, a Deep Belief Network or stacked denoising autoencoders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith import nets
from neuralsmith.cli.common import PrecisionOpt, TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import (ArchOpt, BinarizeOpt, DataOpt, DeviceOpt, JsonOpt, KOpt, LrOpt,
    MomentumOpt, OutOpt, OverwriteOpt, QuietOpt, ResumeOpt, ScheduleOpt, SeedOpt, WeightDecayOpt,
    emit_mapping, joined, parse_list, run_mode)
from neuralsmith.experiments import rbm as rbm_experiment
from neuralsmith.experiments import stack as stack_experiment
from neuralsmith.settings import flat_defaults, from_options

app = typer.Typer(help="Pre-train an RBM, a DBN or stacked DAEs.", no_args_is_help=True)

Opt = typer.Option


RBM = flat_defaults(rbm_experiment.Config)


@app.command("rbm")
def rbm_cmd(
    data: DataOpt = RBM["data"],
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = RBM["hidden"],
    method: Annotated[str, Opt("--method", help="cd, pcd or fpcd.")] = RBM["method"],
    k: KOpt = RBM["k"],
    epochs: Annotated[int, Opt("--epochs", help="Passes over the data.")] = RBM["epochs"],
    lr: LrOpt = RBM["lr"],
    schedule: ScheduleOpt = RBM["schedule"],
    precision: PrecisionOpt = RBM["precision"],
    batch_size: Annotated[int, Opt("--batch-size", help="Examples per update.")] = RBM["batch_size"],
    momentum: MomentumOpt = RBM["momentum"],
    weight_decay: WeightDecayOpt = RBM["weight_decay"],
    binarize: BinarizeOpt = RBM["binarize"],
    visible: Annotated[str, Opt("--visible", help="bernoulli, or gaussian (standardizes the data).")] = RBM["visible"],
    hidden_units: Annotated[str, Opt("--hidden-units", help="bernoulli or relu.")] = RBM["hidden_units"],
    validation: Annotated[float, Opt("--validation", help="Fraction of train held out for the free-energy gap.")] = RBM["validation"],
    seed: SeedOpt = RBM["seed"],
    device: DeviceOpt = RBM["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Train an RBM by CD-k, PCD or fast PCD into a run folder (--resume continues a killed run)."""
    config = from_options(rbm_experiment.Config, locals())
    out = out or Path("runs") / f"rbm-{Path(data).stem}-{method}{k}-h{hidden}"
    results = rbm_experiment.run(config, out, mode=run_mode(resume, overwrite), progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
    summary = {"run": str(out), **results["final"], "epochs": results["epochs"],
               "diverged": results["diverged"], "total_seconds": results["seconds"]}
    emit_mapping("pretrain rbm", summary, as_json=json, quiet=quiet)


DBN = stack_experiment.defaults("dbn")
SDA = stack_experiment.defaults("sda")
EpochsOpt = Annotated[int, Opt("--epochs", help="Passes over the data, per layer.")]
BatchOpt = Annotated[int, Opt("--batch-size", help="Examples per update.")]


@app.command("dbn")
def dbn_cmd(
    data: DataOpt = DBN["data"],
    arch: ArchOpt = joined(DBN["arch"], "-"),
    method: Annotated[str, Opt("--method", help="cd, pcd or fpcd.")] = DBN["method"],
    k: KOpt = DBN["k"],
    epochs: EpochsOpt = DBN["epochs"],
    lr: LrOpt = DBN["lr"],
    schedule: ScheduleOpt = DBN["schedule"],
    precision: PrecisionOpt = DBN["precision"],
    batch_size: BatchOpt = DBN["batch_size"],
    momentum: MomentumOpt = DBN["momentum"],
    weight_decay: WeightDecayOpt = DBN["weight_decay"],
    binarize: BinarizeOpt = DBN["binarize"],
    seed: SeedOpt = DBN["seed"],
    device: DeviceOpt = DBN["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Greedily pre-train a Deep Belief Network (a stack of RBMs) into a run folder."""
    values = {**locals(), "arch": nets.parse_hidden(arch)}
    _run_stack("dbn", values, out, run_mode(resume, overwrite), json=json, quiet=quiet,
               tensorboard=tensorboard)


@app.command("sda")
def sda_cmd(
    data: DataOpt = SDA["data"],
    arch: ArchOpt = joined(SDA["arch"], "-"),
    corruption: Annotated[str, Opt("--corruption", help="Masking level: one for every layer, or one per layer (0.1,0.2,0.3).")] = joined(SDA["corruption"], ","),
    epochs: EpochsOpt = SDA["epochs"],
    lr: LrOpt = SDA["lr"],
    batch_size: BatchOpt = SDA["batch_size"],
    precision: PrecisionOpt = SDA["precision"],
    binarize: BinarizeOpt = SDA["binarize"],
    seed: SeedOpt = SDA["seed"],
    device: DeviceOpt = SDA["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Greedily pre-train stacked denoising autoencoders into a run folder."""
    values = {**locals(), "arch": nets.parse_hidden(arch), "corruption": parse_list(corruption, float, "--corruption")}
    _run_stack("sda", values, out, run_mode(resume, overwrite), json=json, quiet=quiet,
               tensorboard=tensorboard)


def _run_stack(kind: str, values: dict, out: Path | None, mode: str, *, json: bool, quiet: bool,
               tensorboard: Path | None = None) -> None:
    """Build the ``kind`` config from the options, pre-train into ``out``, print the summary."""
    names = stack_experiment.defaults(kind)
    config = stack_experiment.config_from_flat(kind, {k: v for k, v in values.items() if k in names})
    out = out or Path("runs") / f"{kind}-{Path(config.data).stem}-{joined(config.arch, '-')}"
    results = stack_experiment.run(config, out, mode=mode, progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
    summary = {"run": str(out), "kind": kind, "arch": joined(config.arch, "-"),
               "epochs_per_layer": config.train.epochs, "final": results["final"],
               "device": results["device"], "seconds": results["seconds"]}
    emit_mapping(f"pretrain {kind}", summary, as_json=json, quiet=quiet)
