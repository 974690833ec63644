"""Small network builders: the MLP that pre-training, fine-tuning and diagnostics share.

An architecture string names layer sizes joined by ``-``; ``NxK`` repeats a size K times:
``64-256x10-10`` is 64 inputs, ten hidden layers of 256 and 10 outputs.

Example:
    >>> net = mlp(parse_arch("64-32x2-10"), "tanh", init="glorot_uniform", generator=torch.Generator())
    >>> net
    Sequential(
      (0): Linear(in_features=64, out_features=32, bias=True)
      (1): Tanh()
      (2): Linear(in_features=32, out_features=32, bias=True)
      (3): Tanh()
      (4): Linear(in_features=32, out_features=10, bias=True)
    )
"""

from __future__ import annotations

import re

import torch
from torch import nn

from neuralsmith import init as init_lib

__all__ = ["ACTIVATIONS", "mlp", "parse_arch"]

ACTIVATIONS: dict[str, type[nn.Module] | None] = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "linear": None,
}
_TOKEN = re.compile(r"^(\d+)(?:x(\d+))?$")


def parse_hidden(arch: str) -> tuple[int, ...]:
    """Hidden layer sizes from a string such as ``500-500-2000``, ``500,500`` or ``256x10``.

    This is what ``--arch`` takes on every command: the hidden layers only (the input and
    output sizes come from the data).

    Raises:
        ValueError: for anything but positive whole sizes joined by ``-`` or ``,`` (no empty
            parts), with ``NxK`` for K layers of N.

    Example:
        >>> parse_hidden("500-500x2")
        (500, 500, 500)
    """
    sizes: list[int] = []
    for token in arch.strip().replace(",", "-").split("-"):
        match = _TOKEN.match(token.strip())
        if not match or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
            raise ValueError(f"--arch takes hidden layer sizes joined by '-', with NxK for K layers "
                             f"of N, as in 500-500-2000 or 256x10; got {arch!r}")
        sizes += [int(match[1])] * int(match[2] or 1)
    return tuple(sizes)


def parse_arch(arch: str) -> list[int]:
    """All layer sizes, input to output, from a string such as ``784-500-500-10`` or ``64-256x10-10``.

    Raises:
        ValueError: for anything but positive sizes joined by ``-`` (at least two of them).

    Example:
        >>> parse_arch("64-256x3-10")
        [64, 256, 256, 256, 10]
    """
    try:
        sizes = list(parse_hidden(arch.replace(",", "!")))  # commas are not taken here
    except ValueError:
        raise ValueError(f"arch must be sizes joined by '-', with NxK for K layers of N, "
                         f"as in 64-256x10-10; got {arch!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"arch needs at least an input and an output size, as in 64-10; got {arch!r}")
    return sizes


def mlp(sizes: list[int], activation: str = "sigmoid", *, init: str = "default",
        generator: torch.Generator | None = None, **init_options) -> nn.Sequential:
    """An ``nn.Sequential`` of Linear + activation per hidden layer; the last layer is linear.

    The layers are built without drawing anything, then filled by ``init``
    (a name in :data:`neuralsmith.init.SCHEMES`, with ``generator`` and ``init_options``).

    Args:
        sizes: layer widths, input first, output last.
        activation: ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"linear"`` (no module).
        init: the initializer scheme.
        generator: the source of randomness for ``init``.

    Raises:
        ValueError: for fewer than two sizes, a size < 1 or an unknown activation.

    Example:
        >>> len(mlp([4, 8, 3], "linear"))
        2
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be at least two positive widths (input, ..., output); got {sizes}")
    make_activation, layers = ACTIVATIONS[activation], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.utils.skip_init(nn.Linear, n_in, n_out))  # filled by ``init`` below
        if make_activation is not None and i < len(sizes) - 2:  # the output layer stays linear
            layers.append(make_activation())
    model = nn.Sequential(*layers)
    return init_lib.apply(model, init, generator=generator, **init_options)
