"""``neuralsmith pretrain``: an RBM, a Deep Belief Network or stacked denoising autoencoders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import DataOpt, DeviceOpt, JsonOpt, LrOpt, MomentumOpt, OutOpt, \
    OverwriteOpt, QuietOpt, ResumeOpt, ScheduleOpt, SeedOpt, emit_mapping, run_mode
from neuralsmith.experiments import rbm as rbm_experiment
from neuralsmith.pretraining import StackConfig, pretrain_stack
from neuralsmith.settings import flat_defaults, from_flat

app = typer.Typer(help="Pre-train an RBM, a DBN or stacked DAEs.", no_args_is_help=True)

Opt = typer.Option


RBM = flat_defaults(rbm_experiment.Config)


@app.command("rbm")
def rbm_cmd(
    data: DataOpt = RBM["data"],
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = RBM["hidden"],
    method: Annotated[str, Opt("--method", help="cd, pcd or fpcd.")] = RBM["method"],
    k: Annotated[int, Opt("--k", help="Gibbs steps per update.")] = RBM["k"],
    epochs: Annotated[int, Opt("--epochs", help="Passes over the data.")] = RBM["epochs"],
    lr: LrOpt = RBM["lr"],
    schedule: ScheduleOpt = RBM["schedule"],
    batch_size: Annotated[int, Opt("--batch-size", help="Examples per update.")] = RBM["batch_size"],
    momentum: MomentumOpt = RBM["momentum"],
    weight_decay: Annotated[float, Opt("--weight-decay", help="L2 decay of the weights.")] = RBM["weight_decay"],
    binarize: Annotated[str, Opt("--binarize", help="none, threshold or stochastic.")] = RBM["binarize"],
    visible: Annotated[str, Opt("--visible", help="bernoulli, or gaussian (standardizes the data).")] = RBM["visible"],
    hidden_units: Annotated[str, Opt("--hidden-units", help="bernoulli or relu.")] = RBM["hidden_units"],
    validation: Annotated[float, Opt("--validation", help="Fraction of train held out for the free-energy gap.")] = RBM["validation"],
    seed: SeedOpt = RBM["seed"],
    device: DeviceOpt = RBM["device"],
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Train an RBM by CD-k, PCD or fast PCD into a run folder (--resume continues a killed run)."""
    config = from_flat(rbm_experiment.Config, dict(
        data=data, hidden=hidden, method=method, k=k, epochs=epochs, lr=lr, schedule=schedule,
        batch_size=batch_size, momentum=momentum, weight_decay=weight_decay, binarize=binarize,
        visible=visible, hidden_units=hidden_units, validation=validation, seed=seed, device=device))
    out = out or Path("runs") / f"rbm-{Path(data).stem}-{method}{k}-h{hidden}"
    results = rbm_experiment.run(config, out, mode=run_mode(resume, overwrite), progress=not (quiet or json))
    summary = {"run": str(out), **results["final"], "epochs": results["epochs"],
               "diverged": results["diverged"], "total_seconds": results["seconds"]}
    emit_mapping("pretrain rbm", summary, as_json=json, quiet=quiet)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"{what} takes comma-separated numbers, e.g. 500,500,2000; got {text!r}") from None


def _stack_cmd(kind: str):
    def command(
        data: DataOpt = "digits",
        layers: Annotated[str, Opt("--layers", help="Hidden sizes, e.g. 500,500,2000.")] = "500,500,2000",
        epochs: Annotated[int, Opt("--epochs", help="Epochs per layer.")] = 10,
        lr: LrOpt = 0.05 if kind == "dbn" else 0.1,
        batch_size: Annotated[int, Opt("--batch-size", help="Examples per update.")] = 20,
        method: Annotated[str, Opt("--method", help="DBN: cd, pcd or fpcd.")] = "cd",
        k: Annotated[int, Opt("--k", help="DBN: Gibbs steps per update.")] = 1,
        corruption: Annotated[str, Opt("--corruption", help="SdA: masking level(s), one per layer.")] = "0.1,0.2,0.3",
        binarize: Annotated[str, Opt("--binarize", help="none, threshold or stochastic.")] = "none",
        seed: SeedOpt = 0, out: OutOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
    ) -> None:
        layer_sizes = tuple(int(v) for v in _floats(layers, "--layers"))
        cfg = StackConfig(kind=kind, data=data, layers=layer_sizes, epochs=epochs, lr=lr,
                          batch_size=batch_size, method=method, k=k, corruption=_floats(corruption, "--corruption"),
                          binarize=binarize, seed=seed)
        out = out or Path("runs") / f"{kind}-{Path(data).stem}-{layers.replace(',', '-')}"
        results = pretrain_stack(out, cfg, progress=not (quiet or json))
        emit_mapping(f"pretrain {kind}", {"run": str(out), "layers": layers, "epochs_per_layer": epochs,
                                          "seconds": results["seconds"]}, as_json=json, quiet=quiet)

    command.__doc__ = {"dbn": "Greedily pre-train a Deep Belief Network (a stack of RBMs).",
                       "sda": "Greedily pre-train stacked denoising autoencoders."}[kind]
    return command


app.command("dbn")(_stack_cmd("dbn"))
app.command("sda")(_stack_cmd("sda"))
