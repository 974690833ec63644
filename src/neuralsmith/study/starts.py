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

from neuralsmith.data import Dataset
from neuralsmith.stack import StackedDAE, greedy_pretrain_sda, stack_to_mlp
from neuralsmith.study.spec import StudySpec

Start = Callable[[StudySpec, int, Dataset, torch.Generator], nn.Sequential]


def layer_sizes(spec: StudySpec, depth: int, data: Dataset) -> list[int]:
    """``[n_features, hidden x depth, n_classes]``."""
    return [data.n_features] + [spec.hidden] * depth + [data.n_classes]


def _zero_mlp(spec: StudySpec, depth: int, data: Dataset) -> nn.Sequential:
    sizes = layer_sizes(spec, depth, data)
    weights = [(torch.zeros(b, a), torch.zeros(b)) for a, b in zip(sizes[:-2], sizes[1:-1])]
    return stack_to_mlp(weights, data.n_classes, spec.activation)


def _scheme(name: str, **options) -> Start:
    """A start that applies the initializer ``name`` from :mod:`neuralsmith.init`."""

    def start(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
        from neuralsmith import init

        model = _zero_mlp(spec, depth, data)
        if name == "lsuv":
            init.apply(model, "orthogonal", generator=generator)
            batch = data.x_train[torch.randperm(len(data.x_train), generator=generator)[:256]]
            return init.lsuv_(model, batch)
        return init.apply(model, name, generator=generator, **options)

    start.__doc__ = f"Initializer scheme {name!r} {options or ''}"
    return start


def _uniform_fan_in(spec: StudySpec, depth: int, data: Dataset,
                    generator: torch.Generator) -> nn.Sequential:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, zero biases: Erhan et al.'s baseline."""
    model = _zero_mlp(spec, depth, data)
    for m in model:
        if isinstance(m, nn.Linear):
            a = 1.0 / math.sqrt(m.weight.shape[1])
            with torch.no_grad():
                m.weight.uniform_(-a, a, generator=generator)
    return model


def _default(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
    """PyTorch's own nn.Linear init (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)))."""
    model = _uniform_fan_in(spec, depth, data, generator)
    for m in model:
        if isinstance(m, nn.Linear):
            a = 1.0 / math.sqrt(m.weight.shape[1])
            with torch.no_grad():
                m.bias.uniform_(-a, a, generator=generator)
    return model


def _sda(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
    """Stacked denoising autoencoders (masking noise), greedily pre-trained, then dumped."""
    sizes = layer_sizes(spec, depth, data)[:-1]
    sda = StackedDAE(sizes, levels=spec.corruption, generator=generator)
    greedy_pretrain_sda(sda, data.x_train, epochs=spec.pretrain_epochs, lr=spec.pretrain_lr * 2,
                        batch_size=spec.batch_size, generator=generator, progress=False)
    return sda.to_mlp(data.n_classes, spec.activation)


def _dbn(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
    """A Deep Belief Network: RBMs trained greedily with CD-1, then dumped."""
    from neuralsmith.stack import DBN, greedy_pretrain_dbn

    dbn = DBN(layer_sizes(spec, depth, data)[:-1])
    greedy_pretrain_dbn(dbn, data.x_train, epochs=spec.pretrain_epochs, lr=spec.pretrain_lr,
                        batch_size=spec.batch_size, generator=generator, progress=False)
    return dbn.to_mlp(data.n_classes, spec.activation)


STARTS: dict[str, Start] = {
    "default": _default,
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
