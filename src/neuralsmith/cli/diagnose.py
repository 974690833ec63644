"""``neuralsmith diagnose``: gradient flow through an MLP at initialization (and after a few steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith import nets
from neuralsmith.cli.common import ArchOpt, joined, DataOpt, DeviceOpt, JsonOpt, LrOpt, OutOpt, OverwriteOpt, QuietOpt, \
    ResumeOpt, SeedOpt, console, emit_json, emit_rows, folder_mode
from neuralsmith.experiments import diagnose as experiment
from neuralsmith.settings import flat_defaults, from_options

Opt = typer.Option
D = flat_defaults(experiment.Config)
SPECTRUM_COLUMNS = ("chi", "spread", "condition", "s_min", "s_max", "method")


def diagnose_cmd(
    arch: ArchOpt = joined(D["arch"], "-"),
    activation: Annotated[str, Opt("--activation", help="sigmoid, tanh, relu or linear.")] = D["activation"],
    init: Annotated[str, Opt("--init", help="A scheme from `neuralsmith init list`.")] = D["init"],
    init_opt: Annotated[Optional[list[str]], Opt(
        "--init-opt", help="A scheme option KEY=VALUE, e.g. std=0.01 (repeatable).")] = None,
    data: DataOpt = D["data"], seed: SeedOpt = D["seed"],
    steps: Annotated[int, Opt("--steps", help="SGD steps to take before measuring again.")] = D["steps"],
    lr: LrOpt = D["lr"],
    batch_size: Annotated[int, Opt("--batch-size", help="Rows in the measured batch (and each SGD step).")] = D["batch_size"],
    device: DeviceOpt = D["device"],
    spectrum: Annotated[bool, Opt("--spectrum", help="Also the singular values of the input-output Jacobian "
                                  "(chi, spread, condition, verdict) and their density figure.")] = D["spectrum"],
    figure: Annotated[Optional[Path], Opt("--figure", help="Where to write the figure.")] = None,
    out: OutOpt = None, resume: ResumeOpt = False, overwrite: OverwriteOpt = False,
    json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Measure per-layer gradient norms, activations and saturation of an MLP; say if gradients vanish.

    With --spectrum, also the input-output Jacobian's singular values: chi (mean squared),
    spread (log10 of the 95%/5% ratio), condition number and a verdict (isometric,
    ill-conditioned, collapsing or exploding; thresholds in neuralsmith.spectrum).
    """
    config = from_options(experiment.Config, locals(), arch=nets.parse_hidden(arch),
                          init_options=tuple(init_opt or ()))
    results = experiment.run(config, out, mode=folder_mode(out, resume, overwrite), figure=figure)
    if json:
        emit_json({**results, "init_options": config.options, "run": str(out) if out else None})
        return
    for stage, report in results["reports"].items():
        rows = [{"layer": r["name"], "type": r["kind"], "act": r["nonlinearity"], "|dL/dW|": r["grad_norm"],
                 "|dL/dz|": r["signal_norm"], "mean": r["activation_mean"], "std": r["activation_std"],
                 "saturated": r["saturation"]} for r in report["layers"]]
        emit_rows(f"{stage}: ratio {report['ratio']:.3g} -> {report['verdict']}", rows, as_json=False, quiet=quiet)
    for stage, spec in results.get("spectra", {}).items():
        emit_rows(f"{stage}: Jacobian spectrum -> {spec['verdict']}", [{key: spec[key] for key in SPECTRUM_COLUMNS}],
                  as_json=False, quiet=quiet)
    if not quiet:
        console.print(f"figure: {results['figure']}")
        if "spectrum_figure" in results:
            console.print(f"spectrum figure: {results['spectrum_figure']}")
