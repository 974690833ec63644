"""``neuralsmith plot RUN``: redraw a run's figures from its files, without training.

``metrics.csv`` gives ``figures/learning_curves.png`` (errors and losses against the epoch,
one panel each, one line per stage of a staged run); a run whose checkpoints hold an RBM or
a stack gives ``figures/filters.png`` and, for generative models (RBM, DBN),
``figures/samples.png`` (Gibbs chains from a generator seeded with ``--seed``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from neuralsmith.cli.common import JsonOpt, QuietOpt, SeedOpt, emit_mapping
from neuralsmith.runfolder import RunFolder

RunArg = Annotated[Path, typer.Argument(help="A run folder written by a training command's --out.")]
GROUPS = ("error", "loss")  # one panel per group: columns ending in these words


def plot_cmd(run: RunArg, seed: SeedOpt = 0, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Redraw a run's figures (learning curves; filters and samples where it has them)."""
    written = redraw(run, seed=seed)
    emit_mapping("plot", {name: str(path) for name, path in written.items()}, as_json=json, quiet=quiet)


def redraw(run_dir: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Redraw the figures of the run in ``run_dir``; return figure name -> path written.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run folder, or has nothing to draw.
    """
    from neuralsmith import experiments

    run = RunFolder(run_dir)
    _, config = experiments.read_run(run_dir)  # refuses a folder that is not a run
    written: dict[str, Path] = {}
    rows = run.read_metrics()
    if rows:
        written["learning_curves"] = learning_curves(rows, run.figures / "learning_curves.png",
                                                     f"{Path(run_dir).name}: {config.kind}")
    written.update(_model_figures(run, config.kind, seed))
    if not written:
        raise FileNotFoundError(f"{run_dir}: nothing to draw yet (no metrics.csv, no trained "
                                "model); let the run finish or --resume it")
    return written


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def learning_curves(rows: list[dict[str, str]], path: Path, title: str) -> Path:
    """Every ``*error*`` and ``*loss*`` column of ``metrics.csv`` against the epoch, in ``path``."""
    import matplotlib.pyplot as plt

    from neuralsmith import plots

    columns = [c for c in rows[0] if c != "epoch"]
    groups = {g: [c for c in columns if g in c] for g in GROUPS}
    groups = {g: cs for g, cs in groups.items() if cs} or {"value": [
        c for c in columns if c not in ("seconds", "layer", "step") and not math.isnan(_number(rows[0][c]))]}
    fig, axes = plt.subplots(1, len(groups), figsize=(6.4 * len(groups), 4.2), squeeze=False)
    for ax, (group, names) in zip(axes[0], groups.items()):
        for stage, stage_rows in _stages(rows).items():
            epochs = [_number(r.get("epoch")) for r in stage_rows]
            for name in names:
                ax.plot(epochs, [_number(r.get(name)) for r in stage_rows], label=f"{stage}{name}")
        ax.set(xlabel="epoch", ylabel=group, title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return plots.save(fig, path)


def _stages(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Rows by stage: a stack's layers, a sweep's (init, depth) cells; else one stage."""
    keys = [k for k in ("layer", "init", "depth") if k in rows[0]]
    out: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        name = "".join(f"{k} {row[k]}, " for k in keys)
        out.setdefault(name, []).append(row)
    return out


def _model_figures(run: RunFolder, kind: str, seed: int) -> dict[str, Path]:
    """Filters and samples from the checkpoints of an RBM or a stack."""
    if kind == "rbm" and (run.checkpoints / "model.json").is_file():
        return _rbm_figures(run, seed)
    if kind in ("dbn", "sda") and (run.checkpoints / "stack.json").is_file():
        return _stack_figures(run, kind, seed)
    return {}


def _rbm_figures(run: RunFolder, seed: int) -> dict[str, Path]:
    import torch

    from neuralsmith import checkpoint, plots
    from neuralsmith.rbm import model as rbm_model

    rbm = rbm_model.load(run.checkpoints, "model")
    shape = tuple(checkpoint.load(run.checkpoints, "model")[1]["data"]["image_shape"])
    out = {"filters": plots.save(plots.image_grid(rbm.weight.detach()[:100], shape,
                                                  "filters (first 100 hidden units)"),
                                 run.figures / "filters.png")}
    g = torch.Generator(rbm.weight.device).manual_seed(seed)
    with torch.no_grad():
        v = rbm.sample(64, steps=999, generator=g)
        means = rbm.visible_probs(rbm.sample_hidden(v, g))
    out["samples"] = plots.save(plots.image_grid(means, shape, "samples (1000 Gibbs steps)",
                                                 normalize=rbm.visible_units.name != "bernoulli"),
                                run.figures / "samples.png")
    return out


def _stack_figures(run: RunFolder, kind: str, seed: int) -> dict[str, Path]:
    from neuralsmith import plots
    from neuralsmith.experiments import stack as stack_experiment
    from neuralsmith.stack import load_stack

    model, meta = load_stack(run.checkpoints)
    first = model.rbms[0].weight if kind == "dbn" else model.layers[0].weight
    shape = tuple(meta["image_shape"])
    out = {"filters": plots.save(plots.image_grid(first.detach()[:100].cpu(), shape,
                                                  f"{kind}: first-layer filters"),
                                 run.figures / "filters.png")}
    if kind == "dbn":
        out["samples"] = stack_experiment.sample(run.path, seed=seed, device="cpu")
    return out
