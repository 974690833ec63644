r"""Vanishing and exploding gradients, measured layer by layer on one batch.

For every weight layer (Linear, Conv, nn.RNN / nn.GRU / nn.LSTM) in forward order,
:func:`gradient_flow` reports the weight-gradient norm ||dL/dW||, the back-propagated signal
norm ||dL/dz|| at the layer's output z (its pre-activation; for a recurrent layer its output
sequence), and the mean, standard deviation and saturation of the activation that follows it.

The verdict reads the ratio of the signal norm at the first layer to that at the last:

.. math::
    \rho = \frac{\lVert \partial L / \partial z_1 \rVert}{\lVert \partial L / \partial z_L \rVert},
    \qquad
    \text{vanishing if } \rho < 10^{-2},\quad \text{exploding if } \rho > 10^{2},\quad
    \text{healthy otherwise}

Two orders of magnitude either way: a well-started 10 to 20 layer net (He for ReLU, Glorot
for tanh) stays within one, while a sigmoid net with N(0, 0.01^2) weights falls by more than
ten. A non-finite signal counts as exploding.

One case is not vanishing though its ratio is 0: an output layer whose weights are all zero
(as the Theano tutorials and :func:`neuralsmith.stack.stack_to_mlp` start the classifier on
top of a pre-trained stack). Then dL/dz is exactly 0 below it until its first update, whatever
the layers below are; the verdict says ``"blocked"`` (:data:`BLOCKED`), not ``"vanishing"``.

Example:
    >>> from neuralsmith import nets
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nets.mlp([8] + [32] * 6 + [3], "sigmoid", init="normal", std=0.01, generator=g)
    >>> x, y = torch.randn(16, 8, generator=g), torch.randint(3, (16,), generator=g)
    >>> gradient_flow(net, x, y).verdict
    'vanishing'
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralsmith import nets
from neuralsmith.layers import RECURRENT, forward_hooks, weight_layers
from neuralsmith.spectrum import Spectrum, jacobian_spectrum  # the whole Jacobian's spectrum: see spectrum.py

__all__ = [
    "BLOCKED", "EXPLODING_ABOVE", "SATURATION_MARGIN", "VANISHING_BELOW", "GradientReport", "LayerRecord",
    "Recording", "Spectrum", "diagnose", "gradient_flow", "jacobian_spectrum", "record", "saturation", "sgd_steps",
    "verdict",
]

VANISHING_BELOW = 1e-2  # first/last signal ratio below this: vanishing
EXPLODING_ABOVE = 1e2  # ... above this: exploding
BLOCKED = "blocked"  # the verdict when a zero output layer stops every gradient below it
SATURATION_MARGIN = 0.01  # sigmoid/tanh outputs this close to a bound count as saturated
ACTIVATIONS = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu"}


def saturation(activation: Tensor, nonlinearity: str) -> float:
    """Fraction of saturated units: sigmoid/tanh within ``SATURATION_MARGIN`` of a bound, ReLU at 0.

    Example:
        >>> saturation(torch.tensor([0.0, 0.5, 0.995, 1.0]), "sigmoid")
        0.75
    """
    a = activation.detach()
    if nonlinearity == "sigmoid":
        return float(((a < SATURATION_MARGIN) | (a > 1 - SATURATION_MARGIN)).float().mean())
    if nonlinearity == "tanh":
        return float((a.abs() > 1 - SATURATION_MARGIN).float().mean())
    if nonlinearity == "relu":
        return float((a == 0).float().mean())
    return 0.0


def verdict(ratio: float) -> str:
    """``"vanishing"``, ``"exploding"`` or ``"healthy"`` for a first/last signal ratio.

    Example:
        >>> verdict(1e-5), verdict(0.5), verdict(1e4)
        ('vanishing', 'healthy', 'exploding')
    """
    if ratio < VANISHING_BELOW:
        return "vanishing"
    return "exploding" if ratio > EXPLODING_ABOVE else "healthy"


@dataclass
class LayerRecord:
    """One weight layer's gradient and activation statistics."""

    name: str
    kind: str  # the module type, e.g. "Linear"
    nonlinearity: str  # the activation after it: sigmoid, tanh, relu or linear
    grad_norm: float  # ||dL/dW|| over the layer's weights
    signal_norm: float  # ||dL/dz|| at the layer's output z
    activation_mean: float
    activation_std: float
    saturation: float


@dataclass
class GradientReport:
    """Per-layer records in forward order, the first/last signal ratio and its verdict."""

    layers: list[LayerRecord]
    ratio: float
    verdict: str
    loss: float

    @property
    def grad_norms(self) -> list[float]:
        """||dL/dW|| by layer, input first."""
        return [layer.grad_norm for layer in self.layers]

    @property
    def signal_norms(self) -> list[float]:
        """||dL/dz|| by layer, input first: the ratio is the first over the last."""
        return [layer.signal_norm for layer in self.layers]

    def to_dict(self) -> dict:
        return {"ratio": self.ratio, "verdict": self.verdict, "loss": self.loss,
                "layers": [asdict(layer) for layer in self.layers]}


@dataclass
class _Seen:
    name: str
    module: nn.Module
    output: Tensor  # z, kept in the graph for dL/dz
    activation: Tensor  # what follows z (z itself until an activation module claims it)
    nonlinearity: str
    claimed: bool = False


def _inner_nonlinearity(module: nn.Module) -> str:
    """A recurrent layer's own nonlinearity; "linear" for Linear and Conv (until an activation claims them)."""
    if isinstance(module, nn.RNN):
        return "relu" if module.nonlinearity == "relu" else "tanh"
    return "tanh" if isinstance(module, RECURRENT) else "linear"  # GRU/LSTM outputs lie in (-1, 1)


@dataclass
class Recording:
    """What :func:`record` saw: each weight layer's first call, in forward order."""

    names: dict[nn.Module, str]
    layers: list[_Seen] = field(default_factory=list)

    def on_layer(self, module: nn.Module, args: tuple, output) -> None:
        if any(seen.module is module for seen in self.layers):
            return
        z = output[0] if isinstance(output, tuple) else output  # RNNs return (output, h_n)
        recurrent = isinstance(module, RECURRENT)
        self.layers.append(_Seen(self.names[module], module, z, z, _inner_nonlinearity(module), recurrent))

    def on_activation(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        if self.layers and not self.layers[-1].claimed:
            last = self.layers[-1]
            last.activation, last.nonlinearity, last.claimed = output, ACTIVATIONS[type(module)], True


@contextmanager
def record(model: nn.Module) -> Iterator[Recording]:
    """Record weight-layer outputs and the activations after them; every hook is removed on exit.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        >>> with record(net) as rec:
        ...     _ = net(torch.zeros(1, 3))
        >>> [(seen.name, seen.nonlinearity) for seen in rec.layers]
        [('0', 'tanh'), ('2', 'linear')]
    """
    names = {m: name for name, m in weight_layers(model)}
    rec = Recording(names)
    acts = [m for m in model.modules() if type(m) in ACTIVATIONS]
    with forward_hooks(names, rec.on_layer), forward_hooks(acts, rec.on_activation):
        yield rec


def _default_loss(targets: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy for integer class targets, mean squared error otherwise."""
    return F.mse_loss if targets.is_floating_point() else F.cross_entropy


def _norm(grads) -> float:
    return math.sqrt(sum(float(g.detach().double().pow(2).sum()) for g in grads if g is not None))


def _ratio(signal: list[float]) -> float:
    """First over last; inf when anything overflowed, 0 when no signal reaches the last layer at all."""
    first, last = signal[0], signal[-1]
    if not all(math.isfinite(s) for s in signal):
        return math.inf
    if last == 0.0:
        return math.inf if first > 0 else 0.0
    return first / last


def _record(seen: _Seen, grad_norm: float, signal_norm: float) -> LayerRecord:
    a = seen.activation.detach().float()
    return LayerRecord(seen.name, type(seen.module).__name__, seen.nonlinearity, grad_norm, signal_norm,
                       float(a.mean()), float(a.std()) if a.numel() > 1 else 0.0,
                       saturation(a, seen.nonlinearity))


def gradient_flow(model: nn.Module, inputs: Tensor, targets: Tensor,
                  loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> GradientReport:
    """Measure gradients and activations of every weight layer on one batch.

    Gradients come from ``torch.autograd.grad``: the parameters' ``.grad`` are left untouched.

    Args:
        model: any module with Linear, Conv or recurrent layers.
        inputs, targets: one batch.
        loss_fn: ``loss_fn(model(inputs), targets)``; default cross-entropy for integer
            targets and mean squared error otherwise.

    Returns:
        A :class:`GradientReport` with per-layer records, the ratio and the verdict.

    Raises:
        ValueError: if the forward pass calls no weight layer.
    """
    loss_fn = loss_fn or _default_loss(targets)
    with record(model) as rec:
        loss = loss_fn(model(inputs), targets)
    if not rec.layers:
        raise ValueError("gradient_flow found no Linear, Conv, RNN, GRU or LSTM layer in the forward "
                         "pass; pass a model built from them")
    weights = [[p for n, p in s.module.named_parameters() if "weight" in n and p.requires_grad]
               for s in rec.layers]
    grads = torch.autograd.grad(loss, [s.output for s in rec.layers] + sum(weights, []), allow_unused=True)
    signal = [_norm([g]) for g in grads[: len(rec.layers)]]
    rest, grad_norms = list(grads[len(rec.layers):]), []
    for ws in weights:
        grad_norms.append(_norm(rest[: len(ws)]))
        rest = rest[len(ws):]
    layers = [_record(s, gn, sn) for s, gn, sn in zip(rec.layers, grad_norms, signal)]
    ratio = _ratio(signal)
    blocked = ratio == 0.0 and _all_zero(weights[-1])
    return GradientReport(layers, ratio, BLOCKED if blocked else verdict(ratio), loss.item())


def _all_zero(weights: list[Tensor]) -> bool:
    """True when a layer has weights and every one of them is exactly zero."""
    return bool(weights) and all(not bool(w.detach().any()) for w in weights)


def sgd_steps(model: nn.Module, x: Tensor, y: Tensor, *, steps: int, lr: float = 0.1,
              batch_size: int = 128, generator: torch.Generator | None = None,
              loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> list[float]:
    """Take ``steps`` plain SGD steps on random minibatches of (x, y); return the losses.

    A probe for diagnostics (does the flow change once training starts?), not a trainer.
    """
    if steps < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need steps >= 0, batch_size >= 1 and lr > 0; got {steps}, {batch_size}, {lr}")
    loss_fn = loss_fn or _default_loss(y)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(x.shape[0], (batch_size,), generator=generator)
        loss = loss_fn(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def diagnose(sizes: list[int], activation: str, scheme: str, x: Tensor, y: Tensor, *,
             steps: int = 0, lr: float = 0.1, batch_size: int = 256, seed: int = 0,
             **init_options) -> dict[str, GradientReport]:
    """Build an MLP, measure it on a batch at initialization and again after ``steps`` SGD steps.

    Args:
        sizes: layer widths; the first must match x's features.
        activation, scheme: see :func:`neuralsmith.nets.mlp` and :data:`neuralsmith.init.SCHEMES`.
        x, y: the training data; the measured batch is a seeded draw of ``batch_size`` rows.
        **init_options: the scheme's options (``lsuv`` gets the measured batch).

    Returns:
        ``{"init": report}``, plus ``{"after N steps": report}`` when ``steps > 0``.
    """
    if sizes[0] != x.shape[1]:
        raise ValueError(f"arch starts with {sizes[0]} inputs but the data has {x.shape[1]} features; "
                         f"start the arch with {x.shape[1]}")
    if not y.is_floating_point() and sizes[-1] <= int(y.max()):
        raise ValueError(f"arch ends with {sizes[-1]} outputs but the data has {int(y.max()) + 1} classes; "
                         f"end the arch with {int(y.max()) + 1}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(x.shape[0], generator=g)[:batch_size]
    options = {"batch": x[idx], **init_options} if scheme == "lsuv" else init_options
    model = nets.mlp(sizes, activation, init=scheme, generator=g, **options)
    reports = {"init": gradient_flow(model, x[idx], y[idx])}
    if steps:
        sgd_steps(model, x, y, steps=steps, lr=lr, batch_size=batch_size, generator=g)
        reports[f"after {steps} steps"] = gradient_flow(model, x[idx], y[idx])
    return reports
