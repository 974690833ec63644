"""``neuralsmith diagnose``: gradient flow through an MLP at initialization (and after a few steps).

Glorot & Bengio (2010): with a poor start the back-propagated gradients shrink (or grow)
layer by layer. :func:`run` builds the MLP the config describes (input and output sizes from
the data), measures per-layer gradient norms, activations and saturation on one seeded batch
(:func:`neuralsmith.diagnostics.gradient_flow`), optionally again after ``steps`` SGD steps,
and draws ``gradient_flow.png``. With ``spectrum`` it also measures the singular values of the
input-output Jacobian on the first :data:`SPECTRUM_SAMPLES` rows of that batch at each stage
(:func:`neuralsmith.spectrum.jacobian_spectrum`; Pennington et al. 2017) and draws their
density in ``spectrum.png``. A run folder (config.toml, results.json, figures/) is written
only when ``out`` is given.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from neuralsmith import data as data_api
from neuralsmith import diagnostics, init, limits, nets, plots, seeds, spectrum
from neuralsmith.device import resolve_device
from neuralsmith.experiments import open_run

NUMBER_TYPES = {"float": float, "int": int}
SPECTRUM_SAMPLES = 8  # rows of the measured batch whose Jacobian spectra are taken


def parse_init_options(scheme: str, pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("std=0.01", "mode=fan_out")`` -> ``{"std": 0.01, "mode": "fan_out"}`` for ``scheme``.

    Numeric options of the scheme's function (``float``, ``int``) must parse as numbers; the
    rest stay strings. The result is checked by :func:`check_init`.

    Raises:
        ValueError: a pair without ``=``, a number that is not one, an unknown scheme or option,
            or a required option left out.
    """
    if scheme not in init.SCHEMES:
        check_init(scheme, {})  # names the known schemes
    params = inspect.signature(init.SCHEMES[scheme].fn).parameters
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--init-opt takes KEY=VALUE, as in --init-opt std=0.01; got {pair!r}")
        kind = NUMBER_TYPES.get(params[key].annotation) if key in params else None
        options[key] = _number(key, value, kind) if kind else value
    check_init(scheme, options)
    return options


def _number(key: str, value: str, kind: type) -> float | int:
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or (kind is int and not number.is_integer()):
        example = "15" if kind is int else "0.01"
        raise ValueError(f"--init-opt {key} takes {'a whole number' if kind is int else 'a number'}, "
                         f"as in {key}={example}; got {value!r}")
    return int(number) if kind is int else number


def check_init(scheme: str, options: dict[str, Any]) -> None:
    """Refuse an unknown init ``scheme``, an option it does not take, or a missing required one.

    (``lsuv``'s ``batch`` is supplied by the caller, so it is not asked for here.)
    """
    extra = {"batch": torch.zeros(1, 1)} if scheme == "lsuv" else {}
    if "batch" in options:
        raise ValueError("the lsuv batch is the measured batch itself; leave out --init-opt batch=...")
    init.apply(nn.Sequential(), scheme, generator=torch.Generator(), **options, **extra)


@dataclass(frozen=True)
class Config:
    """The settings of one ``diagnose`` run; checked on creation.

    ``arch`` holds the hidden sizes (input and output sizes come from the data);
    ``init_options`` the scheme's options as ``KEY=VALUE`` strings (``--init-opt``).
    """

    kind: ClassVar[str] = "diagnose"
    arch: tuple[int, ...] = (256, 256, 256, 256, 256)
    activation: str = "sigmoid"
    init: str = "glorot_uniform"
    init_options: tuple[str, ...] = ()
    data: str = "digits"
    seed: int = 0
    steps: int = 0
    lr: float = 0.1
    batch_size: int = 256
    device: str = "auto"
    spectrum: bool = False

    def __post_init__(self) -> None:
        if not self.arch or min(self.arch) < 1:
            raise ValueError(f"arch must be hidden sizes >= 1, as in 256x5; got {list(self.arch)}")
        if self.activation not in nets.ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(nets.ACTIVATIONS)}; got {self.activation!r}")
        if self.steps < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"need steps >= 0, batch_size >= 1 and lr > 0; got {self.steps}, "
                             f"{self.batch_size}, {self.lr}")
        parse_init_options(self.init, self.init_options)
        seeds.resolve_seed(self.seed)
        resolve_device(self.device)
        limits.check_network([1, *self.arch, 1], "the MLP", self.batch_size)

    @property
    def options(self) -> dict[str, Any]:
        """The init scheme's options, parsed (numbers as numbers)."""
        return parse_init_options(self.init, self.init_options)


def measure(config: Config, x: torch.Tensor, y: torch.Tensor,
            device: torch.device | str = "cpu") -> dict[str, diagnostics.GradientReport]:
    """Gradient-flow reports of the config's MLP on ``(x, y)``: at init, and after ``steps``.

    The batch and the weights are drawn on the CPU from ``config.seed`` (the same start on
    every device); the measurements run on ``device``. On the CPU this is exactly
    :func:`neuralsmith.diagnostics.diagnose`.
    """
    return measure_all(config, x, y, device)[0]


def measure_all(config: Config, x: torch.Tensor, y: torch.Tensor, device: torch.device | str = "cpu",
                ) -> tuple[dict[str, diagnostics.GradientReport], dict[str, spectrum.Spectrum]]:
    """:func:`measure`, and the Jacobian spectra at the same stages when ``config.spectrum``."""
    g = seeds.generator(config.seed)
    idx = torch.randperm(x.shape[0], generator=g)[:config.batch_size]
    options = {"batch": x[idx], **config.options} if config.init == "lsuv" else config.options
    sizes = [x.shape[1], *config.arch, int(y.max()) + 1]
    limits.check_network(sizes, "the MLP", config.batch_size)
    model = nets.mlp(sizes, config.activation, init=config.init, generator=g, **options).to(device)
    x, y = x.to(device), y.to(device)
    probes = seeds.derived_generator(config.seed, "spectrum", device=x.device)  # Lanczos probes, apart from g
    reports, spectra = {"init": diagnostics.gradient_flow(model, x[idx], y[idx])}, {}
    if config.spectrum:
        spectra["init"] = spectrum.jacobian_spectrum(model, x[idx][:SPECTRUM_SAMPLES], generator=probes)
    if config.steps:
        stage = f"after {config.steps} steps"
        diagnostics.sgd_steps(model, x, y, steps=config.steps, lr=config.lr,
                              batch_size=config.batch_size, generator=g)
        reports[stage] = diagnostics.gradient_flow(model, x[idx], y[idx])
        if config.spectrum:
            spectra[stage] = spectrum.jacobian_spectrum(model, x[idx][:SPECTRUM_SAMPLES], generator=probes)
    return reports, spectra


def run(config: Config, out: str | os.PathLike | None = None, *, mode: str = "new",
        progress: bool = True, figure: str | os.PathLike | None = None) -> dict[str, Any]:
    """Measure the config's MLP; write a run folder only when ``out`` is given.

    The figure goes to ``figure``, else ``OUT/figures/gradient_flow.png``, else
    ``./gradient_flow.png``. ``progress`` is accepted for the protocol (nothing here is long).

    Returns:
        ``{"reports": {stage: report dict}, "figure": path}`` (results.json's content).
    """
    ds = data_api.load(config.data)
    reports, spectra = measure_all(config, ds.x_train, ds.y_train, resolve_device(config.device))
    if out is None:
        return _results(config, reports, spectra, Path(figure or "gradient_flow.png"))
    with open_run(out, config, mode) as run_:
        results = _results(config, reports, spectra, Path(figure or run_.figures / "gradient_flow.png"))
        run_.write_results(results, seed=config.seed)
    return results


def _results(config: Config, reports: dict[str, diagnostics.GradientReport],
             spectra: dict[str, spectrum.Spectrum], path: Path) -> dict[str, Any]:
    """Draw the figures (the spectrum's as ``spectrum.png`` beside ``path``); the reports as plain values."""
    title = f"{config.activation}, {config.init}"
    panels = {f"{title}: ||dL/dW||": {s: r.grad_norms for s, r in reports.items()},
              f"{title}: ||dL/dz||": {s: r.signal_norms for s, r in reports.items()}}
    plots.save(plots.gradient_norms(panels), path)
    results = {"reports": {stage: r.to_dict() for stage, r in reports.items()}, "figure": str(path)}
    if spectra:
        spectrum_path = path.with_name("spectrum.png")
        curves = {f"{stage}: {spec.describe()}": spec.density() for stage, spec in spectra.items()}
        plots.save(plots.spectrum_density({f"{title}: singular values of dy/dx": curves}), spectrum_path)
        results["spectra"] = {stage: spec.to_dict() for stage, spec in spectra.items()}
        results["spectrum_figure"] = str(spectrum_path)
    return results
