"""``neuralsmith pretrain``: layer-wise pre-training (RBMs here; DBN and SdA stacks join later)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import DataOpt, DeviceOpt, JsonOpt, OutOpt, QuietOpt, SeedOpt, \
    emit_mapping
from neuralsmith.rbm.experiment import PretrainConfig, pretrain

app = typer.Typer(help="Pre-train layers: RBMs.", no_args_is_help=True)

Opt = typer.Option


@app.command("rbm")
def rbm_cmd(
    data: DataOpt = "digits",
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = 500,
    method: Annotated[str, Opt("--method", help="cd, pcd or fpcd.")] = "pcd",
    k: Annotated[int, Opt("--k", help="Gibbs steps per update.")] = 1,
    epochs: Annotated[int, Opt("--epochs", help="Passes over the data.")] = 20,
    lr: Annotated[float, Opt("--lr", help="Learning rate.")] = 0.05,
    batch_size: Annotated[int, Opt("--batch-size", help="Examples per update.")] = 100,
    momentum: Annotated[float, Opt("--momentum", help="Momentum of the updates.")] = 0.5,
    weight_decay: Annotated[float, Opt("--weight-decay", help="L2 decay of the weights.")] = 1e-4,
    binarize: Annotated[str, Opt("--binarize", help="none, threshold or stochastic.")] = "none",
    visible: Annotated[str, Opt("--visible", help="bernoulli, or gaussian (standardizes the data).")] = "bernoulli",
    hidden_units: Annotated[str, Opt("--hidden-units", help="bernoulli or relu.")] = "bernoulli",
    validation: Annotated[float, Opt("--validation", help="Fraction of train held out for the free-energy gap.")] = 0.1,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train an RBM by CD-k, PCD or fast PCD into a run folder (resumes if interrupted)."""
    config = PretrainConfig(data=data, hidden=hidden, method=method, k=k, epochs=epochs, lr=lr,
                            batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
                            binarize=binarize, visible=visible, hidden_units=hidden_units,
                            validation=validation, seed=seed, device=device)
    out = out or Path("runs") / f"rbm-{Path(data).stem}-{method}{k}-h{hidden}"
    results = pretrain(out, config, progress=not (quiet or json))
    summary = {"run": str(out), **results["final"], "epochs": results["epochs"],
               "diverged": results["diverged"], "total_seconds": results["seconds"]}
    emit_mapping("pretrain rbm", summary, as_json=json, quiet=quiet)
