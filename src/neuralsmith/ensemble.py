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
from neuralsmith.rbm.units import bernoulli_from_words
from neuralsmith.stack import ACTIVATIONS

_FUNCTIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


class EnsembleMLP(nn.Module):
    """S MLPs with stacked weights: layer l holds ``weight`` (S, in, out), ``bias`` (S, 1, out).

    The weights are kept transposed, (S, in, out), so that ``x @ w`` needs no transpose and
    autograd's weight gradient comes out in the parameter's own layout; stored as (S, out, in)
    and used through a transposed view, every gradient was copied once more per step (a fifth
    of a Fashion-MNIST-sized step).

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
        self.weights = nn.ParameterList(nn.Parameter(w.detach().transpose(1, 2).contiguous())
                                        for w in weights)
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
                linear = nn.Linear(w.shape[1], w.shape[2])
                with torch.no_grad():
                    linear.weight.copy_(w[s].t())
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
            x = torch.baddbmm(b, x, w)  # (S, batch, out)
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
    splits = {s: (getattr(data, f"x_{s}").to(device), getattr(data, f"y_{s}").to(device))
              for s in ("train", "valid", "test")}
    history, t0 = [], time.perf_counter()
    with progress_bar(f"{ens.n_members} seeds", epochs, enabled=progress) as bar:
        for epoch in range(1, epochs + 1):
            losses = train_epoch(ens, opt, *splits["train"], batch_size, generators)
            rec: dict[str, Any] = {"epoch": epoch, "train_loss": losses.tolist()}
            for split, (x, y) in splits.items():
                loss, err = evaluate(ens, x, y)
                rec[f"{split}_loss"], rec[f"{split}_error"] = loss.tolist(), err.tolist()
            rec["seconds"] = time.perf_counter() - t0
            history.append(rec)
            if on_epoch is not None:
                with torch.no_grad():
                    on_epoch(ens)
            bar.advance({"mean_test_error": float(sum(rec["test_error"]) / ens.n_members)})
    return history


# --- denoising autoencoders, many seeds at once ------------------------------------------------

def _member_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (S, b) of shared inputs (n, d) or per-member inputs (S, n, d) -> (S, b, d)."""
    if x.ndim == 2:
        return x[idx]
    return x[torch.arange(x.shape[0], device=x.device)[:, None], idx]


def _dae_losses(w: torch.Tensor, hb: torch.Tensor, vb: torch.Tensor, clean: torch.Tensor,
                noisy: torch.Tensor, binary: bool) -> torch.Tensor:
    """Per-member denoising loss of tied DAEs: w (S, h, d), clean/noisy (S, b, d) -> (S,)."""
    h = torch.sigmoid(torch.baddbmm(hb.unsqueeze(1), noisy, w.transpose(1, 2)))  # (S, b, h)
    z = torch.baddbmm(vb.unsqueeze(1), h, w)  # (S, b, d)
    if binary:
        per_input = F.binary_cross_entropy_with_logits(z, clean, reduction="none")
    else:
        per_input = 0.5 * (z - clean) ** 2
    return per_input.sum(dim=2).mean(dim=1)


def train_daes(daes: Sequence["DenoisingAutoencoder"], x: torch.Tensor, generators: Sequence[torch.Generator],
               *, epochs: int = 10, lr: float = 0.1, batch_size: int = 20) -> list[list[dict[str, Any]]]:
    """Train S tied DAEs of one shape as one batched model; member s as ``train_dae`` would alone.

    Member s draws its data order and its corruption from ``generators[s]`` in the same order
    as :func:`neuralsmith.autoencoder.train_dae` (momentum 0), so it ends with the same weights.
    ``x`` is shared (n, d) or per member (S, n, d).

    Returns:
        Per member, the per-epoch history (``loss``).
    """
    from neuralsmith.autoencoder import corrupt

    if any(d.decoder_weight is not None for d in daes):
        raise ValueError("train_daes batches tied autoencoders only; train untied ones with train_dae")
    first = daes[0]
    w = nn.Parameter(torch.stack([d.weight.detach() for d in daes]))  # (S, h, d)
    hb = nn.Parameter(torch.stack([d.hidden_bias.detach() for d in daes]))
    vb = nn.Parameter(torch.stack([d.visible_bias.detach() for d in daes]))
    opt = torch.optim.SGD([w, hb, vb], lr=lr)
    n, S = x.shape[-2], len(daes)
    history: list[list[dict[str, Any]]] = [[] for _ in daes]
    for epoch in range(1, epochs + 1):
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])  # (S, n)
        total = torch.zeros(S)
        for i in range(0, n, batch_size):
            clean = _member_rows(x, order[:, i:i + batch_size])
            noisy = torch.stack([corrupt(clean[s], first.corruption, first.level, generator=g)
                                 for s, g in enumerate(generators)])
            losses = _dae_losses(w, hb, vb, clean, noisy, first.inputs == "binary")
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            total += losses.detach() * clean.shape[1]
        for s in range(S):
            history[s].append({"epoch": epoch, "loss": float(total[s] / n)})
    with torch.no_grad():
        for s, d in enumerate(daes):
            d.weight.copy_(w[s]), d.hidden_bias.copy_(hb[s]), d.visible_bias.copy_(vb[s])
    return history


def pretrain_sdas(sdas: Sequence["StackedDAE"], x: torch.Tensor, generators: Sequence[torch.Generator], *,
                  epochs: int = 10, lr: float = 0.1, batch_size: int = 20) -> None:
    """Greedy layer-wise training of S stacked DAEs at once (as ``greedy_pretrain_sda`` each)."""
    inputs = x
    for l in range(len(sdas[0].layers)):
        layer = [sda.layers[l] for sda in sdas]
        train_daes(layer, inputs, generators, epochs=epochs, lr=lr, batch_size=batch_size)
        with torch.no_grad():
            codes = [d.encode(inputs if inputs.ndim == 2 else inputs[s]) for s, d in enumerate(layer)]
        inputs = torch.stack(codes)  # (S, n, h)


# --- RBMs (Bernoulli-Bernoulli, CD-k), many seeds at once ---------------------------------------

def _bernoulli_each(p: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Member s of ``p`` (S, ...) sampled with ``generators[s]``, drawing exactly the bits
    :func:`neuralsmith.rbm.units.bernoulli` draws (one integer call per member, the rest batched)."""
    S, n = p.shape[0], p[0].numel()
    bits = torch.empty(S, (n + 1) // 2, dtype=torch.int64, device=p.device)
    for s, g in enumerate(generators):
        bits[s].random_(generator=g)
    return bernoulli_from_words(bits.view(torch.int32)[:, :n].reshape(p.shape), p)


class _RBMStack:
    """Stacked parameters and momentum buffers of S RBMs: w (S, h, v), b (S, v), c (S, h)."""

    def __init__(self, rbms: Sequence[Any]):
        self.w = torch.stack([r.weight.detach() for r in rbms])
        self.b = torch.stack([r.visible_bias.detach() for r in rbms])
        self.c = torch.stack([r.hidden_bias.detach() for r in rbms])
        self.vel = [torch.zeros_like(t) for t in (self.w, self.b, self.c)]

    def cd_step(self, v0: torch.Tensor, k: int, lr: float, momentum: float, weight_decay: float,
                generators: Sequence[torch.Generator]) -> None:
        """One CD-k update of every member from its batch ``v0`` (S, batch, v) (Hinton 2002)."""
        ph0 = torch.sigmoid(torch.baddbmm(self.c.unsqueeze(1), v0, self.w.transpose(1, 2)))  # (S, B, h)
        h = _bernoulli_each(ph0, generators)
        for i in range(k):
            vk = _bernoulli_each(torch.sigmoid(torch.baddbmm(self.b.unsqueeze(1), h, self.w)), generators)
            phk = torch.sigmoid(torch.baddbmm(self.c.unsqueeze(1), vk, self.w.transpose(1, 2)))
            if i + 1 < k:
                h = _bernoulli_each(phk, generators)
        a = lr / v0.shape[1]
        vw, vb, vc = self.vel
        vw.baddbmm_(ph0.transpose(1, 2), v0, beta=momentum, alpha=a)  # <h v^T>_data
        vw.baddbmm_(phk.transpose(1, 2), vk, alpha=-a)  # - <h v^T>_model
        vw.add_(self.w, alpha=-lr * weight_decay)
        self.w.add_(vw)
        self.b.add_(vb.mul_(momentum).add_(v0.mean(1) - vk.mean(1), alpha=lr))
        self.c.add_(vc.mul_(momentum).add_(ph0.mean(1) - phk.mean(1), alpha=lr))

    def write_back(self, rbms: Sequence[Any]) -> None:
        for s, r in enumerate(rbms):
            r.weight.copy_(self.w[s]), r.visible_bias.copy_(self.b[s]), r.hidden_bias.copy_(self.c[s])


@torch.no_grad()
def train_rbms(rbms: Sequence[Any], x: torch.Tensor, generators: Sequence[torch.Generator], *,
               epochs: int = 10, lr: float = 0.05, k: int = 1, batch_size: int = 100,
               momentum: float = 0.5, weight_decay: float = 1e-4) -> None:
    """Train S Bernoulli RBMs of one shape by CD-k as one batched model.

    Member s draws its data order and Gibbs samples from ``generators[s]`` in the order
    :func:`neuralsmith.rbm.train` (``method="cd"``) does, and applies the same update
    (momentum, weight decay on the weights), so it ends as it would alone (to float rounding).
    ``x`` is shared (n, v) or per member (S, n, v).

    Raises:
        ValueError: for non-Bernoulli units or a non-positive k.
    """
    if any(r.visible_units.name != "bernoulli" or r.hidden_units.name != "bernoulli" for r in rbms):
        raise ValueError("train_rbms batches Bernoulli-Bernoulli RBMs; train others with rbm.train")
    if k < 1:
        raise ValueError(f"k must be >= 1 (Gibbs steps per update); got {k}")
    stack, n = _RBMStack(rbms), x.shape[-2]
    for _ in range(epochs):
        order = torch.stack([torch.randperm(n, generator=g, device=g.device) for g in generators])
        for i in range(0, n, batch_size):
            stack.cd_step(_member_rows(x, order[:, i:i + batch_size]), k, lr, momentum, weight_decay, generators)
    stack.write_back(rbms)


def pretrain_dbns(dbns: Sequence[Any], x: torch.Tensor, generators: Sequence[torch.Generator], *,
                  epochs: int = 10, lr: float = 0.05, k: int = 1, batch_size: int = 100,
                  momentum: float = 0.5, weight_decay: float = 1e-4) -> None:
    """Greedy CD-k training of S DBNs at once, as :func:`neuralsmith.stack.greedy_pretrain_dbn` each
    (mean-field codes passed up)."""
    inputs = x
    for l in range(len(dbns[0].rbms)):
        layer = [dbn.rbms[l] for dbn in dbns]
        if l == 0:
            for r in layer:
                r.init_biases_(x)
        train_rbms(layer, inputs, generators, epochs=epochs, lr=lr, k=k, batch_size=batch_size,
                   momentum=momentum, weight_decay=weight_decay)
        with torch.no_grad():
            inputs = torch.stack([r.hidden_probs(inputs if inputs.ndim == 2 else inputs[s])
                                  for s, r in enumerate(layer)])  # (S, n, h)
