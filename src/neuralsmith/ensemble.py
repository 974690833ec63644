"""Many seeds of one model trained as one batched model, computing what each would alone.

S networks of one architecture keep their parameters stacked along a leading member axis and
run as batched GEMMs (``torch.baddbmm``): one call feeds all S. Each member has its own
initialization, its own data order and random draws (its own ``torch.Generator``, consumed in
the order the single-model code consumes it) and its own loss; the summed loss gives every
member exactly the gradient it would get alone, and the updates act element-wise, so each
member ends where the single-model function ends with the same settings and generator:

* :func:`finetune_ensemble` as :func:`neuralsmith.train.finetune` (SGD + momentum);
* :func:`train_daes` / :func:`pretrain_sdas` as :func:`neuralsmith.autoencoder.train_dae` /
  :func:`neuralsmith.stack.greedy_pretrain_sda`;
* :func:`train_rbms` / :func:`pretrain_dbns` as :func:`neuralsmith.rbm.train` (CD-k) /
  :func:`neuralsmith.stack.greedy_pretrain_dbn`.

``tests/test_ensemble_parity.py`` checks each pair in float64, update for update, to 1e-10
(only the order of the sums inside a batched GEMM differs).

The steps skip autograd and ``torch.optim``: :mod:`neuralsmith.backprop` writes the gradients
out with autograd's own kernels (the same bits, ``tests/test_backprop.py``), and each member's
draws are read ahead an epoch at a time (:mod:`neuralsmith.member_streams`, the same numbers).
At the default study's sizes that cut its serial time by a quarter (1.34x). Under bf16 autocast
fine-tuning runs by autograd (:func:`autograd_step`).

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

from neuralsmith import backprop, kernels, precision as precision_mod
from neuralsmith.backprop import MomentumSGD
from neuralsmith.member_streams import MemberStream
from neuralsmith.autoencoder import DenoisingAutoencoder, check_training, corrupt, \
    uniforms_per_input
from neuralsmith.data import Dataset
from neuralsmith.progress import progress_bar
from neuralsmith.rbm import RBM, Settings
from neuralsmith.rbm.units import bernoulli_from_words, words_for
from neuralsmith.stack import ACTIVATIONS, DBN, StackedDAE, greedy_pretrain
from neuralsmith.train import FinetuneConfig, lr_at

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
        """Unstack into S plain ``nn.Sequential`` MLPs on the CPU, in the ensemble's dtype."""
        models = []
        for s in range(self.n_members):
            modules: list[nn.Module] = []
            for w, b in zip(self.weights, self.biases):
                linear = nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[2], dtype=w.dtype)
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
        act, last = _FUNCTIONS[self.activation], len(self.weights) - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)  # (S, batch, out)
            if l < last:  # in place where no graph needs the pre-activations
                x = act(x) if torch.is_grad_enabled() else backprop.activation_(x, self.activation)
        return x


def member_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-member mean cross-entropy, shape (S,), of logits (S, B, C) and targets (S, B)."""
    per_example = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return per_example.view(targets.shape).mean(dim=1)


@torch.no_grad()
def evaluate(ens: EnsembleMLP, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean loss and error rate (percent) on ``(x, y)``; float64 tensors of shape (S,).

    Sums batch by batch in float64, as :func:`neuralsmith.train.evaluate` sums in Python floats.
    """
    S = ens.n_members
    if x.shape[0] == 0:
        return torch.full((S,), math.nan), torch.full((S,), math.nan)
    loss, err = torch.zeros(S, dtype=torch.float64), torch.zeros(S, dtype=torch.float64)
    for i in range(0, x.shape[0], batch_size):
        logits = ens(x[i:i + batch_size])  # (S, b, C)
        yb = y[i:i + batch_size].expand(S, -1)
        loss += member_losses(logits, yb).cpu().double() * yb.shape[1]
        err += (logits.argmax(dim=2) != yb).sum(dim=1).cpu().double()
    return loss / x.shape[0], 100.0 * err / x.shape[0]


def member_orders(n: int, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Each member's data order for one epoch, ``randperm(n, generators[s])`` stacked: (S, n).

    The same draw :func:`neuralsmith.train.train_epoch` (and ``rbm.train``) makes from its
    generator at the start of an epoch, on the generator's device.
    """
    return torch.stack([torch.randperm(n, generator=g, device=g.device) for g in generators])


def batched_epoch(n: int, batch_size: int, generators: Sequence[torch.Generator],
                  step: Callable[[torch.Tensor], torch.Tensor], device: torch.device | str = "cpu",
                  before: Callable[[], Any] | None = None) -> torch.Tensor:
    """One epoch of S members, the loop of :func:`neuralsmith.train.train_epoch` for each.

    Member s visits its ``n`` rows in the order ``randperm(n, generators[s])``; ``step(idx)``
    updates every member from its rows ``idx`` (S, b) and returns each member's mean batch
    loss (S,). ``before()`` runs once the orders are drawn (it may reserve the epoch's draws).

    Returns:
        Per-member mean training loss, shape (S,), summed in float64.
    """
    order = member_orders(n, generators).to(device)  # (S, n)
    if before is not None:
        before()
    total = torch.zeros(len(generators), dtype=torch.float64)
    for i in range(0, n, batch_size):
        idx = order[:, i:i + batch_size]  # (S, b)
        total += step(idx).detach().cpu().double() * idx.shape[1]
    return total / n


def autograd_step(optimizer: torch.optim.Optimizer,
                  losses: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A :func:`batched_epoch` step by autograd: the sum of ``losses(idx)`` (S,) gives every
    member the gradient of its own loss, then ``optimizer`` steps. For what
    :mod:`neuralsmith.backprop` does not write out: fine-tuning under bf16 autocast."""

    def step(idx: torch.Tensor) -> torch.Tensor:
        value = losses(idx)
        optimizer.zero_grad(set_to_none=True)
        value.sum().backward()
        optimizer.step()
        return value

    return step


def train_epoch(ens: EnsembleMLP, sgd: MomentumSGD, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One supervised epoch of every member by hand-written backprop (:mod:`neuralsmith.backprop`,
    the same numbers as autograd and ``torch.optim.SGD``); mean losses (S,)."""
    weights, biases = list(ens.weights), list(ens.biases)

    def step(idx: torch.Tensor) -> torch.Tensor:
        losses, grads = backprop.mlp_losses_and_grads(weights, biases, ens.activation, x[idx], y[idx])
        sgd.step(grads)
        return losses

    with torch.no_grad():
        return batched_epoch(x.shape[0], batch_size, generators, step, x.device)


def _autocast_epoch(ens: EnsembleMLP, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                    batch_size: int, generators: Sequence[torch.Generator], precision: str) -> torch.Tensor:
    """One supervised epoch by autograd under ``torch.autocast`` (mixed precision); mean losses (S,)."""
    step = autograd_step(optimizer, lambda idx: member_losses(ens(x[idx]), y[idx]))
    with precision_mod.autocast(precision, x.device):
        return batched_epoch(x.shape[0], batch_size, generators, step, x.device)


def _epoch_record(ens: EnsembleMLP, epoch: int, rate: float,
                  splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """The record :func:`neuralsmith.train.finetune` keeps for an epoch, as lists over members."""
    rec: dict[str, Any] = {"epoch": epoch, "lr": rate}
    for split, (x, y) in splits.items():
        loss, err = evaluate(ens, x, y)
        rec[f"{split}_loss"], rec[f"{split}_error"] = loss.tolist(), err.tolist()
    return rec


def _epoch_at(ens: EnsembleMLP, precision: str, lr: float, momentum: float,
              weight_decay: float) -> Callable[..., torch.Tensor]:
    """``epoch_at(rate, x, y, batch_size, generators)``: one training epoch at learning rate
    ``rate``, by hand-written backprop (:func:`train_epoch`), or by autograd under autocast
    where ``precision`` makes the products bf16; the optimizer's state lives in the closure."""
    if precision_mod.compute_dtype(precision, ens.weights[0].device) == torch.bfloat16:
        opt = torch.optim.SGD(ens.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)

        def autocast_epoch(rate: float, *args: Any) -> torch.Tensor:
            for group in opt.param_groups:
                group["lr"] = rate
            return _autocast_epoch(ens, opt, *args, precision)

        return autocast_epoch
    sgd = MomentumSGD([p for pair in zip(ens.weights, ens.biases) for p in pair], lr, momentum, weight_decay)

    def plain_epoch(rate: float, *args: Any) -> torch.Tensor:
        sgd.lr = rate
        return train_epoch(ens, sgd, *args)

    return plain_epoch


def finetune_ensemble(ens: EnsembleMLP, data: Dataset, generators: Sequence[torch.Generator], *,
                      epochs: int = 30, lr: float = 0.1, momentum: float = 0.9,
                      batch_size: int = 32, weight_decay: float = 0.0, schedule: str = "constant",
                      precision: str = "fp32", progress: bool = True,
                      on_epoch: Callable[[EnsembleMLP], Any] | None = None) -> list[dict[str, Any]]:
    """Train every member with SGD + momentum, as :func:`neuralsmith.train.finetune` would alone.

    The same update :math:`v \\leftarrow \\mu v - \\epsilon_t (\\nabla L + \\lambda\\theta)`,
    :math:`\\theta \\leftarrow \\theta + v`, with :math:`\\epsilon_t` from ``schedule``
    (:func:`neuralsmith.train.lr_at`), and the same data order per member. Unlike ``finetune``
    it keeps the last weights (the history tells the best-validation epoch) and does not stop
    a member whose loss diverges. ``on_epoch(ens)`` is called after each epoch. ``precision``
    ``bf16`` runs the training products under ``torch.autocast`` to bfloat16 (mixed precision,
    see :func:`neuralsmith.precision.autocast`); the records are computed in fp32.

    Returns:
        Per-epoch records (``epoch``, ``lr``, then loss and error per split, each a list over members).

    Raises:
        ValueError: for a generator count that differs from the number of members, or a
            setting :func:`neuralsmith.train.finetune` refuses.
    """
    if len(generators) != ens.n_members:
        raise ValueError(f"need one generator per member ({ens.n_members}); got {len(generators)}")
    FinetuneConfig(epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size,
                   weight_decay=weight_decay, schedule=schedule, precision=precision)  # as finetune
    device = ens.weights[0].device
    splits = {s: (getattr(data, f"x_{s}").to(device), getattr(data, f"y_{s}").to(device))
              for s in ("train", "valid", "test")}
    epoch_at = _epoch_at(ens, precision, lr, momentum, weight_decay)
    history, t0 = [], time.perf_counter()
    with progress_bar(f"{ens.n_members} seeds", epochs, enabled=progress) as bar:
        for epoch in range(epochs):
            rate = lr_at(epoch, epochs, lr, schedule)
            epoch_at(rate, *splits["train"], batch_size, generators)
            history.append({**_epoch_record(ens, epoch + 1, rate, splits),
                            "seconds": time.perf_counter() - t0})
            if on_epoch is not None:
                with torch.no_grad():
                    on_epoch(ens)
            bar.advance({"mean_test_error": float(sum(history[-1]["test_error"]) / ens.n_members)})
    return history


# --- greedy stacks of many seeds ------------------------------------------------------------------

def _member(x: torch.Tensor, s: int) -> torch.Tensor:
    """Member s's rows of shared inputs (n, d) or per-member inputs (S, n, d)."""
    return x if x.ndim == 2 else x[s]


def _member_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (S, b) of shared inputs (n, d) or per-member inputs (S, n, d) -> (S, b, d)."""
    if x.ndim == 2:
        return x[idx]
    return x[torch.arange(x.shape[0], device=x.device)[:, None], idx]


def _greedy_members(layers: Sequence[Sequence[nn.Module]], x: torch.Tensor,
                    train_layer: Callable[[int, nn.ModuleList, torch.Tensor], Any],
                    represent: Callable[[nn.Module, torch.Tensor, int], torch.Tensor]) -> list[Any]:
    """:func:`neuralsmith.stack.greedy_pretrain` on S stacks at once: layer l of every member
    trains together, then each member's codes ``represent(layer, inputs_s, s)`` feed layer l + 1
    as per-member inputs (S, n, h)."""

    def represent_all(members: nn.ModuleList, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([represent(m, _member(inputs, s), s) for s, m in enumerate(members)])

    by_layer = [nn.ModuleList(members) for members in zip(*layers)]
    return greedy_pretrain(by_layer, x, train_layer, represent_all)


# --- denoising autoencoders, many seeds at once ------------------------------------------------

def _corrupt_each(clean: torch.Tensor, dae: DenoisingAutoencoder,
                  generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Member s's batch corrupted with ``generators[s]``, the draw ``dae.loss`` makes alone."""
    return torch.stack([corrupt(clean[s], dae.corruption, dae.level, generator=g)
                        for s, g in enumerate(generators)])


def _corrupter(dae: DenoisingAutoencoder, generators: Sequence[torch.Generator],
               ) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[int], None]]:
    """``(noisy, reserve)``: ``noisy(clean)`` corrupts each member's batch (S, b, d) with the
    draws its single run would make; ``reserve(n)`` reads an epoch of n rows' uniforms ahead
    (:class:`neuralsmith.member_streams.MemberStream`). Gaussian noise is drawn call by call."""
    per_row = uniforms_per_input(dae.corruption, dae.level) * dae.weight.shape[1]
    if not per_row:
        return (lambda clean: _corrupt_each(clean, dae, generators)), (lambda n: None)
    stream = MemberStream(generators, "uniform")

    def noisy(clean: torch.Tensor) -> torch.Tensor:  # (S, b, d)
        def uniforms() -> torch.Tensor:
            return stream.take(clean[0].numel()).view(clean.shape)

        return corrupt(clean, dae.corruption, dae.level, uniforms=uniforms)

    return noisy, lambda n: stream.reserve(n * per_row)


def _check_daes(daes: Sequence[DenoisingAutoencoder], x: torch.Tensor, epochs: int,
                batch_size: int) -> DenoisingAutoencoder:
    """Refuse what :func:`train_daes` cannot batch or ``train_dae`` would refuse; the first DAE."""
    check_training(daes[0], x, epochs, batch_size, batched=True)
    if any(d.decoder_weight is not None for d in daes):
        raise ValueError("train_daes batches tied autoencoders only; train untied ones with train_dae")
    if len({(d.corruption, d.level, d.inputs, tuple(d.weight.shape)) for d in daes}) != 1:
        raise ValueError("train_daes needs DAEs of one shape, corruption and input kind")
    return daes[0]


def train_daes(daes: Sequence[DenoisingAutoencoder], x: torch.Tensor, generators: Sequence[torch.Generator],
               *, epochs: int = 10, lr: float = 0.1, batch_size: int = 20,
               momentum: float = 0.0, precision: str = "fp32") -> list[list[dict[str, Any]]]:
    """Train S tied DAEs of one shape as one batched model; member s as ``train_dae`` would alone.

    Member s draws its data order and its corruption from ``generators[s]`` in the order
    :func:`neuralsmith.autoencoder.train_dae` does, with the same SGD (``momentum``), so it
    ends with the same weights. ``x`` is shared (n, d) or per member (S, n, d).
    ``precision="bf16"`` runs the step's products in bfloat16
    (:func:`neuralsmith.backprop.tied_dae_losses_and_grads_bf16`; fp32 with a warning where bf16
    is not fast): the weights and momentum stay fp32, and a member follows its fp32 run closely,
    not bit for bit (``train_dae`` reaches bf16 by autocast).

    Returns:
        Per member, the per-epoch history (``epoch``, ``loss``), as ``train_dae`` returns it.

    Raises:
        ValueError: for untied or differently configured DAEs, or a bad setting or input shape.
    """
    first, n = _check_daes(daes, x, epochs, batch_size), x.shape[-2]
    params = [torch.stack([p.detach() for p in ps]) for ps in
              zip(*[(d.weight, d.hidden_bias, d.visible_bias) for d in daes])]  # w (S, h, d), hb, vb
    sgd = MomentumSGD(params, lr, momentum)
    noisy, reserve = _corrupter(first, generators)
    history: list[list[dict[str, Any]]] = [[] for _ in daes]

    low = precision_mod.compute_dtype(precision, x.device, params[0].dtype) == torch.bfloat16
    losses_and_grads = backprop.tied_dae_losses_and_grads_bf16 if low else backprop.tied_dae_losses_and_grads

    def step(idx: torch.Tensor) -> torch.Tensor:
        clean = _member_rows(x, idx)
        losses, grads = losses_and_grads(*params, clean, noisy(clean), first.inputs)
        sgd.step(grads)
        return losses

    for epoch in range(1, epochs + 1):
        with torch.no_grad():
            means = batched_epoch(n, batch_size, generators, step, x.device, before=lambda: reserve(n))
        for s, loss in enumerate(means.tolist()):
            history[s].append({"epoch": epoch, "loss": loss})
    with torch.no_grad():
        for d, *ps in zip(daes, *params):
            for p, q in zip((d.weight, d.hidden_bias, d.visible_bias), ps):
                p.copy_(q)
    return history


def pretrain_sdas(sdas: Sequence[StackedDAE], x: torch.Tensor, generators: Sequence[torch.Generator],
                  *, epochs: int = 10, lr: float = 0.1,
                  batch_size: int = 20, precision: str = "fp32") -> list[list[list[dict[str, Any]]]]:
    """Greedy layer-wise training of S stacked DAEs at once, each as ``greedy_pretrain_sda``;
    ``precision`` as in :func:`train_daes`.

    Returns:
        Per member, one history per layer (as :func:`neuralsmith.stack.greedy_pretrain_sda`).
    """

    def train_layer(l: int, layer: nn.ModuleList, inputs: torch.Tensor) -> list[list[dict[str, Any]]]:
        return train_daes(layer, inputs, generators, epochs=epochs, lr=lr, batch_size=batch_size,
                          precision=precision)

    per_layer = _greedy_members([sda.layers for sda in sdas], x, train_layer,
                                lambda dae, v, s: dae.encode(v))
    return [list(h) for h in zip(*per_layer)]


# --- RBMs (Bernoulli-Bernoulli, CD-k), many seeds at once ---------------------------------------

def _bernoulli_each(p: torch.Tensor, words: MemberStream) -> torch.Tensor:
    """Member s of ``p`` (S, ...) sampled with its generator's next words, exactly the bits
    :func:`neuralsmith.rbm.units.bernoulli` draws for it alone."""
    S, n = p.shape[0], p[0].numel()
    bits = words.take(words_for(n))  # (S, words)
    return bernoulli_from_words(bits.view(torch.int32)[:, :n].reshape(p.shape), p)


class _RBMStack:
    r"""Stacked parameters of S RBMs, w (S, h, v), b (S, v), c (S, h), updated as ``rbm.train``'s
    CD updates one.

    The same form of the update as :mod:`neuralsmith.rbm.learning` (see its docstring): with
    momentum the weights take the heavy-ball form
    :math:`W_{t+1} = (1 + \mu - \epsilon\lambda) W_t - \mu W_{t-1} + \epsilon G_t`, formed in
    the buffer that held :math:`W_{t-1}`; the biases keep a velocity,
    :math:`\Delta \leftarrow \mu\Delta + \epsilon g`.

    With ``dtype`` bfloat16 the products read bf16 copies of w, b and c refreshed once per
    update (:class:`neuralsmith.precision.Shadow`), the probabilities and samples are bf16 (0
    and 1 exact), the weight statistic is one bf16 GEMM (fp32 accumulation, rounded once) that
    the update adds to the fp32 weights while it writes their next bf16 copy (one pass), and
    the bias statistics are summed in fp32: the state stays fp32.
    """

    def __init__(self, rbms: Sequence[RBM], momentum: float, dtype: torch.dtype | None = None):
        self.w = torch.stack([r.weight.detach() for r in rbms])
        self.b = torch.stack([r.visible_bias.detach() for r in rbms])
        self.c = torch.stack([r.hidden_bias.detach() for r in rbms])
        self.shadow = precision_mod.Shadow(dtype or self.w.dtype)
        self.momentum = momentum
        self.previous = self.w.clone() if momentum > 0 else None  # W_{t-1} = W_0: no velocity yet
        self.velocity = [torch.zeros_like(self.b), torch.zeros_like(self.c)] if momentum > 0 else None

    def products(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """w, b and c as the products read them: the parameters, or this update's bf16 copies."""
        get = self.shadow.get
        return get("w", self.w), get("b", self.b), get("c", self.c)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`E[h \mid v] = \sigma(c + v W^\top)` of each member's rows v (S, B, v)."""
        w, _, c = self.products()
        return torch.sigmoid(torch.baddbmm(c.unsqueeze(1), v, w.transpose(1, 2)))

    def negative_phase(self, p0: torch.Tensor, k: int, words: MemberStream) -> torch.Tensor:
        r"""k Gibbs half-sweeps h -> v from :math:`h \sim p_0`, k - 1 v -> h between; the last v."""
        w, b, _ = self.products()
        h = _bernoulli_each(p0, words)
        for i in range(k):
            if i:
                h = _bernoulli_each(self.hidden_probs(v), words)
            v = _bernoulli_each(torch.sigmoid(torch.baddbmm(b.unsqueeze(1), h, w)), words)
        return v

    def words_per_epoch(self, n: int, batch_size: int, k: int) -> int:
        """The words each member draws in an epoch of CD-k over n rows: k hidden and k visible samples a batch."""
        n_hidden, n_visible = self.w.shape[1], self.w.shape[2]
        return sum(k * (words_for(b * n_hidden) + words_for(b * n_visible))
                   for b in (min(batch_size, n - i) for i in range(0, n, batch_size)))

    def cd_step(self, v0: torch.Tensor, k: int, lr: float, weight_decay: float, words: MemberStream) -> None:
        r"""One CD-k update of every member from its batch ``v0`` (S, m, v) (Hinton 2002).

        As in ``rbm.train``, the data and the (negated) model rows are stacked, so the weight
        statistic :math:`\langle h v^\top\rangle_{data} - \langle h v^\top\rangle_{model}`
        is one GEMM per member; the bias statistics are the model rows' sum times -1/m plus
        the data rows' sum times 1/m.
        """
        a = 1.0 / v0.shape[1]
        p0 = self.hidden_probs(v0)
        vk = self.negative_phase(p0, k, words)
        pk = self.hidden_probs(vk)
        written = self._update_weight(torch.cat([p0, pk], 1), torch.cat([v0, vk.neg()], 1), lr * a,
                                      lr * weight_decay)
        self._apply(0, self.b, -a * self._rows_sum(vk) + a * self._rows_sum(v0), lr)
        self._apply(1, self.c, -a * self._rows_sum(pk) + a * self._rows_sum(p0), lr)
        self.shadow.expire(written)  # the parameters moved: their copies refresh, but those written

    def _rows_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's rows of ``x`` (S, B, n) summed, in the parameters' dtype (fp32 sums of bf16 rows)."""
        return x.sum(1) if x.dtype == self.b.dtype else x.sum(1, dtype=self.b.dtype)

    def _update_weight(self, p: torch.Tensor, t: torch.Tensor, alpha: float, decay: float) -> tuple[str, ...]:
        r""":math:`W \leftarrow (1 - \epsilon\lambda) W + \alpha P^\top T`, or its heavy-ball form.

        In bf16 the statistic is one bf16 GEMM and :func:`neuralsmith.kernels.combine_bf16`
        forms the new W and its bf16 copy in one pass; returns the names of the copies written.
        """
        if p.dtype != self.w.dtype:
            stat, copy = torch.bmm(p.transpose(1, 2), t), self.shadow.buffer("w", self.w)
            if self.previous is None:
                kernels.combine_bf16(self.w, self.w, stat, copy, 1.0 - decay, alpha, 0.0)
            else:
                kernels.combine_bf16(self.previous, self.w, stat, copy, -self.momentum, alpha,
                                     1.0 + self.momentum - decay)
                self.previous, self.w = self.w, self.previous  # W_t becomes W_{t-1}
            return ("w",)
        if self.previous is None:
            self.w.baddbmm_(p.transpose(1, 2), t, beta=1.0 - decay, alpha=alpha)
            return ()
        new = self.previous.baddbmm_(p.transpose(1, 2), t, beta=-self.momentum, alpha=alpha)
        new.add_(self.w, alpha=1.0 + self.momentum - decay)
        self.previous, self.w = self.w, new  # swap buffers: W_t becomes W_{t-1}
        return ()

    def _apply(self, i: int, param: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        """Gradient ascent on one bias, with momentum when there is a velocity."""
        if self.velocity is None:
            param.add_(grad, alpha=lr)
        else:
            param.add_(self.velocity[i].mul_(self.momentum).add_(grad, alpha=lr))

    def write_back(self, rbms: Sequence[RBM]) -> None:
        for s, r in enumerate(rbms):
            r.weight.copy_(self.w[s]), r.visible_bias.copy_(self.b[s]), r.hidden_bias.copy_(self.c[s])


def _check_rbms(rbms: Sequence[RBM], **settings: Any) -> None:
    """Refuse RBMs :func:`train_rbms` cannot batch, or settings ``rbm.train`` would refuse
    (checked by the same :class:`neuralsmith.rbm.Settings`)."""
    if any(r.visible_units.name != "bernoulli" or r.hidden_units.name != "bernoulli" for r in rbms):
        raise ValueError("train_rbms batches Bernoulli-Bernoulli RBMs; train others with rbm.train")
    Settings(method="cd", **settings)


@torch.no_grad()
def train_rbms(rbms: Sequence[RBM], x: torch.Tensor, generators: Sequence[torch.Generator], *,
               epochs: int = 10, lr: float = 0.05, k: int = 1, batch_size: int = 100,
               momentum: float = 0.5, weight_decay: float = 1e-4, schedule: str = "constant",
               precision: str = "fp32") -> None:
    """Train S Bernoulli RBMs of one shape by CD-k as one batched model.

    Member s draws its data order and Gibbs samples from ``generators[s]`` in the order
    :func:`neuralsmith.rbm.train` (``method="cd"``) does, and applies the same update in the
    same form (momentum, weight decay on the weights, learning-rate ``schedule``), so it ends
    as it would alone. ``x`` is shared (n, v) or per member (S, n, v); like ``rbm.train`` it
    is cast to the RBMs' dtype. ``precision="bf16"`` runs the products in bfloat16 with the
    state in fp32 (see :class:`_RBMStack`; fp32 with a warning where bf16 is not fast); a
    member then follows its fp32 run closely, not bit for bit, and draws its Gibbs bits from
    its own generator as in fp32 (``rbm.train`` in bf16 uses counter-based draws instead).

    Raises:
        ValueError: for non-Bernoulli units, or a setting ``rbm.train`` refuses.
    """
    _check_rbms(rbms, epochs=epochs, lr=lr, k=k, batch_size=batch_size, momentum=momentum,
                weight_decay=weight_decay, schedule=schedule, precision=precision)
    dtype = precision_mod.compute_dtype(precision, rbms[0].weight.device, rbms[0].weight.dtype)
    stack, n, words = _RBMStack(rbms, momentum, dtype), x.shape[-2], MemberStream(generators, "words")
    x = x.to(device=stack.w.device, dtype=dtype)
    for epoch in range(epochs):
        rate = lr_at(epoch, epochs, lr, schedule)
        order = member_orders(n, generators).to(x.device)
        words.reserve(stack.words_per_epoch(n, batch_size, k))
        for i in range(0, n, batch_size):
            stack.cd_step(_member_rows(x, order[:, i:i + batch_size]), k, rate, weight_decay, words)
    stack.write_back(rbms)


def pretrain_dbns(dbns: Sequence[DBN], x: torch.Tensor, generators: Sequence[torch.Generator], *,
                  epochs: int = 10, lr: float = 0.05, k: int = 1, batch_size: int = 100,
                  momentum: float = 0.5, weight_decay: float = 1e-4, sampled: bool = False,
                  precision: str = "fp32") -> None:
    """Greedy CD-k training of S DBNs at once, each as :func:`neuralsmith.stack.greedy_pretrain_dbn`.

    The bottom RBMs' visible biases start from the data (``init_biases_``); layer l + 1 trains
    on :math:`E[h^l \\mid x]` (mean field), or on a sample of it (``sampled=True``) drawn with
    the member's generator. ``precision`` as in :func:`train_rbms`.
    """

    def train_layer(l: int, layer: nn.ModuleList, inputs: torch.Tensor) -> None:
        if l == 0:
            for s, r in enumerate(layer):
                r.init_biases_(_member(inputs, s))
        train_rbms(layer, inputs, generators, epochs=epochs, lr=lr, k=k, batch_size=batch_size,
                   momentum=momentum, weight_decay=weight_decay, precision=precision)

    def represent(r: nn.Module, v: torch.Tensor, s: int) -> torch.Tensor:
        return r.sample_hidden(v, generators[s]) if sampled else r.hidden_probs(v)

    _greedy_members([dbn.rbms for dbn in dbns], x, train_layer, represent)
