"""``neuralsmith finetune``: fine-tune a pre-trained stack, or the same MLP from any initializer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from neuralsmith import data as data_api
from neuralsmith import nets, plots, stack
from neuralsmith.cli.common import (DataOpt, DeviceOpt, JsonOpt, OutOpt, QuietOpt, ScheduleOpt, SeedOpt,
                                    emit_json, emit_mapping)
from neuralsmith.device import resolve_device
from neuralsmith.runfolder import RunFolder
from neuralsmith.train import finetune


def _validation_fraction(validation: float, n_train: int) -> float:
    """``--validation`` is a fraction (< 1) or a number of examples (>= 1)."""
    if validation < 0:
        raise ValueError(f"--validation must be >= 0 (a fraction, or a count of examples); got {validation}")
    return validation / n_train if validation >= 1 else validation


def _model(run: Optional[Path], arch: Optional[str], init: str, activation: str, n_classes: int,
           generator: torch.Generator) -> tuple[torch.nn.Module, dict]:
    if (run is None) == (arch is None):
        raise ValueError("give either a pre-trained RUN folder or --arch (e.g. --arch 784-500-500-10), not both")
    if run is not None:
        model, meta = stack.load_stack(Path(run) / "checkpoints")
        return model.to_mlp(n_classes, activation), {"start": meta["kind"], "pretrained_run": str(run)}
    sizes = nets.parse_arch(arch)
    return nets.mlp(sizes, activation, init=init, generator=generator), {"start": init, "arch": arch}


def finetune_cmd(
    run: Annotated[Optional[Path], typer.Argument(help="A run folder from `neuralsmith pretrain dbn|sda`.")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Instead of RUN: layer sizes, e.g. 784-500-500-10.")] = None,
    init: Annotated[str, typer.Option(help="Initializer for --arch (see `neuralsmith init list`).")] = "default",
    activation: Annotated[str, typer.Option(help="sigmoid, tanh or relu.")] = "sigmoid",
    data: DataOpt = "digits", seed: SeedOpt = 0,
    epochs: Annotated[int, typer.Option(help="Passes over the training set.")] = 30,
    lr: Annotated[float, typer.Option(help="SGD learning rate.")] = 0.1,
    momentum: Annotated[float, typer.Option(help="SGD momentum.")] = 0.9,
    batch_size: Annotated[int, typer.Option(help="Minibatch size.")] = 32,
    weight_decay: Annotated[float, typer.Option(help="L2 penalty.")] = 0.0,
    schedule: ScheduleOpt = "constant",
    early_stopping: Annotated[Optional[int], typer.Option(help="Patience in epochs.")] = None,
    validation: Annotated[float, typer.Option(help="Validation split: fraction, or count if >= 1.")] = 0.1,
    out: OutOpt = None, device: DeviceOpt = "auto", json: JsonOpt = False, quiet: QuietOpt = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
) -> None:
    """Fine-tune an MLP with SGD + momentum; the same budget whether it was pre-trained or not."""
    ds = data_api.load(data, seed=seed)
    ds = data_api.load(data, validation=_validation_fraction(validation, len(ds.x_train)), seed=seed)
    generator = torch.Generator().manual_seed(seed)
    model, origin = _model(run, arch, init, activation, ds.n_classes, generator)
    folder = RunFolder(out or Path("runs") / f"finetune-{origin['start']}")
    config = {**origin, "data": data, "seed": seed, "activation": activation, "epochs": epochs, "lr": lr,
              "momentum": momentum, "batch_size": batch_size, "weight_decay": weight_decay,
              "schedule": schedule, "early_stopping": early_stopping or 0, "validation": validation}
    if not resume:
        folder.clear_training_state()
    folder.write_config(config)
    result = finetune(model, ds, epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size,
                      weight_decay=weight_decay, schedule=schedule, early_stopping=early_stopping,
                      generator=generator, checkpoint_dir=folder.checkpoints,
                      callbacks=[folder.log_metrics], progress=not quiet and not json,
                      device=resolve_device(device))
    folder.write_metrics(result.history)
    folder.write_results(result.metrics, seed=seed)
    curves = {s: [h[f"{s}_error"] for h in result.history] for s in ("train", "valid", "test")}
    plots.save(plots.learning_curves(curves, "error (%)", f"{origin['start']}: fine-tuning"),
               folder.figures / "learning_curves.png")
    if json:
        emit_json({**config, **result.metrics})
    else:
        emit_mapping(f"fine-tuned ({origin['start']})", {**result.metrics, "run": folder.path},
                     as_json=False, quiet=quiet)
