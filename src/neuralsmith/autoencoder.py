"""Denoising autoencoders (Vincent, Larochelle, Bengio & Manzagol 2008; Vincent et al. 2010).

A DAE corrupts its input :math:`\\tilde x \\sim q(\\tilde x \\mid x)`, encodes
:math:`h = \\mathrm{sigm}(W \\tilde x + b)`, decodes :math:`z = \\mathrm{sigm}(W' h + c)` (tied:
:math:`W' = W^\\top`) and is trained by backprop to reconstruct the *clean* input, with the
cross-entropy :math:`-\\sum_i x_i \\log z_i + (1 - x_i) \\log (1 - z_i)` for inputs in [0, 1]
or the squared error for real-valued inputs. Weights follow nn.Linear: ``weight`` is
``(n_hidden, n_in)``, so the encoder copies straight into an ``nn.Linear``.

Example:
    >>> import torch
    >>> dae = DenoisingAutoencoder(64, 16, corruption="masking", level=0.25)
    >>> x = torch.rand(8, 64)
    >>> dae.encode(x).shape, dae.loss(x, generator=torch.Generator().manual_seed(0)).item() > 0
    (torch.Size([8, 16]), True)
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from neuralsmith import loop, precision as precision_mod, seeds
from neuralsmith.train import load_training_tensors, train_epoch, training_tensors

CORRUPTIONS = ("masking", "gaussian", "salt_pepper", "none")


def corrupt(x: torch.Tensor, kind: str, level: float, *, generator: torch.Generator | None = None,
            uniforms: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
    """Draw :math:`\\tilde x \\sim q(\\tilde x \\mid x)` (Vincent et al. 2010, section 4.2).

    * ``masking``: each input set to 0 with probability ``level``;
    * ``gaussian``: :math:`\\tilde x = x + \\epsilon`, :math:`\\epsilon \\sim N(0, \\mathrm{level}^2)`;
    * ``salt_pepper``: each input set to 0 or 1 (a fair coin) with probability ``level``;
    * ``none``: ``x`` unchanged (an ordinary autoencoder).

    Masking and salt-and-pepper noise compare U[0, 1) numbers of ``x``'s shape with ``level``
    (and with 1/2 for the coin): ``torch.rand(x.shape, generator=generator)``, or ``uniforms()``
    where given (the batched trainers pass numbers read ahead from each member's generator).

    Raises:
        ValueError: for an unknown kind or a level outside its range.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {', '.join(CORRUPTIONS)}; got {kind!r}")
    if kind == "gaussian":
        if level < 0:
            raise ValueError(f"gaussian corruption level is a std >= 0; got {level}")
        return x + level * torch.randn(x.shape, generator=generator, device=x.device)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"{kind} corruption level is a probability in [0, 1]; got {level}")
    if kind == "none" or level == 0.0:
        return x

    def draw() -> torch.Tensor:
        return uniforms() if uniforms is not None else torch.rand(x.shape, generator=generator, device=x.device)

    hit = draw() < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    coin = (draw() < 0.5).to(x.dtype)
    return torch.where(hit, coin, x)


def uniforms_per_input(kind: str, level: float) -> int:
    """How many U[0, 1) numbers :func:`corrupt` draws per input: 1 for masking, 2 for
    salt-and-pepper, 0 where it draws none or draws Gaussian noise."""
    if kind in ("none", "gaussian") or level == 0.0:
        return 0
    return 2 if kind == "salt_pepper" else 1


def reconstruction_loss(z: torch.Tensor, x: torch.Tensor, inputs: str) -> torch.Tensor:
    r"""The denoising criterion of decoder pre-activations ``z`` against the clean ``x``.

    Summed over inputs (the last dimension), averaged over examples (the one before):
    :math:`-\sum_i x_i \log \sigma(z_i) + (1 - x_i) \log(1 - \sigma(z_i))` for ``binary``
    inputs, :math:`\frac12 \sum_i (z_i - x_i)^2` for ``real`` ones (Vincent et al. 2010,
    section 4.1). Shapes (batch, n_in) give a scalar; (S, batch, n_in) one loss per model.
    """
    if inputs == "binary":
        per_input = F.binary_cross_entropy_with_logits(z, x, reduction="none")
    else:
        per_input = 0.5 * (z - x) ** 2
    return per_input.sum(dim=-1).mean(dim=-1)


def check_training(dae: "DenoisingAutoencoder", x: torch.Tensor, epochs: int, batch_size: int,
                   batched: bool = False) -> None:
    """Refuse non-positive ``epochs`` or ``batch_size``, or inputs that do not fit ``dae``.

    ``x`` is (n, n_in); with ``batched`` it may also be (S, n, n_in), one data set per model.

    Raises:
        ValueError: naming the setting or the shape that is wrong.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs}, {batch_size}")
    n_in = dae.weight.shape[1]
    if x.ndim not in ((2, 3) if batched else (2,)) or x.shape[-1] != n_in:
        shape = "(n, {0}) or (models, n, {0})" if batched else "(n, {0})"
        raise ValueError(f"x must have shape {shape.format(n_in)}; got {tuple(x.shape)}")


class DenoisingAutoencoder(nn.Module):
    """One DAE layer with sigmoid hidden units.

    Args:
        n_in: number of inputs.
        n_hidden: number of hidden units.
        tied: decoder weight is the encoder's transpose (Vincent et al. 2008).
        corruption: ``masking``, ``gaussian``, ``salt_pepper`` or ``none``.
        level: corruption probability (or std for ``gaussian``).
        inputs: ``binary`` (in [0, 1]: sigmoid decoder, cross-entropy) or ``real``
            (linear decoder, squared error).
        generator: source of the initial weights, U(-a, a) with
            :math:`a = 4\\sqrt{6 / (n_{in} + n_{hidden})}` (Glorot & Bengio 2010, for sigmoids).
    """

    def __init__(self, n_in: int, n_hidden: int, *, tied: bool = True, corruption: str = "masking",
                 level: float = 0.2, inputs: str = "binary",
                 generator: torch.Generator | None = None):
        super().__init__()
        if n_in < 1 or n_hidden < 1:
            raise ValueError(f"n_in and n_hidden must be >= 1; got {n_in}, {n_hidden}")
        if inputs not in ("binary", "real"):
            raise ValueError(f"inputs must be 'binary' or 'real'; got {inputs!r}")
        corrupt(torch.zeros(1), corruption, level)  # validate early
        self.corruption, self.level, self.inputs, self.tied = corruption, level, inputs, tied
        a = 4.0 * math.sqrt(6.0 / (n_in + n_hidden))
        generator = seeds.resolve_generator(generator)
        self.weight = nn.Parameter(torch.empty(n_hidden, n_in).uniform_(-a, a, generator=generator))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(n_in))
        self.decoder_weight = None if tied else nn.Parameter(self.weight.detach().T.clone())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`h = \\mathrm{sigm}(x W^\\top + b)`, shape (batch, n_hidden)."""
        return torch.sigmoid(F.linear(x, self.weight, self.hidden_bias))

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder pre-activation :math:`h W' + c`, shape (batch, n_in)."""
        w_dec = self.weight.T if self.decoder_weight is None else self.decoder_weight
        return F.linear(h, w_dec, self.visible_bias)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of the clean input (no corruption)."""
        z = self.decode_logits(self.encode(x))
        return torch.sigmoid(z) if self.inputs == "binary" else z

    def loss(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruction loss of clean ``x`` from its corruption, summed over inputs, batch mean."""
        z = self.decode_logits(self.encode(corrupt(x, self.corruption, self.level, generator=generator)))
        return reconstruction_loss(z, x, self.inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder: the representation the next layer is trained on."""
        return self.encode(x)


class DAEUpdater:
    """Minibatch SGD on a DAE's denoising loss: the updater :func:`train_dae` runs through
    :func:`neuralsmith.loop.fit`.

    Each epoch is one :func:`neuralsmith.train.train_epoch` over ``x`` in an order drawn from
    ``generator``, each batch corrupted with draws from the same generator
    (:meth:`DenoisingAutoencoder.loss`); the record is the epoch's mean ``loss``. Its state
    (parameters, SGD momentum, generator) is :func:`neuralsmith.train.training_tensors`.
    """

    def __init__(self, dae: DenoisingAutoencoder, x: torch.Tensor, *, lr: float, batch_size: int,
                 momentum: float, generator: torch.Generator, precision: str = "fp32"):
        self.model, self.x, self.generator = dae, x, generator
        self.precision = precision_mod.check_precision(precision)
        self.lr, self.batch_size, self.momentum = lr, batch_size, momentum
        self.optimizer = torch.optim.SGD(dae.parameters(), lr=lr, momentum=momentum)
        self.epoch, self.train_loss = 0, math.nan

    def label(self) -> str:
        """What the progress bar calls this run."""
        return f"DAE {self.model.weight.shape[1]}->{self.model.weight.shape[0]}"

    def summary(self, row: dict[str, Any]) -> str:
        """The progress bar's text after an epoch with record ``row``."""
        return f"loss {row['loss']:.4f}"

    def n_batches(self) -> int:
        """Updates per epoch."""
        return math.ceil(len(self.x) / self.batch_size)

    def denoising_loss(self, dae: nn.Module, x: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
        """The objective of a batch: the loss of clean ``x`` from a corruption drawn now."""
        return dae.loss(x, generator=self.generator)

    def run_epoch(self, on_batch: Callable[[], None] = lambda: None) -> None:
        """One pass over the shuffled ``x`` (the target is the clean input itself)."""
        with torch.enable_grad(), precision_mod.autocast(self.precision, self.x.device):
            self.train_loss = train_epoch(self.model, self.optimizer, self.x, self.x, self.batch_size,
                                          self.generator, loss=self.denoising_loss, on_batch=on_batch)

    def monitor(self) -> dict[str, Any]:
        """The epoch's record: its mean denoising loss."""
        return {"loss": self.train_loss}

    def finite(self) -> bool:
        """Whether the epoch's loss and the parameters are finite (else the loop rolls back)."""
        return math.isfinite(self.train_loss) and all(
            bool(torch.isfinite(p).all()) for p in self.model.parameters())

    def tensors(self) -> dict[str, torch.Tensor]:
        """Parameters, SGD momentum and generator, flat, for safetensors."""
        return training_tensors(self.model, self.optimizer, self.generator)

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Put a state from :meth:`tensors` back."""
        load_training_tensors(self.model, self.optimizer, self.generator, tensors, self.x.device)

    def meta(self) -> dict[str, Any]:
        """What a resumed run must share: the SGD settings, the DAE and the data's shape."""
        dae = self.model
        return {"settings": {"lr": self.lr, "batch_size": self.batch_size, "momentum": self.momentum},
                "model": {"n_in": dae.weight.shape[1], "n_hidden": dae.weight.shape[0],
                          "tied": dae.tied, "corruption": dae.corruption, "level": dae.level,
                          "inputs": dae.inputs},
                "data": {"examples": self.x.shape[0]}}


def train_dae(dae: DenoisingAutoencoder, x: torch.Tensor, *, epochs: int = 10, lr: float = 0.1,
              batch_size: int = 20, momentum: float = 0.0, generator: torch.Generator | None = None,
              progress: bool = True, precision: str = "fp32",
              callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
              checkpoint_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Train a DAE by minibatch SGD on its denoising loss; return the per-epoch history.

    A :class:`DAEUpdater` run by the training engine :func:`neuralsmith.loop.fit`, as
    supervised fine-tuning is: every callback sees each epoch's record and one returning True
    stops training; an epoch that leaves the loss or the parameters non-finite is rolled back
    and ends the run; with ``checkpoint_dir`` every epoch is checkpointed (checkpoint ``last``)
    and a rerun resumes where it stopped, bit for bit (a run that stopped stays stopped).

    Args:
        dae: the autoencoder, trained in place (on ``x``'s device).
        x: the clean inputs, (n, n_in).
        epochs, lr, batch_size, momentum: SGD settings.
        generator: the source of the data order and the corruption (None: a fresh seed, logged).
        progress: show a progress bar.
        precision: ``fp32``, or ``bf16``: the products under ``torch.autocast`` to bfloat16,
            the weights and momentum fp32 (:func:`neuralsmith.precision.autocast`).
        callbacks: called with each epoch's record; returning True stops training.
        checkpoint_dir: where the engine keeps its checkpoint (None: no checkpoints).

    Returns:
        One record per epoch (including those before a resume): ``epoch`` and ``loss``.

    Raises:
        ValueError: for non-positive epochs or batch size, inputs of the wrong width, or a
            checkpoint written with other settings.
    """
    check_training(dae, x, epochs, batch_size)
    generator = seeds.resolve_generator(generator, x.device)
    updater = DAEUpdater(dae, x, lr=lr, batch_size=batch_size, momentum=momentum, generator=generator,
                         precision=precision)
    history = loop.fit(updater, epochs=epochs, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                       progress=progress)
    return [{"epoch": row["epoch"], "loss": row["loss"]} for row in history.rows]
