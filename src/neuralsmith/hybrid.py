r"""Deep hybrid models: stacks of label-connected experts, trained jointly in one stage.

Ororbia, Giles & Reitter (2015, "Online semi-supervised learning with deep hybrid Boltzmann
machines and denoising autoencoders", arXiv:1511.06964), building on the Stacked Boltzmann
Experts Network of Ororbia, Reitter, Wu & Giles (2015). Instead of pre-training a stack
greedily and then fine-tuning it, every layer :math:`\ell` is an *expert*: a classification
RBM (:class:`~neuralsmith.rbm.ClassRBM`) over the representation below it,
:math:`r^{\ell-1}` (:math:`r^0 = x`), connected to the labels by its own :math:`U^\ell`. All
experts learn at once, on every mini-batch, each from its hybrid objective (Larochelle et al.
2012)

.. math::
    L^\ell = -\log p_\ell(y \mid r^{\ell-1}) + \alpha\, L^\ell_{\text{gen}}(r^{\ell-1}, y)
             + \beta\, L^\ell_{\text{unsup}}(r^{\ell-1}_{\text{unlabeled}})

and the model predicts by combining the experts' label beliefs,

.. math::
    p(y \mid x) = \frac1L \sum_\ell p_\ell(y \mid r^{\ell-1}) \quad (\text{``mean''}), \qquad
    p(y \mid x) \propto \prod_\ell p_\ell(y \mid r^{\ell-1})^{1/L} \quad (\text{``product''}).

Two families differ only in the generative term of each expert:

* :class:`DHBM`, the Deep Hybrid Boltzmann Machine: :math:`L_{\text{gen}} = -\log p(r, y)` by
  CD-k (for unlabeled rows :math:`-\log p(r)`, y drawn from the expert's :math:`p(y \mid r)`);
* :class:`DHDA`, the Deep Hybrid Denoising Autoencoder: :math:`L_{\text{gen}}` is the
  reconstruction cross-entropy of a tied denoising autoencoder sharing the expert's
  :math:`W, b, c` (Vincent et al. 2008): encode :math:`\sigma(c + W\tilde r)`, decode
  :math:`\sigma(b + W^\top h)`; labeled and unlabeled rows alike.

With ``unsupervised="entropy"``, :math:`L_{\text{unsup}}` is instead, for both families, the
entropy of the expert's :math:`p_\ell(y \mid r)` on the unlabeled rows (Grandvalet & Bengio
2005; :func:`neuralsmith.rbm.classrbm.entropy_gradients`).

The representations come from one bottom-up pass, :math:`r^\ell = \sigma(c^\ell + W^\ell r^{\ell-1})`,
then (``top_down=True``) one top-down mean-field sweep, as in a DBM,
:math:`r^\ell \leftarrow \sigma(c^\ell + W^\ell r^{\ell-1} + W^{\ell+1\top} r^{\ell+1})` for
:math:`\ell = L-1, \dots, 1`, so each expert's input also carries what the layer above believes.

Where the paper leaves room, we chose (and say so here):

* the representations are label-free (no :math:`U^\ell y` term), so training and prediction see
  the same features; the labels enter only through each expert's own objective;
* the top-down sweep adds :math:`W^{\ell+1\top} r^{\ell+1}` without the upper expert's visible
  bias, and runs once;
* each expert learns from its *local* gradient with its input held fixed (no back-propagation
  across layers): the stack is trained jointly, not end to end;
* the hybrid DAE's discriminative part is the ClassRBM conditional on the same :math:`W, c`;
* experts combine by the arithmetic mean of their :math:`p_\ell(y \mid \cdot)` by default.

Training goes through the one training loop (:func:`neuralsmith.loop.fit`: checkpoints, model
selection) with the ClassRBM updater (:class:`~neuralsmith.rbm.classrbm.ClassUpdater`: batching,
momentum), each expert's generative term supplied by the model kind (:meth:`DeepHybrid.generative_term`); ``batching="stream"`` with one epoch is
the online setting: one pass over a stream of rows, labeled and unlabeled mixed.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.bernoulli(torch.full((80, 6), 0.5), generator=g)
    >>> y = (x[:, 0] + x[:, 1] > 0.5).long()
    >>> model = DHBM([6, 8, 8], 2, generator=g)
    >>> hist = train_hybrid(model, x[:40], y[:40], x_unlabeled=x[40:], objective="semisupervised",
    ...                     epochs=10, batch_size=10, lr=0.2, generator=g, progress=False)
    >>> model.predict_proba(x).shape, len(hist)
    (torch.Size([80, 2]), 10)
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Generator, Tensor, nn

from neuralsmith import checkpoint
from neuralsmith.autoencoder import corrupt
from neuralsmith.loop import check_patience, fit
from neuralsmith.rbm.classrbm import ClassHistory, ClassRBM, ClassSettings, ClassUpdater, \
    Generative, cd_gradients, check_class_data
from neuralsmith.seeds import resolve_generator
from neuralsmith.settings import default_of

__all__ = ["COMBINE", "DHBM", "DHDA", "DeepHybrid", "denoising_gradients", "load", "save",
           "train_hybrid"]

COMBINE = ("mean", "product")
KINDS = ("dhbm", "dhda")


class DeepHybrid(nn.Module):
    """A stack of ClassRBM experts over ``sizes = [n_in, h1, ..., hL]``; see the module docstring.

    Args:
        sizes: input width, then one hidden size per layer.
        n_classes: label values.
        top_down: refine the representations with one top-down sweep.
        combine: ``"mean"`` or ``"product"`` of the experts' label beliefs.
        generator: draws the initial weights (as :class:`~neuralsmith.rbm.ClassRBM`); None:
            a fresh, logged seed.
        dtype, device: where the parameters live.

    Raises:
        ValueError: for fewer than two sizes, a size below 1, or an unknown ``combine``.
    """

    kind = ""

    def __init__(self, sizes: Sequence[int], n_classes: int, *, top_down: bool = True,
                 combine: str = "mean", generator: Generator | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError("sizes must be [n_in, h1, ...] with at least one hidden layer, all "
                             f">= 1 (e.g. [784, 500, 500]); got {sizes}")
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {', '.join(COMBINE)}; got {combine!r}")
        self.sizes, self.top_down, self.combine = sizes, bool(top_down), combine
        generator = resolve_generator(generator, "cpu" if device is None else device)
        self.layers = nn.ModuleList(ClassRBM(a, b, n_classes, generator=generator, dtype=dtype, device=device)
                                    for a, b in zip(sizes[:-1], sizes[1:]))

    @property
    def n_classes(self) -> int:
        return self.layers[0].n_classes

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-ready (for checkpoints)."""
        return {"kind": self.kind, "sizes": self.sizes, "n_classes": self.n_classes,
                "top_down": self.top_down, "combine": self.combine}

    def init_biases_(self, x: Tensor, y: Tensor) -> "DeepHybrid":
        """Bottom expert's visible biases from the data, every label bias the log class prior."""
        self.layers[0].init_biases_(x, y)
        with torch.no_grad():
            for layer in self.layers[1:]:
                layer.label_bias.copy_(self.layers[0].label_bias)
        return self

    @torch.no_grad()
    def represent(self, x: Tensor) -> list[Tensor]:
        r"""Each expert's input :math:`[r^0 = x, r^1, \dots, r^{L-1}]` (bottom-up, then top-down)."""
        reps = [x]
        for layer in self.layers:
            reps.append(layer.hidden_units.mean(layer.hidden_input(reps[-1])))  # (batch, h_l)
        if self.top_down:
            for i in range(len(self.layers) - 2, -1, -1):
                a = self.layers[i].hidden_input(reps[i]) + reps[i + 2] @ self.layers[i + 1].weight
                reps[i + 1] = self.layers[i].hidden_units.mean(a)
        return reps[:-1]

    @torch.no_grad()
    def expert_log_probs(self, x: Tensor) -> Tensor:
        r""":math:`\log p_\ell(y \mid r^{\ell-1})` of every expert, shape (L, batch, C)."""
        return torch.stack([layer.log_proba(r) for layer, r in zip(self.layers, self.represent(x))])

    @torch.no_grad()
    def log_proba(self, x: Tensor) -> Tensor:
        r"""The combined :math:`\log p(y \mid x)`, shape (batch, C)."""
        logp = self.expert_log_probs(x)
        if self.combine == "product":
            return torch.log_softmax(logp.mean(0), dim=-1)
        return torch.logsumexp(logp, dim=0) - math.log(len(self.layers))

    def predict_proba(self, x: Tensor) -> Tensor:
        r""":math:`p(y \mid x)`, shape (batch, C)."""
        return self.log_proba(x).exp()

    def predict(self, x: Tensor) -> Tensor:
        """The most probable class, int64, shape (batch,)."""
        return self.log_proba(x).argmax(-1)

    def experts(self) -> list[tuple[str, ClassRBM]]:
        """Each expert with the prefix of its parameter names (``layers.0.``, ...)."""
        return [(f"layers.{i}.", layer) for i, layer in enumerate(self.layers)]

    def generative_term(self, k: int, generator: Generator) -> Generative:
        """The statistics of each expert's generative term, ``(expert, r, e, hidden_in) -> grads``.

        The model kind supplies it (:class:`DHBM`: CD-k; :class:`DHDA`: denoising).
        """
        raise NotImplementedError(f"{type(self).__name__} names no generative term; use DHBM or DHDA")


class DHBM(DeepHybrid):
    """Deep Hybrid Boltzmann Machine: ClassRBM experts whose generative term is CD-k.

    Example:
        >>> DHBM([6, 4, 3], 2).predict(torch.rand(5, 6)).shape
        torch.Size([5])
    """

    kind = "dhbm"

    def generative_term(self, k: int, generator: Generator) -> Generative:
        r"""CD-k statistics of :math:`\log p(r, y)` (:math:`\log p(r)` with y drawn when missing)."""
        def term(layer: nn.Module, x: Tensor, e: Tensor | None, hidden_in: Tensor | None) -> dict[str, Tensor]:
            return cd_gradients(layer, x, e, k, generator, None, hidden_in)[0]
        return term


class DHDA(DeepHybrid):
    """Deep Hybrid Denoising Autoencoder: experts whose generative term is denoising.

    Args:
        corruption, level: the corruption process of every expert's input
            (:func:`neuralsmith.autoencoder.corrupt`).
        **kwargs: as :class:`DeepHybrid`.

    Example:
        >>> DHDA([6, 4], 2, level=0.3).config()["level"]
        0.3
    """

    kind = "dhda"

    def __init__(self, sizes: Sequence[int], n_classes: int, *, corruption: str = "masking",
                 level: float = 0.2, **kwargs: Any):
        super().__init__(sizes, n_classes, **kwargs)
        corrupt(torch.zeros(0), corruption, level)  # check early (no draw from the global RNG)
        self.corruption, self.level = corruption, float(level)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "corruption": self.corruption, "level": self.level}

    def generative_term(self, k: int, generator: Generator) -> Generative:
        """The tied denoising autoencoder's statistics (:func:`denoising_gradients`); ``k`` unused."""
        def term(layer: nn.Module, x: Tensor, e: Tensor | None, hidden_in: Tensor | None) -> dict[str, Tensor]:
            return denoising_gradients(layer, x, self.corruption, self.level, generator)
        return term


def build(kind: str, sizes: Sequence[int], n_classes: int, **kwargs: Any) -> DeepHybrid:
    """A :class:`DHBM` (``"dhbm"``) or :class:`DHDA` (``"dhda"``)."""
    if kind not in KINDS:
        raise ValueError(f"model must be one of {', '.join(KINDS)}; got {kind!r}")
    return (DHBM if kind == "dhbm" else DHDA)(sizes, n_classes, **kwargs)


def denoising_gradients(layer: ClassRBM, x: Tensor, corruption: str, level: float,
                        generator: Generator | None) -> dict[str, Tensor]:
    r"""Ascent direction of the tied denoising autoencoder's loss on an expert's W, b, c.

    .. math::
        \tilde x \sim q(\tilde x \mid x), \quad h = \sigma(c + W\tilde x), \quad
        z = \sigma(b + W^\top h), \quad
        L = -\sum_i x_i \log z_i + (1 - x_i)\log(1 - z_i)

    (Vincent et al. 2008), so with :math:`\delta_z = x - z` and
    :math:`\delta_h = (W \delta_z) \odot h(1-h)`:
    :math:`-\nabla_W L = h\,\delta_z^\top + \delta_h \tilde x^\top`,
    :math:`-\nabla_b L = \delta_z`, :math:`-\nabla_c L = \delta_h` (batch means). This is the
    gradient autograd gives for :meth:`neuralsmith.autoencoder.DenoisingAutoencoder.loss`.
    """
    xt = corrupt(x, corruption, level, generator=generator)
    h = torch.sigmoid(layer.hidden_input(xt))  # (batch, n_hidden)
    dz = x - torch.sigmoid(layer.visible_input(h))  # (batch, n_visible)
    dh = torch.mm(dz, layer.weight.t()).mul_(h * (1 - h))  # (batch, n_hidden)
    n = len(x)
    return {"weight": torch.mm(h.t(), dz).addmm_(dh.t(), xt).div_(n),
            "visible_bias": dz.mean(0), "hidden_bias": dh.mean(0)}


def train_hybrid(model: DeepHybrid, x: Tensor, y: Tensor, *, epochs: int = 1,
                 objective: str = "hybrid", alpha: float = 0.01, beta: float = 0.1,
                 unsupervised: str = default_of(ClassSettings, "unsupervised"),
                 x_unlabeled: Tensor | None = None,
                 batching: str = "paired", unlabeled_ratio: int = 1, batch_size: int = 20,
                 lr: float = 0.05, k: int = 1, momentum: float = 0.9,
                 weight_decay: float = 0.0, schedule: str = default_of(ClassSettings, "schedule"),
                 precision: str = "fp32",
                 x_valid: Tensor | None = None, y_valid: Tensor | None = None,
                 patience: int | None = None,
                 generator: Generator | None = None,
                 callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
                 checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                 monitor_size: int = 1000) -> ClassHistory:
    r"""Train every expert of ``model`` jointly, in one stage, on labeled (and unlabeled) rows.

    Each update computes the representations of the batch (:meth:`DeepHybrid.represent`) and
    moves every expert along its own objective's gradient (momentum, weight decay on W, U),
    exactly as :func:`neuralsmith.rbm.train_classrbm` moves one ClassRBM: a one-layer
    :class:`DHBM` trains as a ClassRBM does. ``objective`` is ``hybrid`` (or ``discriminative``,
    ``generative``) on the labeled rows, or ``semisupervised`` (the hybrid plus ``beta`` times
    the unsupervised term on ``x_unlabeled``). ``batching="stream", epochs=1`` is online
    learning: one pass over all rows in a random order.

    Args:
        model: a :class:`DHBM` or :class:`DHDA`; trained in place.
        x, y, x_unlabeled, x_valid, y_valid, patience: as :func:`~neuralsmith.rbm.train_classrbm`.
        epochs, objective, alpha, beta, unsupervised, batching, unlabeled_ratio, batch_size, lr,
            k, momentum, weight_decay, schedule: as :class:`~neuralsmith.rbm.ClassSettings`
            (CD only: ``method`` is ``"cd"``).
        precision: ``"fp32"``, or ``"bf16"``: every expert's generative term (CD or denoising)
            on bf16 copies of its parameters, as :func:`~neuralsmith.rbm.train_classrbm` does.
        generator, callbacks, checkpoint_dir, progress, monitor_size: as ``train_classrbm``.

    Returns:
        The :class:`~neuralsmith.rbm.classrbm.ClassHistory`; ``model`` holds the
        best-validation parameters when validation rows are given.

    Raises:
        ValueError: for a bad setting or data that do not fit the model.
    """
    settings = ClassSettings(epochs=epochs, batch_size=batch_size, lr=lr, k=k, method="cd",
                             momentum=momentum, weight_decay=weight_decay, schedule=schedule,
                             monitor_size=monitor_size, objective=objective, alpha=alpha,
                             beta=beta, supervised="hybrid", unsupervised=unsupervised,
                             batching=batching, unlabeled_ratio=unlabeled_ratio,
                             precision=precision)
    check_patience(patience)
    data = check_class_data(model.layers[0], x, y, x_unlabeled, x_valid, y_valid, settings)
    gen = resolve_generator(generator, data[0].device)
    updater = ClassUpdater(model, *data, settings, gen, experts=model.experts(),
                           represent=model.represent, generative=model.generative_term(settings.k, gen),
                           name=f"{model.kind.upper()} {'-'.join(map(str, model.sizes[1:]))} {objective}")
    return fit(updater, epochs=settings.epochs, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
               patience=patience, progress=progress)


def save(model: DeepHybrid, folder: str | os.PathLike, name: str = "model",
         meta: dict[str, Any] | None = None) -> None:
    """Write ``model`` as checkpoint ``name`` in ``folder`` (safetensors + JSON, atomic)."""
    checkpoint.save_module(model, folder, name, {"hybrid": model.config(), **(meta or {})})


def load(folder: str | os.PathLike, name: str = "model",
         device: torch.device | str | None = None) -> DeepHybrid:
    """Read a model written by :func:`save`.

    Raises:
        FileNotFoundError: if the checkpoint is missing.
        ValueError: if it holds no deep hybrid model, or is damaged.
    """
    def make(meta: dict[str, Any], tensors: dict[str, Tensor]) -> DeepHybrid:
        return build(**meta["hybrid"], dtype=tensors["layers.0.weight"].dtype, device=device,
                     generator=torch.Generator())  # overwritten; leaves the global RNG alone

    return checkpoint.load_module(folder, name, "hybrid", make, what="deep hybrid model",
                                  origin="`neuralsmith hybrid --out RUN` or hybrid.save")[0]
