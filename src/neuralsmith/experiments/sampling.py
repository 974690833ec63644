"""``neuralsmith sample RUN``: draw samples from a trained run's model and judge their quality.

Any run kind whose experiment module has ``sample(run_dir, config, **options) -> dict`` can be
sampled (:func:`sample_run` finds it through :func:`neuralsmith.experiments.read_run`): the
module loads its model and data and hands them to :func:`draw`, which runs the chains
(:func:`neuralsmith.rbm.tempering.sample`: plain Gibbs or parallel tempering), writes
``RUN/figures/samples.png`` (``samples-pt.png`` for parallel tempering) and
``RUN/sampling-<method>.json``, and returns the diagnostics of :mod:`neuralsmith.rbm.mixing`:
the effective sample size of the chains' energies, swap acceptance rates, and, when the run's
data have labels, how the chains move between the classes a logistic regression fitted on
the training data sees in the samples.

Example:
    >>> SampleSettings(method="pt").betas().tolist()[:2]
    [0.0, 0.1111111111111111]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from neuralsmith import experiments, plots, seeds
from neuralsmith.device import resolve_device
from neuralsmith.rbm import mixing, tempering
from neuralsmith.rbm.learning import TEMPERING_BASES
from neuralsmith.rbm.partition import base_rate_bias
from neuralsmith.runfolder import write_json
from neuralsmith.settings import check_count

CLASSIFIER_ROWS = 10000  # training rows the class-mixing classifier is fitted on, at most


@dataclass(frozen=True)
class SampleSettings:
    """How to sample a run; checked on creation (the home of ``neuralsmith sample``'s defaults).

    Attributes:
        n: chains, one sample each.
        gibbs_steps: sweeps of every chain.
        method: ``"gibbs"`` or ``"pt"`` (parallel tempering).
        n_temperatures, temperature_spacing, beta_min: PT's ladder
            (:func:`neuralsmith.rbm.tempering.ladder`).
        tempering_base: PT's distribution at beta = 0: ``"uniform"``, or ``"data"`` (the base
            rates of the run's training data, as the chains' layer sees it;
            :class:`neuralsmith.rbm.tempering.BaseRate`).
        thin: steps between the states recorded for class mixing.
        classify: fit a classifier on the run's labelled data and report class mixing.
        seed: every draw.
        device: where to sample.
    """

    n: int = 100
    gibbs_steps: int = 1000
    method: str = "gibbs"
    n_temperatures: int = tempering.N_TEMPERATURES
    temperature_spacing: str = "linear"
    beta_min: float | None = None
    tempering_base: str = "uniform"
    thin: int = 10
    classify: bool = True
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_count("n", self.n, 1, "samples to draw")
        check_count("gibbs_steps", self.gibbs_steps, 1, "Gibbs steps of every chain")
        check_count("thin", self.thin, 1, "steps between recorded states")
        check_count("n_temperatures", self.n_temperatures, 2,
                    "replicas per chain for --method pt; 10 is usual")
        if self.method not in tempering.METHODS:
            raise ValueError(f"method must be one of {', '.join(tempering.METHODS)}; got {self.method!r}")
        tempering.check_spacing(self.temperature_spacing, self.beta_min)
        if self.tempering_base not in TEMPERING_BASES:
            raise ValueError(f"tempering_base must be one of {', '.join(TEMPERING_BASES)}; "
                             f"got {self.tempering_base!r}")
        seeds.resolve_seed(self.seed)
        resolve_device(self.device)

    def betas(self):
        """The inverse temperatures the chains run at (``[1.0]`` for Gibbs)."""
        k = self.n_temperatures if self.method == "pt" else 1
        return tempering.ladder(k, self.temperature_spacing, self.beta_min)

    def chain_options(self) -> dict[str, Any]:
        """Keywords of :func:`neuralsmith.rbm.tempering.sample`."""
        return {"steps": self.gibbs_steps, "method": self.method, "n_temperatures": self.n_temperatures,
                "spacing": self.temperature_spacing, "beta_min": self.beta_min, "thin": self.thin}


def sample_run(run_dir: str | os.PathLike, **options: Any) -> dict[str, Any]:
    """Sample the run in ``run_dir``, whatever its kind (``options``: :class:`SampleSettings`).

    Raises:
        FileNotFoundError: ``run_dir`` is not a run folder.
        ValueError: a bad option, or a kind with no model to sample.
    """
    settings = SampleSettings(**options)
    module, config = experiments.read_run(run_dir)
    if not hasattr(module, "sample"):
        raise ValueError(f"{run_dir}: a {config.kind} run has no generative model to sample; "
                         "give a run of `neuralsmith pretrain rbm` or `pretrain dbn`")
    return module.sample(Path(run_dir), config, settings)


@dataclass
class Target:
    """What :func:`draw` samples: a model with the chain protocol and how to show its states.

    Attributes:
        model: the chains' model (an RBM, a DBN's top RBM, a DBM).
        decode: chain states of layer ``record_layer`` -> pixel rows (probabilities), drawing
            from the generator it is given (a DBN's down pass).
        image_shape: (height, width) of a pixel row.
        normalize: stretch each image's grey levels (real-valued visibles).
        title: what the figure calls the model.
        base_data: rows of the chains' layer (the training data, or its up-pass to a DBN's
            top RBM) for ``tempering_base="data"``.
    """

    model: Any
    decode: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    image_shape: tuple[int, int]
    normalize: bool = False
    title: str = "samples"
    base_data: torch.Tensor | None = None


def draw(run_dir: Path, target: Target, settings: SampleSettings,
         labelled: tuple[torch.Tensor, torch.Tensor, int] | None = None) -> dict[str, Any]:
    """Run the chains, write the figure and ``sampling-<method>.json``, return the diagnostics.

    Args:
        run_dir: the run folder (``figures/`` is written).
        target: the model and how to show it.
        settings: the chains.
        labelled: (x, y, n_classes) of the run's training data for the class-mixing classifier.
    """
    g = seeds.generator(settings.seed, resolve_device(settings.device))
    base = None
    if settings.method == "pt" and settings.tempering_base == "data":
        base = base_rate_bias(target.base_data, target.base_data.shape[1])
    chains = tempering.sample(target.model, settings.n, generator=g, base_bias=base,
                              **settings.chain_options())
    with torch.no_grad():
        pixels = target.decode(chains.state[0], g).cpu()
    name = "samples.png" if settings.method == "gibbs" else f"samples-{settings.method}.png"
    label = "Gibbs" if settings.method == "gibbs" else f"PT, {len(chains.betas)} temperatures"
    fig = plots.image_grid(pixels, target.image_shape, f"{target.title} ({settings.gibbs_steps} "
                           f"steps, {label})", normalize=target.normalize)
    figure = plots.save(fig, run_dir / "figures" / name)
    report = {"figure": str(figure), "method": settings.method, "n": settings.n,
              "gibbs_steps": settings.gibbs_steps, "seed": settings.seed,
              "betas": chains.betas.tolist(), "tempering_base": settings.tempering_base,
              "seconds": round(chains.seconds, 3),
              **_diagnostics(chains, target, settings, labelled, g)}
    write_json(run_dir / f"sampling-{settings.method}.json", report)
    return report


def _diagnostics(chains: tempering.Chains, target: Target, settings: SampleSettings,
                 labelled: tuple[torch.Tensor, torch.Tensor, int] | None,
                 g: torch.Generator) -> dict[str, Any]:
    """ESS and tau of the energies, swap acceptance, and class mixing when labels allow."""
    out = mixing.chain_report(chains.energies, chains.acceptance if settings.method == "pt" else None)
    trace = chains.trace
    if not settings.classify or labelled is None or trace is None or len(trace) < 2:
        return out
    x, y, n_classes = labelled[0][:CLASSIFIER_ROWS].cpu(), labelled[1][:CLASSIFIER_ROWS].cpu(), labelled[2]
    clf = mixing.fit_classifier(x, y, n_classes)
    with torch.no_grad():
        flat = target.decode(trace.reshape(-1, trace.shape[-1]), g).cpu()
    labels = mixing.label(clf, flat.reshape(*trace.shape[:2], -1))  # (records, chains)
    out["class_mixing"] = mixing.class_mixing(labels, n_classes, settings.thin).to_dict()
    out["classifier_train_accuracy"] = float((mixing.label(clf, x) == y).double().mean())
    return out
