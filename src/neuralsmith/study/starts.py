"""How a study's networks start: initializer schemes, or greedy pre-training.

Every start maps (spec, depth, data, one generator per seed, device) to plain CPU
``nn.Sequential`` MLPs with ``depth`` hidden layers of ``spec.hidden`` units, ready for the
common fine-tuning budget. A start may build its seeds together (the DBN and the SdA pre-train
them as one batched model, on ``device``; initializer schemes ignore it). New starts plug in
by adding a function to :data:`STARTS`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from neuralsmith import init, nets, seeds
from neuralsmith.data import Dataset
from neuralsmith.ensemble import pretrain_dbns, pretrain_sdas
from neuralsmith.stack import DBN, StackedDAE
from neuralsmith.study.spec import StudySpec

Start = Callable[[StudySpec, int, Dataset, Sequence[torch.Generator], torch.device], list[nn.Sequential]]
OneSeed = Callable[[StudySpec, int, Dataset, torch.Generator], nn.Sequential]


def per_seed(build_one: OneSeed) -> Start:
    """Lift a one-network start to a start for every seed, built one after another."""

    def start(spec: StudySpec, depth: int, data: Dataset, generators: Sequence[torch.Generator],
              device: torch.device) -> list[nn.Sequential]:
        return [build_one(spec, depth, data, g) for g in generators]

    start.__doc__ = build_one.__doc__
    return start


def layer_sizes(spec: StudySpec, depth: int, data: Dataset) -> list[int]:
    """``[n_features, hidden x depth, n_classes]``."""
    return [data.n_features] + [spec.hidden] * depth + [data.n_classes]


def _scheme(name: str, **options) -> Start:
    """A start that builds the MLP with the initializer ``name`` from :mod:`neuralsmith.init`."""

    def start_one(spec: StudySpec, depth: int, data: Dataset, generator: torch.Generator) -> nn.Sequential:
        extra = dict(options)
        if name == "lsuv":  # data-driven: unit variance on a seeded batch of training examples
            extra["batch"] = data.x_train[torch.randperm(len(data.x_train), generator=generator)[:256]]
        return nets.mlp(layer_sizes(spec, depth, data), spec.activation, init=name,
                        generator=generator, **extra)

    start_one.__doc__ = f"Initializer scheme {name!r} {options or ''}"
    return per_seed(start_one)


def _uniform_fan_in(spec: StudySpec, depth: int, data: Dataset,
                    generator: torch.Generator) -> nn.Sequential:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, zero biases: Erhan et al.'s baseline."""
    model = nets.mlp(layer_sizes(spec, depth, data), spec.activation, init="default", generator=generator)
    for m in model:
        if isinstance(m, nn.Linear):
            init.symmetric_uniform_(m.weight, 1.0 / math.sqrt(m.weight.shape[1]), generator=generator)
            nn.init.zeros_(m.bias)
    return model


def pretraining_generators(generators: Sequence[torch.Generator],
                           device: torch.device) -> list[torch.Generator]:
    """The generators pre-training draws from on ``device``, one per seed.

    On the CPU these are the seeds' own generators, which drew the initial weights and go on
    drawing (so CPU results are what they always were). On another device each seed gets a
    generator there, seeded with its CPU generator's seed (another stream: other numbers).
    """
    if device.type == "cpu":
        return list(generators)
    return [seeds.generator(g.initial_seed(), device) for g in generators]


def _sda(spec: StudySpec, depth: int, data: Dataset, generators: Sequence[torch.Generator],
         device: torch.device) -> list[nn.Sequential]:
    """Stacked denoising autoencoders (masking noise), all seeds pre-trained as one batched model."""
    sizes = layer_sizes(spec, depth, data)[:-1]
    sdas = [StackedDAE(sizes, levels=spec.corruption, generator=g).to(device) for g in generators]
    pretrain_sdas(sdas, data.x_train.to(device), pretraining_generators(generators, device),
                  epochs=spec.pretrain_epochs, lr=spec.dae_lr, batch_size=spec.pretrain_batch_size,
                  precision=spec.precision)
    return [sda.to_mlp(data.n_classes, spec.activation).cpu() for sda in sdas]


def _dbn(spec: StudySpec, depth: int, data: Dataset, generators: Sequence[torch.Generator],
         device: torch.device) -> list[nn.Sequential]:
    """Deep Belief Networks: RBMs trained greedily with CD-1, all seeds as one batched model."""
    dbns = [DBN(layer_sizes(spec, depth, data)[:-1], generator=g).to(device) for g in generators]
    pretrain_dbns(dbns, data.x_train.to(device), pretraining_generators(generators, device),
                  epochs=spec.pretrain_epochs, lr=spec.rbm_lr, batch_size=spec.pretrain_batch_size,
                  precision=spec.precision)
    return [dbn.to_mlp(data.n_classes, spec.activation).cpu() for dbn in dbns]


def _dbm(spec: StudySpec, depth: int, data: Dataset, generators: Sequence[torch.Generator],
         device: torch.device) -> list[nn.Sequential]:
    """Deep Boltzmann Machines (Salakhutdinov & Hinton 2009), one seed after another: the paper's
    doubled RBMs pre-trained greedily (``pretrain_epochs`` of CD-1 each, ``rbm_lr``), then as many
    epochs of joint training (mean field + 100 persistent chains); the weights as a plain MLP."""
    from neuralsmith.rbm.dbm import DBM
    from neuralsmith.rbm.dbm_learning import Settings, train

    settings = Settings(pretrain_epochs=spec.pretrain_epochs, pretrain_lr=spec.rbm_lr,
                        epochs=spec.pretrain_epochs, batch_size=spec.pretrain_batch_size)
    nets_ = []
    for g, g_train in zip(generators, pretraining_generators(generators, device)):
        dbm = DBM(layer_sizes(spec, depth, data)[:-1], generator=g).to(device)
        train(dbm, data.x_train.to(device), settings, generator=g_train, progress=False)
        nets_.append(dbm.to_mlp(data.n_classes, spec.activation).cpu())
    return nets_


STARTS: dict[str, Start] = {
    "default": _scheme("default"),
    "uniform": per_seed(_uniform_fan_in),
    "normal": _scheme("normal", **init.STANDARD_OPTIONS["normal"]),  # N(0, 0.01^2)
    "glorot": _scheme("glorot_uniform"),
    "he": _scheme("he_uniform"),
    "lecun": _scheme("lecun_uniform"),
    "orthogonal": _scheme("orthogonal"),
    "lsuv": _scheme("lsuv"),
    "dbn": _dbn,
    "sda": _sda,
    "dbm": _dbm,  # not in the default study's starts: ask for it (starts = [..., "dbm"])
}


def build(start: str, spec: StudySpec, depth: int, data: Dataset, generators: Sequence[torch.Generator],
          device: torch.device | str = "cpu") -> list[nn.Sequential]:
    """The networks that ``start`` gives, one per generator (seed), on the CPU.

    Args:
        device: where a pre-trained start (``dbn``, ``sda``, ``dbm``) pre-trains.

    Raises:
        ValueError: for an unknown start.
    """
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}; known: {', '.join(STARTS)}")
    return STARTS[start](spec, depth, data, generators, torch.device(device))
