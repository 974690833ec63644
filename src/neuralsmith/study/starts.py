"""How a study's networks start: initializer schemes, or greedy pre-training.

Every start maps (spec, depth, data, generator) to a plain ``nn.Sequential`` MLP with
``depth`` hidden layers of ``spec.hidden`` units, ready for the common fine-tuning budget.
New starts plug in by adding a function to :data:`STARTS`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from neuralsmith import init, nets
from neuralsmith.data import Dataset
from neuralsmith.stack import StackedDAE, greedy_pretrain_sda
from neuralsmith.study.spec import StudySpec

Start = Callable[[StudySpec, int, Dataset, torch.Generator], nn.Sequential]


def layer_sizes(spec: StudySpec, depth: int, data: Dataset) -> list[int]:
    """``[n_features, hidden x depth, n_classes]``."""
    return [data.n_features] + [spec.hidden] * depth + [data.n_classes]


def _scheme(name: str, **options) -> Start:
    """A start that builds the MLP with the initializer ``name`` from :mod:`neuralsmith.init`."""

    def start(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
        extra = dict(options)
        if name == "lsuv":  # data-driven: unit variance on a seeded batch of training examples
            extra["batch"] = data.x_train[torch.randperm(len(data.x_train), generator=generator)[:256]]
        return nets.mlp(layer_sizes(spec, depth, data), spec.activation, init=name,
                        generator=generator, **extra)

    start.__doc__ = f"Initializer scheme {name!r} {options or ''}"
    return start


def _uniform_fan_in(spec: StudySpec, depth: int, data: Dataset,
                    generator: torch.Generator) -> nn.Sequential:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, zero biases: Erhan et al.'s baseline."""
    model = nets.mlp(layer_sizes(spec, depth, data), spec.activation, init="default", generator=generator)
    for m in model:
        if isinstance(m, nn.Linear):
            init.uniform_(m.weight, 1.0 / math.sqrt(m.weight.shape[1]), generator=generator)
            nn.init.zeros_(m.bias)
    return model


def _sda(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
    """Stacked denoising autoencoders (masking noise), greedily pre-trained, then dumped."""
    sizes = layer_sizes(spec, depth, data)[:-1]
    sda = StackedDAE(sizes, levels=spec.corruption, generator=generator)
    greedy_pretrain_sda(sda, data.x_train, epochs=spec.pretrain_epochs, lr=spec.dae_lr,
                        batch_size=spec.pretrain_batch_size, generator=generator, progress=False)
    return sda.to_mlp(data.n_classes, spec.activation)


def _dbn(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
    """A Deep Belief Network: RBMs trained greedily with CD-1, then dumped."""
    from neuralsmith.stack import DBN, greedy_pretrain_dbn

    dbn = DBN(layer_sizes(spec, depth, data)[:-1])
    greedy_pretrain_dbn(dbn, data.x_train, epochs=spec.pretrain_epochs, lr=spec.rbm_lr,
                        batch_size=spec.pretrain_batch_size, generator=generator, progress=False)
    return dbn.to_mlp(data.n_classes, spec.activation)


STARTS: dict[str, Start] = {
    "default": _scheme("default"),
    "uniform": _uniform_fan_in,
    "normal": _scheme("normal", std=0.01),
    "glorot": _scheme("glorot_uniform"),
    "he": _scheme("he_uniform"),
    "lecun": _scheme("lecun_uniform"),
    "orthogonal": _scheme("orthogonal"),
    "lsuv": _scheme("lsuv"),
    "dbn": _dbn,
    "sda": _sda,
}


def build(start: str, spec: StudySpec, depth: int, data: Dataset,
          generator: torch.Generator) -> nn.Sequential:
    """The network that ``start`` gives.

    Raises:
        ValueError: for an unknown start.
    """
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}; known: {', '.join(STARTS)}")
    return STARTS[start](spec, depth, data, generator)
