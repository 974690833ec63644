"""``neuralsmith sample RUN``: draw images from a trained RBM or DBN, by Gibbs or parallel tempering."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from neuralsmith.cli.common import DeviceOpt, JsonOpt, QuietOpt, SeedOpt, emit_mapping
from neuralsmith.experiments.sampling import SampleSettings, sample_run
from neuralsmith.settings import flat_defaults

#: the API's defaults (their one home)
API = flat_defaults(SampleSettings)
Opt = typer.Option


def sample_cmd(
    run: Annotated[Path, typer.Argument(help="A run folder from `neuralsmith pretrain rbm` or `pretrain dbn`.")],
    n: Annotated[int, Opt("--n", help="Number of samples (chains).")] = API["n"],
    gibbs_steps: Annotated[int, Opt(help="Gibbs sweeps of every chain (in a DBN's top RBM).")] = API["gibbs_steps"],
    method: Annotated[str, Opt("--method", help="gibbs, or pt (parallel tempering).")] = API["method"],
    n_temperatures: Annotated[int, Opt("--n-temperatures", help="Replicas per chain for --method pt.")] = API["n_temperatures"],
    temperature_spacing: Annotated[str, Opt("--temperature-spacing", help="linear or geometric in beta (--method pt).")] = API["temperature_spacing"],
    beta_min: Annotated[Optional[float], Opt("--beta-min", help="Lowest inverse temperature (default 0 linear, 0.01 geometric).")] = API["beta_min"],
    tempering_base: Annotated[str, Opt("--tempering-base", help="PT's distribution at beta 0: uniform, or data (the training data's base rates).")] = API["tempering_base"],
    thin: Annotated[int, Opt("--thin", help="Steps between the states the class-mixing classifier labels.")] = API["thin"],
    classify: Annotated[bool, Opt("--classify/--no-classify", help="Judge class mixing with a classifier fitted on the run's data.")] = API["classify"],
    seed: SeedOpt = API["seed"], device: DeviceOpt = API["device"], json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Sample RUN's model, write RUN/figures/samples[-pt].png, print ESS, swap acceptance, class mixing."""
    options = {k: v for k, v in locals().items() if k in API}
    report = sample_run(run, **options)
    if not json:  # the table shows the numbers; the lists stay in RUN/sampling-<method>.json
        report = _flat(report)
    emit_mapping("samples", report, as_json=json, quiet=quiet)


def _flat(report: dict) -> dict:
    """One row per number: nested class-mixing values inline, lists left out."""
    out = {}
    for key, value in report.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, list)})
        elif not isinstance(value, list):
            out[key] = value
    return out
