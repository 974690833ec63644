"""Which modules count as weight layers, and forward hooks that are always removed.

Shared by :mod:`neuralsmith.init` (LSUV walks layers in forward order) and
:mod:`neuralsmith.diagnostics` (per-layer statistics).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

FEED_FORWARD = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RECURRENT = (nn.RNN, nn.GRU, nn.LSTM)
WEIGHT_LAYERS = FEED_FORWARD + RECURRENT


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs of every Linear, Conv and RNN layer, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


@contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: Callable) -> Iterator[None]:
    """Register ``hook`` as a forward hook on each module; remove every one on exit, even on error."""
    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def forward_order(model: nn.Module, batch: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The weight layers in the order a forward pass on ``batch`` calls them (each once)."""
    names = {m: name for name, m in weight_layers(model)}
    called: dict[nn.Module, None] = {}

    def hook(module, args, output):
        called.setdefault(module, None)

    with forward_hooks(names, hook), torch.no_grad():
        model(batch)
    return [(names[m], m) for m in called]
