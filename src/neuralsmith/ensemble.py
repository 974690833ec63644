"""Many seeds of one MLP trained as one batched model.

S networks of one architecture keep their weights stacked, ``(S, out, in)`` per layer, and run
as batched GEMMs (``torch.baddbmm``): one call feeds all S. Each member has its own
initialization, its own data order (its own ``torch.Generator``) and its own loss; the summed
loss gives every member exactly the gradient it would get alone, and SGD with momentum acts
element-wise, so each member ends as it would have trained alone (to float tolerance).

Example:
    >>> import torch
    >>> from torch import nn
    >>> members = [nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)) for _ in range(5)]
    >>> ens = EnsembleMLP.from_models(members)
    >>> ens(torch.rand(5, 7, 4)).shape  # (members, batch, classes)
    torch.Size([5, 7, 2])
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuralsmith.data import Dataset
from neuralsmith.progress import progress_bar
from neuralsmith.stack import ACTIVATIONS

_FUNCTIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


class EnsembleMLP(nn.Module):
    """S MLPs with stacked weights: layer l holds ``weight`` (S, out, in), ``bias`` (S, 1, out).

    Args:
        weights: per layer, a tensor (S, out, in).
        biases: per layer, a tensor (S, out).
        activation: hidden nonlinearity (``sigmoid``, ``tanh`` or ``relu``); the last layer is linear.
    """

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
                 activation: str = "sigmoid"):
        super().__init__()
        if activation not in _FUNCTIONS:
            raise ValueError(f"activation must be one of {', '.join(_FUNCTIONS)}; got {activation!r}")
        self.activation = activation
        self.weights = nn.ParameterList(nn.Parameter(w.detach().clone()) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b.detach().clone().unsqueeze(1)) for b in biases)

    @property
    def n_members(self) -> int:
        return self.weights[0].shape[0]

    @classmethod
    def from_models(cls, models: Sequence[nn.Sequential]) -> "EnsembleMLP":
        """Stack S MLPs of one architecture (Linear / activation alternating, last Linear).

        Raises:
            ValueError: if the models differ in architecture or mix activations.
        """
        layers = [[m for m in model if isinstance(m, nn.Linear)] for model in models]
        if not layers or any(len(l) != len(layers[0]) for l in layers):
            raise ValueError("from_models needs one or more MLPs with the same number of layers")
        acts = {type(m) for model in models for m in model if not isinstance(m, nn.Linear)}
        names = [n for n, t in ACTIVATIONS.items() if {t} == acts]
        if len(names) != 1:
            raise ValueError(f"members must share one hidden activation of {', '.join(ACTIVATIONS)}")
        weights = [torch.stack([l[i].weight for l in layers]) for i in range(len(layers[0]))]
        biases = [torch.stack([l[i].bias for l in layers]) for i in range(len(layers[0]))]
        return cls(weights, biases, names[0])

    def to_models(self) -> list[nn.Sequential]:
        """Unstack into S plain ``nn.Sequential`` MLPs."""
        models = []
        for s in range(self.n_members):
            modules: list[nn.Module] = []
            for w, b in zip(self.weights, self.biases):
                linear = nn.Linear(w.shape[2], w.shape[1])
                with torch.no_grad():
                    linear.weight.copy_(w[s])
                    linear.bias.copy_(b[s, 0])
                modules += [linear, ACTIVATIONS[self.activation]()]
            models.append(nn.Sequential(*modules[:-1]))
        return models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (S, batch, out) of inputs (S, batch, in), or (batch, in) shared by all members."""
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.n_members, -1, -1)
        act = _FUNCTIONS[self.activation]
        last = len(self.weights) - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w.transpose(1, 2))  # (S, batch, out)
            if l < last:
                x = act(x)
        return x


def member_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-member mean cross-entropy, shape (S,), of logits (S, B, C) and targets (S, B)."""
    per_example = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return per_example.view(targets.shape).mean(dim=1)


@torch.no_grad()
def evaluate(ens: EnsembleMLP, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean loss and error rate (percent) on ``(x, y)``; tensors of shape (S,)."""
    S = ens.n_members
    if x.shape[0] == 0:
        return torch.full((S,), math.nan), torch.full((S,), math.nan)
    loss, err = torch.zeros(S), torch.zeros(S)
    for i in range(0, x.shape[0], batch_size):
        logits = ens(x[i:i + batch_size])  # (S, b, C)
        yb = y[i:i + batch_size].expand(S, -1)
        loss += member_losses(logits, yb).cpu() * yb.shape[1]
        err += (logits.argmax(dim=2) != yb).sum(dim=1).cpu().float()
    return loss / x.shape[0], 100.0 * err / x.shape[0]


def train_epoch(ens: EnsembleMLP, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, batch_size: int, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One epoch, member s visiting ``x`` in the order ``randperm(n, generators[s])``.

    Returns:
        Per-member mean training loss, shape (S,).
    """
    n = x.shape[0]
    order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(x.device)  # (S, n)
    total = torch.zeros(len(generators))
    for i in range(0, n, batch_size):
        idx = order[:, i:i + batch_size]  # (S, b)
        losses = member_losses(ens(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # each member's gradient is its own loss's gradient
        optimizer.step()
        total += losses.detach().cpu() * idx.shape[1]
    return total / n


def finetune_ensemble(ens: EnsembleMLP, data: Dataset, generators: Sequence[torch.Generator], *,
                      epochs: int = 30, lr: float = 0.1, momentum: float = 0.9,
                      batch_size: int = 32, weight_decay: float = 0.0,
                      progress: bool = True,
                      on_epoch: Callable[[EnsembleMLP], Any] | None = None) -> list[dict[str, Any]]:
    """Train every member with SGD + momentum, as :func:`neuralsmith.train.finetune` would alone.

    ``on_epoch(ens)`` is called after each epoch (e.g. to snapshot outputs in function space).

    Returns:
        Per-epoch records whose values are lists over members (train/valid/test loss, error).

    Raises:
        ValueError: if the number of generators differs from the number of members.
    """
    if len(generators) != ens.n_members:
        raise ValueError(f"need one generator per member ({ens.n_members}); got {len(generators)}")
    device = ens.weights[0].device
    opt = torch.optim.SGD(ens.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    x, y = data.x_train.to(device), data.y_train.to(device)
    history, t0 = [], time.perf_counter()
    with progress_bar(f"{ens.n_members} seeds", epochs, enabled=progress) as bar:
        for epoch in range(1, epochs + 1):
            rec: dict[str, Any] = {"epoch": epoch, "train_loss": train_epoch(ens, opt, x, y, batch_size, generators).tolist()}
            for split in ("train", "valid", "test"):
                loss, err = evaluate(ens, getattr(data, f"x_{split}").to(device), getattr(data, f"y_{split}").to(device))
                rec[f"{split}_loss"], rec[f"{split}_error"] = loss.tolist(), err.tolist()
            rec["seconds"] = time.perf_counter() - t0
            history.append(rec)
            if on_epoch is not None:
                with torch.no_grad():
                    on_epoch(ens)
            bar.advance({"mean_test_error": float(sum(rec["test_error"]) / ens.n_members)})
    return history
