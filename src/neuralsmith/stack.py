"""Greedy layer-wise pre-training of deep stacks, and dumping a stack into a plain MLP.

Hinton, Osindero & Teh (2006); Bengio, Lamblin, Popovici & Larochelle (2007): train layer 1
on the data, layer :math:`l` on the representation that layers :math:`1..l-1` give, then copy
every layer's encoder (weight, hidden bias) into an ``nn.Linear`` of an ``nn.Sequential``, put a
fresh output layer on top and fine-tune (:func:`neuralsmith.train.finetune`).

Example:
    >>> import torch
    >>> sda = StackedDAE([64, 32, 16], levels=[0.1, 0.2])
    >>> _ = greedy_pretrain_sda(sda, torch.rand(40, 64), epochs=1, progress=False)
    >>> mlp = sda.to_mlp(10)
    >>> mlp(torch.rand(2, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from neuralsmith import checkpoint, nets, seeds
from neuralsmith.autoencoder import DenoisingAutoencoder, train_dae

log = logging.getLogger(__name__)

ACTIVATIONS: dict[str, type[nn.Module]] = {k: v for k, v in nets.ACTIVATIONS.items() if v is not None}


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Validate layer sizes ``[n_in, h1, ..., hL]`` (at least one hidden layer)."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be [n_in, h1, ...] with at least one hidden layer, all >= 1; "
                         f"got {sizes}")
    return sizes


def stack_to_mlp(weights: Sequence[tuple[torch.Tensor, torch.Tensor]], n_classes: int,
                 activation: str = "sigmoid") -> nn.Sequential:
    """Build ``Linear, act, ..., Linear(n_classes)`` from (weight, bias) pairs in nn.Linear layout.

    The output layer starts at zero (a logistic-regression layer on the pre-trained features).

    Raises:
        ValueError: for an unknown activation or ``n_classes < 2``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2; got {n_classes}")
    modules: list[nn.Module] = []
    for weight, bias in weights:
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        modules += [linear, ACTIVATIONS[activation]()]
    top = nn.Linear(weights[-1][0].shape[0], n_classes)
    nn.init.zeros_(top.weight)
    nn.init.zeros_(top.bias)
    return nn.Sequential(*modules, top)


def greedy_pretrain(layers: Sequence[nn.Module], x: torch.Tensor,
                    train_layer: Callable[[int, nn.Module, torch.Tensor], list[dict[str, Any]]],
                    represent: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                    checkpoint_dir: str | Path | None = None,
                    generator: torch.Generator | None = None) -> list[list[dict[str, Any]]]:
    """Train ``layers`` bottom-up, each on the representation the ones below give.

    ``train_layer(l, layer, inputs)`` trains layer ``l`` and returns its history;
    ``represent(layer, inputs)`` maps inputs to the layer's hidden representation. With
    ``checkpoint_dir`` each finished layer is saved as ``layer-<l>``, and a rerun skips the
    layers already done (an interrupted stack resumes at the layer it was on); the state of
    ``generator`` is saved with each layer, so a resumed stack ends as an uninterrupted one.

    Returns:
        One history per layer.
    """
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    histories = []
    for l, layer in enumerate(layers):
        name = f"layer-{l}"
        if folder is not None and checkpoint.exists(folder, name):
            tensors, meta = checkpoint.load(folder, name)
            if generator is not None:
                checkpoint.restore_generator(generator, tensors.pop("generator"))
            layer.load_state_dict(tensors)
            histories.append(meta["history"])
            log.info("layer %d already pre-trained: loaded from %s", l, folder)
        else:
            histories.append(train_layer(l, layer, x))
            if folder is not None:
                tensors = dict(layer.state_dict())
                if generator is not None:
                    tensors["generator"] = checkpoint.generator_state(generator)
                checkpoint.save(folder, name, tensors, {"history": histories[-1]})
        with torch.no_grad():
            x = represent(layer, x)
    return histories


class StackedDAE(nn.Module):
    """A stack of denoising autoencoders (Vincent et al. 2010), one per hidden layer.

    Args:
        sizes: ``[n_in, h1, ..., hL]``.
        corruption: the corruption process of every layer.
        levels: one corruption level per layer (e.g. ``[0.1, 0.2, 0.3]``), or one for all.
        inputs: ``binary`` or ``real`` for the first layer (later layers see sigmoid codes).
        tied: each decoder is its encoder's transpose.
        generator: source of the initial weights.
    """

    def __init__(self, sizes: Sequence[int], *, corruption: str = "masking",
                 levels: float | Sequence[float] = 0.2, inputs: str = "binary", tied: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__()
        sizes = check_sizes(sizes)
        n_layers = len(sizes) - 1
        levels = [float(levels)] * n_layers if isinstance(levels, (int, float)) else list(levels)
        if len(levels) != n_layers:
            raise ValueError(f"levels needs one corruption level per layer ({n_layers}); got {levels}")
        self.sizes = sizes
        self.layers = nn.ModuleList(
            DenoisingAutoencoder(a, b, corruption=corruption, level=lv, tied=tied,
                                 inputs=inputs if i == 0 else "binary", generator=generator)
            for i, (a, b, lv) in enumerate(zip(sizes[:-1], sizes[1:], levels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The top-level code of ``x`` (no corruption)."""
        for layer in self.layers:
            x = layer.encode(x)
        return x

    def config(self) -> dict[str, Any]:
        """What :func:`load_stack` needs to rebuild the stack, JSON-ready."""
        return {"kind": "sda", "sizes": self.sizes, "tied": self.layers[0].tied}

    def to_mlp(self, n_classes: int, activation: str = "sigmoid") -> nn.Sequential:
        """Copy every encoder into an ``nn.Linear`` and add a fresh output layer."""
        return stack_to_mlp([(d.weight.detach(), d.hidden_bias.detach()) for d in self.layers],
                            n_classes, activation)


def greedy_pretrain_sda(sda: StackedDAE, x: torch.Tensor, *, epochs: int = 10, lr: float = 0.1,
                        batch_size: int = 20, generator: torch.Generator | None = None,
                        checkpoint_dir: str | Path | None = None, progress: bool = True,
                        precision: str = "fp32") -> list[list[dict[str, Any]]]:
    """Greedy layer-wise training of a :class:`StackedDAE` (Vincent et al. 2010, section 5).

    With ``checkpoint_dir`` each layer's training is itself checkpointed every epoch
    (``layer-<l>-epochs/``), so a stack interrupted mid-layer resumes within that layer.
    """
    generator = seeds.resolve_generator(generator, x.device)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None

    def train_layer(l: int, dae: nn.Module, inputs: torch.Tensor) -> list[dict[str, Any]]:
        return train_dae(dae, inputs, epochs=epochs, lr=lr, batch_size=batch_size, generator=generator,
                         progress=progress, precision=precision, checkpoint_dir=folder / f"layer-{l}-epochs" if folder else None)

    return greedy_pretrain(sda.layers, x, train_layer, lambda dae, v: dae.encode(v), folder, generator)


class DBN(nn.Module):
    r"""A Deep Belief Network: a stack of RBMs (Hinton, Osindero & Teh 2006).

    As a generative model,

    .. math::
        P(x, h^1, \dots, h^l) = \Big(\prod_{k=0}^{l-2} P(h^k \mid h^{k+1})\Big) P(h^{l-1}, h^l),
        \qquad h^0 = x,

    the top two layers an RBM, the others directed sigmoid belief layers using the RBMs'
    downward conditionals.

    Args:
        sizes: ``[n_visible, h1, ..., hL]``.
        visible: unit type of the bottom RBM's visible layer (``bernoulli`` or ``gaussian``).
        generator: source of the initial weights, N(0, 0.01^2) (Hinton 2010).
    """

    def __init__(self, sizes: Sequence[int], *, visible: str = "bernoulli",
                 generator: torch.Generator | None = None):
        super().__init__()
        from neuralsmith.rbm import RBM

        self.sizes = check_sizes(sizes)
        self.rbms = nn.ModuleList(
            RBM(a, b, visible=visible if i == 0 else "bernoulli", generator=generator)
            for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean-field up pass: :math:`E[h^l \\mid x]` layer by layer."""
        for rbm in self.rbms:
            x = rbm.hidden_probs(x)
        return x

    @torch.no_grad()
    def sample(self, n: int, gibbs_steps: int = 1000,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` visible vectors: Gibbs in the top RBM, then one down pass.

        The last step returns :math:`E[x \\mid h^1]` (probabilities, the usual way to show samples).
        """
        h = self.rbms[-1].sample(n, gibbs_steps, generator)  # (n, size of layer l-1)
        for rbm in reversed(self.rbms[1:-1]):
            h = rbm.sample_visible(h, generator)
        return self.rbms[0].visible_probs(h) if len(self.rbms) > 1 else h

    def config(self) -> dict[str, Any]:
        """What :func:`load_stack` needs to rebuild the stack, JSON-ready."""
        return {"kind": "dbn", "sizes": self.sizes, "visible": self.rbms[0].visible_units.name}

    def to_mlp(self, n_classes: int, activation: str = "sigmoid") -> nn.Sequential:
        """Copy each RBM's weight and hidden bias into an ``nn.Linear``; add an output layer."""
        return stack_to_mlp([(r.weight.detach(), r.hidden_bias.detach()) for r in self.rbms],
                            n_classes, activation)


def greedy_pretrain_dbn(dbn: DBN, x: torch.Tensor, *, epochs: int = 10, method: str = "cd",
                        k: int = 1, lr: float = 0.05, batch_size: int = 100, momentum: float = 0.5,
                        weight_decay: float = 1e-4, sampled: bool = False,
                        generator: torch.Generator | None = None,
                        checkpoint_dir: str | Path | None = None,
                        progress: bool = True, **options: Any) -> list[list[dict[str, Any]]]:
    """Greedy layer-wise training of a :class:`DBN` (Hinton et al. 2006; Bengio et al. 2007).

    Layer 1 is trained on ``x``; layer l on :math:`E[h^{l-1} \\mid x]` (mean field) or on a
    sample of it (``sampled=True``). Each layer's RBM training is itself checkpointed, so a
    stack interrupted mid-layer resumes within that layer. Further ``options`` (``schedule``,
    ``n_chains``, ``fast_lr``, ``sparsity_target``, ...) go to every layer's
    :func:`neuralsmith.rbm.train`, so a :class:`neuralsmith.rbm.learning.Settings` can be
    passed whole (``**dataclasses.asdict(settings)``).
    """
    from neuralsmith.rbm import train

    generator = seeds.resolve_generator(generator, x.device)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None

    def train_layer(l: int, rbm: nn.Module, inputs: torch.Tensor) -> list[dict[str, Any]]:
        if l == 0:
            rbm.init_biases_(inputs)  # visible biases log(p / (1 - p)) of the data (Hinton 2010)
        history = train(rbm, inputs, epochs=epochs, batch_size=batch_size, lr=lr, k=k,
                        method=method, momentum=momentum, weight_decay=weight_decay,
                        generator=generator, progress=progress,
                        checkpoint_dir=folder / f"layer-{l}-epochs" if folder else None, **options)
        return history.rows

    def represent(rbm: nn.Module, v: torch.Tensor) -> torch.Tensor:
        return rbm.sample_hidden(v, generator) if sampled else rbm.hidden_probs(v)

    return greedy_pretrain(dbn.rbms, x, train_layer, represent, folder, generator)


STACK_CHECKPOINT = "stack"


def save_stack(model: "DBN | StackedDAE", folder: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Save a pre-trained stack (its kind, sizes and tensors) as checkpoint ``stack`` in ``folder``."""
    return checkpoint.save_module(model, folder, STACK_CHECKPOINT, {**(meta or {}), **model.config()})


def load_stack(folder: str | Path) -> tuple["DBN | StackedDAE", dict[str, Any]]:
    """Load a stack written by :func:`save_stack`.

    Raises:
        FileNotFoundError: if ``folder`` holds no pre-trained stack.
        ValueError: if its metadata names an unknown kind, or it is damaged.
    """
    return checkpoint.load_module(folder, STACK_CHECKPOINT, "kind", _build_stack,
                                  what="pre-trained stack",
                                  origin="`neuralsmith pretrain dbn|sda|dbm --out RUN` (its checkpoints/)")


def _build_stack(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> "DBN | StackedDAE":
    """An empty DBN, StackedDAE or DBM (:mod:`neuralsmith.rbm.dbm`) of the kind and sizes ``meta`` names."""
    if meta["kind"] == "dbm":
        from neuralsmith.rbm.dbm import DBM

        return DBM(meta["sizes"], visible=meta.get("visible", "bernoulli"), generator=torch.Generator())
    if meta["kind"] == "dbn":
        return DBN(meta["sizes"], visible=meta.get("visible", "bernoulli"))
    if meta["kind"] == "sda":
        return StackedDAE(meta["sizes"], tied=meta.get("tied", True))
    raise ValueError(f"unknown stack kind {meta['kind']!r} (expected dbn, sda or dbm); is it a "
                     "`neuralsmith pretrain dbn|sda|dbm` run?")
