"""``neuralsmith hybrid``: a deep hybrid model (DHBM or DHDA) trained in one stage, online by
default (one pass over a stream of rows, labeled and unlabeled mixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith.cli.classrbm import summary
from neuralsmith.cli.common import DataOpt, DeviceOpt, JsonOpt, LabeledOpt, LrOpt, MomentumOpt, OutOpt, \
    PickEpochOpt, QuietOpt, ResumeOpt, ScheduleOpt, SeedOpt, UnlabeledRatioOpt, UnsupervisedOpt, emit_mapping
from neuralsmith.hybrid import KINDS
from neuralsmith.hybrid_runs import HybridRunConfig, run

Opt = typer.Option


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--layers takes comma-separated hidden sizes, e.g. 500,500; got {text!r}") from None


def hybrid_cmd(
    model: Annotated[str, Opt("--model", help="dhbm (Boltzmann experts) or dhda (denoising-autoencoder experts).")] = "dhbm",
    layers: Annotated[str, Opt("--layers", help="Hidden sizes, e.g. 500,500.")] = "500,500",
    data: DataOpt = "digits",
    labeled: LabeledOpt = 1.0,
    objective: Annotated[Optional[str], Opt("--objective", help="hybrid, discriminative, generative or semisupervised (default: semisupervised when --labeled < 1).")] = None,
    alpha: Annotated[float, Opt("--alpha", help="Weight of each expert's generative term.")] = 0.01,
    beta: Annotated[float, Opt("--beta", help="Weight of the unsupervised term.")] = 0.1,
    unsupervised: UnsupervisedOpt = "likelihood",
    epochs: Annotated[int, Opt("--epochs", help="Passes over the data (1: online).")] = 1,
    batching: Annotated[str, Opt("--batching", help="stream (online, mixed batches) or paired.")] = "stream",
    unlabeled_ratio: UnlabeledRatioOpt = 1,
    lr: LrOpt = 0.05,
    schedule: ScheduleOpt = "constant",
    batch_size: Annotated[int, Opt("--batch-size", help="Rows per update.")] = 20,
    k: Annotated[int, Opt("--k", help="Gibbs steps of CD (dhbm).")] = 1,
    momentum: MomentumOpt = 0.9,
    corruption: Annotated[float, Opt("--corruption", help="Masking level of the dhda experts.")] = 0.2,
    top_down: Annotated[bool, Opt("--top-down/--no-top-down", help="Refine representations top-down.")] = True,
    combine: Annotated[str, Opt("--combine", help="mean or product of the experts' beliefs.")] = "mean",
    validation: PickEpochOpt = 0.1,
    seed: SeedOpt = 0, out: OutOpt = None, device: DeviceOpt = "auto",
    json: JsonOpt = False, quiet: QuietOpt = False,
    resume: ResumeOpt = False,
) -> None:
    """Train a deep hybrid model, every layer an expert on the labels (Ororbia et al. 2015)."""
    if model not in KINDS:
        raise ValueError(f"--model must be one of {', '.join(KINDS)}; got {model!r}")
    objective = objective or ("semisupervised" if labeled < 1.0 else "hybrid")
    config = HybridRunConfig(model=model, data=data, layers=_sizes(layers), objective=objective,
                             alpha=alpha, beta=beta, unsupervised=unsupervised, labeled=labeled,
                             validation=validation, epochs=epochs, lr=lr, schedule=schedule,
                             batch_size=batch_size, k=k, momentum=momentum, batching=batching,
                             unlabeled_ratio=unlabeled_ratio, corruption=corruption,
                             top_down=top_down, combine=combine, seed=seed, device=device)
    out = out or Path("runs") / f"{model}-{Path(data).stem}-{layers.replace(',', '-')}"
    results = run(out, config, resume=resume, progress=not (quiet or json))
    emit_mapping(f"hybrid {model}", summary(out, config, results), as_json=json, quiet=quiet)
