"""``neuralsmith classrbm``: a classification RBM, trained generatively, discriminatively, as a
hybrid, or semi-supervised, into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from neuralsmith.cli.common import PrecisionOpt, TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import (AlphaOpt, BetaOpt, DataOpt, DeviceOpt, JsonOpt, KOpt,
    LabeledOpt, LrOpt, MomentumOpt, OutOpt, OverwriteOpt, PatienceOpt, PickEpochOpt, QuietOpt,
    ResumeOpt, ScheduleOpt, SeedOpt, UnlabeledRatioOpt, UnsupervisedOpt, WeightDecayOpt,
    emit_mapping, run_mode)
from neuralsmith.experiments import hybrid as experiment
from neuralsmith.settings import flat_defaults, from_options

Opt = typer.Option

D = flat_defaults(experiment.Config)

SUMMARY = ("test_error", "valid_error", "best_epoch", "epochs", "n_labeled", "n_unlabeled",
           "seconds", "diverged", "expert_test_errors")


def summary(out: Path, config: Any, results: dict) -> dict:
    """What a command prints: the run folder, the settings that matter, the main results."""
    return {"run": str(out), "model": config.kind, "objective": config.train.objective,
            **{k: results[k] for k in SUMMARY if k in results}}


def classrbm_cmd(
    data: DataOpt = D["data"],
    objective: Annotated[str, Opt("--objective", help="generative, discriminative, hybrid or semisupervised.")] = D["objective"],
    alpha: AlphaOpt = D["alpha"],
    beta: BetaOpt = D["beta"],
    supervised: Annotated[str, Opt("--supervised", help="Supervised part of semisupervised.")] = D["supervised"],
    unsupervised: UnsupervisedOpt = D["unsupervised"],
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = D["hidden"],
    epochs: Annotated[int, Opt("--epochs", help="Passes over the labeled rows.")] = D["epochs"],
    labeled: LabeledOpt = D["labeled"],
    lr: LrOpt = D["lr"],
    schedule: ScheduleOpt = D["schedule"],
    precision: PrecisionOpt = D["precision"],
    batch_size: Annotated[int, Opt("--batch-size", help="Labeled rows per update.")] = D["batch_size"],
    k: KOpt = D["k"],
    method: Annotated[str, Opt("--method", help="cd or pcd.")] = D["method"],
    momentum: MomentumOpt = D["momentum"],
    weight_decay: WeightDecayOpt = D["weight_decay"],
    batching: Annotated[str, Opt("--batching", help="paired or stream (online).")] = D["batching"],
    unlabeled_ratio: UnlabeledRatioOpt = D["unlabeled_ratio"],
    validation: PickEpochOpt = D["validation"],
    patience: PatienceOpt = D["patience"],
    seed: SeedOpt = D["seed"], device: DeviceOpt = D["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False, tensorboard: TensorboardOpt = None,
) -> None:
    """Train a classification RBM (Larochelle et al. 2012); results.json holds test_error (%)."""
    config = from_options(experiment.Config, locals())
    out = out or Path("runs") / f"classrbm-{Path(data).stem}-{objective}-h{hidden}"
    results = experiment.run(config, out, mode=run_mode(resume, overwrite), progress=not (quiet or json),
        tensorboard=tensorboard_tracker(tensorboard))
    emit_mapping("classrbm", summary(out, config, results), as_json=json, quiet=quiet)
