"""``neuralsmith classrbm``: a classification RBM, trained generatively, discriminatively, as a
hybrid, or semi-supervised, into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import DataOpt, DeviceOpt, JsonOpt, LabeledOpt, LrOpt, MomentumOpt, OutOpt, \
    PickEpochOpt, QuietOpt, ResumeOpt, ScheduleOpt, SeedOpt, UnlabeledRatioOpt, UnsupervisedOpt, emit_mapping
from neuralsmith.hybrid_runs import HybridRunConfig, run

Opt = typer.Option

SUMMARY = ("test_error", "valid_error", "best_epoch", "epochs", "n_labeled", "n_unlabeled",
           "seconds", "diverged")


def summary(out: Path, config: HybridRunConfig, results: dict) -> dict:
    """What a command prints: the run folder, the settings that matter, the main results."""
    return {"run": str(out), "model": config.model, "objective": config.objective,
            **{k: results.get(k) for k in SUMMARY},
            **({"expert_test_errors": results["expert_test_errors"]}
               if "expert_test_errors" in results else {})}


def classrbm_cmd(
    data: DataOpt = "digits",
    objective: Annotated[str, Opt("--objective", help="generative, discriminative, hybrid or semisupervised.")] = "hybrid",
    alpha: Annotated[float, Opt("--alpha", help="Weight of the generative term (hybrid).")] = 0.01,
    beta: Annotated[float, Opt("--beta", help="Weight of the unsupervised term (semisupervised).")] = 0.1,
    supervised: Annotated[str, Opt("--supervised", help="Supervised part of semisupervised.")] = "hybrid",
    unsupervised: UnsupervisedOpt = "likelihood",
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = 500,
    epochs: Annotated[int, Opt("--epochs", help="Passes over the labeled rows.")] = 10,
    labeled: LabeledOpt = 1.0,
    lr: LrOpt = 0.05,
    schedule: ScheduleOpt = "constant",
    batch_size: Annotated[int, Opt("--batch-size", help="Labeled rows per update.")] = 20,
    k: Annotated[int, Opt("--k", help="Gibbs steps of CD / PCD.")] = 1,
    method: Annotated[str, Opt("--method", help="cd or pcd.")] = "cd",
    momentum: MomentumOpt = 0.9,
    weight_decay: Annotated[float, Opt("--weight-decay", help="L2 decay of W and U.")] = 0.0,
    batching: Annotated[str, Opt("--batching", help="paired or stream (online).")] = "paired",
    unlabeled_ratio: UnlabeledRatioOpt = 1,
    validation: PickEpochOpt = 0.1,
    patience: Annotated[int, Opt("--patience", help="Stop after this many epochs without a better validation error (0: never).")] = 0,
    seed: SeedOpt = 0, out: OutOpt = None, device: DeviceOpt = "auto",
    json: JsonOpt = False, quiet: QuietOpt = False,
    resume: ResumeOpt = False,
) -> None:
    """Train a classification RBM (Larochelle et al. 2012); results.json holds test_error (%)."""
    config = HybridRunConfig(model="classrbm", data=data, layers=(hidden,), objective=objective,
                             alpha=alpha, beta=beta, supervised=supervised,
                             unsupervised=unsupervised, labeled=labeled, validation=validation,
                             epochs=epochs, lr=lr, schedule=schedule, batch_size=batch_size,
                             k=k, method=method, momentum=momentum, weight_decay=weight_decay,
                             batching=batching, unlabeled_ratio=unlabeled_ratio,
                             patience=patience, seed=seed, device=device)
    out = out or Path("runs") / f"classrbm-{Path(data).stem}-{objective}-h{hidden}"
    results = run(out, config, resume=resume, progress=not (quiet or json))
    emit_mapping("classrbm", summary(out, config, results), as_json=json, quiet=quiet)
