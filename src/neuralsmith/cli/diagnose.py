"""``neuralsmith diagnose``: gradient flow through an MLP at initialization (and after a few steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith import data as data_api
from neuralsmith import diagnostics, nets, plots
from neuralsmith.cli.common import (DataOpt, JsonOpt, OutOpt, QuietOpt, SeedOpt, console, emit_json,
                                    emit_rows)
from neuralsmith.runfolder import RunFolder


def diagnose_cmd(
    arch: Annotated[str, typer.Option("--arch", help="Layer sizes, e.g. 64-256x10-10.")],
    activation: Annotated[str, typer.Option(help="sigmoid, tanh, relu or linear.")] = "sigmoid",
    init: Annotated[str, typer.Option(help="A scheme from `neuralsmith init list`.")] = "glorot_uniform",
    init_opt: Annotated[Optional[list[str]], typer.Option(
        "--init-opt", help="A scheme option KEY=VALUE, e.g. std=0.01 (repeatable).")] = None,
    data: DataOpt = "digits", seed: SeedOpt = 0,
    steps: Annotated[int, typer.Option(help="SGD steps to take before measuring again.")] = 0,
    lr: Annotated[float, typer.Option(help="SGD learning rate for --steps.")] = 0.1,
    batch_size: Annotated[int, typer.Option(help="Rows in the measured batch.")] = 256,
    figure: Annotated[Optional[Path], typer.Option(help="Where to write the figure.")] = None,
    json: JsonOpt = False, out: OutOpt = None, quiet: QuietOpt = False,
) -> None:
    """Measure per-layer gradient norms, activations and saturation of an MLP; say if gradients vanish."""
    options = _parse_options(init_opt or [])
    config = {"arch": arch, "activation": activation, "init": init, "data": data, "seed": seed,
              "steps": steps, "lr": lr, "batch_size": batch_size, "init_options": options}
    ds = data_api.load(data)
    reports = diagnostics.diagnose(nets.parse_arch(arch), activation, init, ds.x_train, ds.y_train,
                                   steps=steps, lr=lr, batch_size=batch_size, seed=seed, **options)
    run = RunFolder(out) if out else None
    path = figure or (run.figures if run else Path(".")) / "gradient_flow.png"
    panels = {f"{activation}, {init}: ||dL/dW||": {s: r.grad_norms for s, r in reports.items()},
              f"{activation}, {init}: ||dL/dz||": {s: r.signal_norms for s, r in reports.items()}}
    plots.save(plots.gradient_norms(panels), path)
    results = {"reports": {stage: r.to_dict() for stage, r in reports.items()}, "figure": str(path)}
    if run:
        run.write_config(config)
        run.write_results(results, seed=seed)
    if json:
        emit_json({**config, **results})
        return
    for stage, report in reports.items():
        rows = [{"layer": r.name, "type": r.kind, "act": r.nonlinearity, "|dL/dW|": r.grad_norm,
                 "|dL/dz|": r.signal_norm, "mean": r.activation_mean, "std": r.activation_std,
                 "saturated": r.saturation} for r in report.layers]
        emit_rows(f"{stage}: ratio {report.ratio:.3g} -> {report.verdict}", rows, as_json=False, quiet=quiet)
    if not quiet:
        console.print(f"figure: {path}")


def _parse_options(pairs: list[str]) -> dict[str, float | str]:
    """``["std=0.01", "mode=fan_out"]`` -> ``{"std": 0.01, "mode": "fan_out"}`` (numbers as floats)."""
    options: dict[str, float | str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--init-opt takes KEY=VALUE, as in --init-opt std=0.01; got {pair!r}")
        try:
            options[key] = float(value)
        except ValueError:
            options[key] = value
    return options
