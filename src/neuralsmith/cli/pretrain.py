"""``neuralsmith pretrain``: an RBM, a Deep Belief Network, stacked denoising autoencoders or a Deep Boltzmann Machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith import nets
from neuralsmith.cli.common import PrecisionOpt, TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import (ArchOpt, BinarizeOpt, DataOpt, DeviceOpt, JsonOpt, KOpt, LrOpt,
    MomentumOpt, OutOpt, OverwriteOpt, QuietOpt, ResumeOpt, ScheduleOpt, SeedOpt, WeightDecayOpt,
    emit_mapping, joined, parse_list, run_mode)
from neuralsmith.experiments import dbm as dbm_experiment
from neuralsmith.experiments import rbm as rbm_experiment
from neuralsmith.experiments import stack as stack_experiment
from neuralsmith.settings import flat_defaults, from_options

app = typer.Typer(help="Pre-train an RBM, a DBN, stacked DAEs or a DBM.", no_args_is_help=True)

Opt = typer.Option


RBM = flat_defaults(rbm_experiment.Config)


@app.command("rbm")
def rbm_cmd(
    data: DataOpt = RBM["data"],
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = RBM["hidden"],
    method: Annotated[str, Opt("--method", help="cd, pcd, fpcd or pt (parallel tempering).")] = RBM["method"],
    k: KOpt = RBM["k"],
    n_temperatures: Annotated[Optional[int], Opt("--n-temperatures", help="Replicas per chain for --method pt (default 10).")] = RBM["n_temperatures"],
    temperature_spacing: Annotated[str, Opt("--temperature-spacing", help="linear or geometric in beta (--method pt).")] = RBM["temperature_spacing"],
    beta_min: Annotated[Optional[float], Opt("--beta-min", help="Lowest inverse temperature for --method pt (default 0 linear, 0.01 geometric).")] = RBM["beta_min"],
    tempering_base: Annotated[str, Opt("--tempering-base", help="PT's distribution at beta 0: uniform, or data (pixel base rates).")] = RBM["tempering_base"],
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
    """Train an RBM by CD-k, PCD, fast PCD or parallel tempering into a run folder (--resume continues a killed run)."""
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
    method: Annotated[str, Opt("--method", help="cd, pcd, fpcd or pt (parallel tempering, 10 linear temperatures).")] = DBN["method"],
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


DBM = flat_defaults(dbm_experiment.Config)


@app.command("dbm")
def dbm_cmd(
    data: DataOpt = DBM["data"],
    arch: Annotated[str, Opt("--arch", "--layers", help="Hidden layer sizes, e.g. 500-1000 or 500,1000 (inputs come from the data).")] = joined(DBM["arch"], "-"),
    visible: Annotated[str, Opt("--visible", help="bernoulli, or gaussian (standardizes the data).")] = DBM["visible"],
    pretrain_epochs: Annotated[int, Opt("--pretrain-epochs", help="CD-1 passes per layer RBM of the greedy pre-training (0: none).")] = DBM["pretrain_epochs"],
    pretrain_lr: Annotated[float, Opt("--pretrain-lr", help="Learning rate of the layer RBMs.")] = DBM["pretrain_lr"],
    epochs: Annotated[int, Opt("--epochs", help="Joint-training passes over the data (0: none).")] = DBM["epochs"],
    lr: Annotated[float, Opt("--lr", help="Initial joint learning rate.")] = DBM["lr"],
    schedule: ScheduleOpt = DBM["schedule"],
    batch_size: BatchOpt = DBM["batch_size"],
    n_chains: Annotated[int, Opt("--n-chains", help="Persistent Gibbs chains of joint training.")] = DBM["n_chains"],
    k: Annotated[int, Opt("--k", help="Gibbs sweeps of the chains per joint update.")] = DBM["k"],
    mf_iters: Annotated[int, Opt("--mf-iters", help="Mean-field sweeps per joint update (at most).")] = DBM["mf_iters"],
    momentum: MomentumOpt = DBM["momentum"],
    weight_decay: WeightDecayOpt = DBM["weight_decay"],
    binarize: BinarizeOpt = DBM["binarize"],
    seed: SeedOpt = DBM["seed"],
    device: DeviceOpt = DBM["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Train a Deep Boltzmann Machine: greedy pre-training, then joint training (Salakhutdinov & Hinton 2009)."""
    config = from_options(dbm_experiment.Config, locals(), arch=nets.parse_hidden(arch))
    out = out or Path("runs") / f"dbm-{Path(data).stem}-{joined(config.arch, '-')}"
    results = dbm_experiment.run(config, out, mode=run_mode(resume, overwrite), progress=not (quiet or json),
                                 tensorboard=tensorboard_tracker(tensorboard))
    summary = {"run": str(out), "kind": "dbm", "arch": joined(config.arch, "-"),
               "pretrain_epochs": results["pretrain_epochs"], "joint_epochs": results["joint_epochs"],
               "final": results["final"], "device": results["device"], "seconds": results["seconds"]}
    emit_mapping("pretrain dbm", summary, as_json=json, quiet=quiet)
