"""Supervised training: fine-tuning any ``nn.Module`` gently, with checkpoints that resume.

One updater for every start (pre-trained stacks, initializer presets, recurrent nets): models
own their parameters, :class:`SupervisedUpdater` owns batching, the optimizer and the schedule,
and the training engine :func:`neuralsmith.loop.fit` runs it (epochs, callbacks, divergence
roll-back, checkpoints, keep-best + early stopping, progress), as it runs the RBM updaters.
The loss is cross-entropy on logits for integer targets and squared error otherwise.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from neuralsmith import data
    >>> ds = data.load("digits", validation=0.1)
    >>> net = nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10))
    >>> result = finetune(net, ds, epochs=2, lr=0.1, progress=False)
    >>> len(result.history), result.metrics["test_error"] < 90.0
    (2, True)
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuralsmith import checkpoint, loop, precision as precision_mod, seeds
from neuralsmith.data import Dataset

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
LEGACY_CHECKPOINT = "finetune"  # the one checkpoint of the loop before neuralsmith.loop


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes:
        history: one record per epoch (:class:`neuralsmith.loop.History`'s rows): ``epoch``,
            ``lr``, loss and error in percent for each split, ``seconds`` of training.
        metrics: ``{split}_loss`` and ``{split}_error`` (percent) of the kept weights, with
            ``best_epoch`` (0: none kept), ``epochs``, ``seconds`` (their sum) and ``diverged``.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def loss_and_error(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and the number of errors (NaN for regression targets)."""
    if targets.dtype.is_floating_point:
        return F.mse_loss(logits.reshape(targets.shape), targets), torch.tensor(math.nan)
    loss = F.cross_entropy(logits, targets)
    return loss, (logits.argmax(dim=1) != targets).sum()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1000) -> tuple[float, float]:
    """Mean loss and error rate (percent) of ``model`` on ``(x, y)``; NaNs for an empty split."""
    if x.shape[0] == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    total_loss, total_err = 0.0, 0.0
    for i in range(0, x.shape[0], batch_size):
        loss, err = loss_and_error(model(x[i:i + batch_size]), y[i:i + batch_size])
        total_loss += float(loss) * min(batch_size, x.shape[0] - i)
        total_err += float(err)
    model.train(was_training)
    return total_loss / x.shape[0], 100.0 * total_err / x.shape[0]


def lr_at(epoch: int, epochs: int, lr: float, schedule: str) -> float:
    """Learning rate of (0-based) ``epoch``: constant, linear decay to 0, or cosine to 0."""
    frac = epoch / max(epochs, 1)
    if schedule == "linear":
        return lr * (1.0 - frac)
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * frac))
    return lr


def supervised_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default objective: cross-entropy (integer targets) or squared error of ``model(x)``."""
    return loss_and_error(model(x), y)[0]


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, batch_size: int, generator: torch.Generator,
                clip: float | None = None,
                loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = supervised_loss,
                on_batch: Callable[[], None] | None = None) -> float:
    """One pass over ``(x, y)`` in a seeded random order; returns the mean of ``loss``.

    ``loss(model, x_batch, y_batch)`` is the objective (e.g. a DAE's denoising loss);
    ``on_batch()`` is called after each update.
    """
    model.train()
    order = torch.randperm(x.shape[0], generator=generator).to(x.device)
    total = 0.0
    for i in range(0, x.shape[0], batch_size):
        idx = order[i:i + batch_size]
        value = loss(model, x[idx], y[idx])
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += float(value.detach()) * idx.shape[0]
        if on_batch is not None:
            on_batch()
    return total / x.shape[0]


@dataclass(frozen=True)
class FinetuneConfig:
    """The fine-tuning budget and optimizer settings (see :func:`finetune`)."""

    epochs: int = 30
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 32
    weight_decay: float = 0.0
    patience: int = 0
    schedule: str = "constant"
    clip_grad: float | None = None
    optimizer: str = "sgd"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        precision_mod.check_precision(self.precision)
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError("patience must be a whole number of epochs >= 0 (0: no early stopping); "
                             f"got {self.patience!r}")


def _make_optimizer(model: nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the default), Adam or RMSprop over ``model``'s parameters.

    ``momentum`` is SGD's heavy ball and RMSprop's momentum; Adam keeps its own betas (0.9, 0.999).
    """
    params, decay = model.parameters(), cfg.weight_decay
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=decay)


def training_tensors(model: nn.Module, optimizer: torch.optim.Optimizer,
                     generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The state of a gradient-descent updater, flat for safetensors: ``model.*`` parameters,
    ``opt.<i>.*`` optimizer buffers (e.g. SGD's momentum) and the ``generator`` state."""
    out = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, state in optimizer.state_dict()["state"].items():
        out.update({f"opt.{i}.{k}": v for k, v in state.items() if torch.is_tensor(v)})
    out["generator"] = checkpoint.generator_state(generator)
    return {k: v.detach().clone() for k, v in out.items()}


def load_training_tensors(model: nn.Module, optimizer: torch.optim.Optimizer,
                          generator: torch.Generator, tensors: dict[str, torch.Tensor],
                          device: torch.device | str = "cpu") -> None:
    """Put a state from :func:`training_tensors` back in place (optimizer buffers on ``device``)."""
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = v.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    checkpoint.restore_generator(generator, tensors["generator"])


class SupervisedUpdater:
    """Minibatch gradient descent on a supervised objective: the updater :func:`finetune` runs
    through :func:`neuralsmith.loop.fit`.

    It holds the optimizer (SGD, Adam or RMSprop, see :func:`_make_optimizer`), the generator of
    the data order and the training split on the model's device, and implements the updater
    protocol of :mod:`neuralsmith.loop`. Each epoch sets the learning rate of ``settings.schedule``
    (:func:`lr_at`), runs :func:`train_epoch`, and records the plain supervised loss and error
    of every split (:func:`evaluate`).
    """

    def __init__(self, model: nn.Module, data: Dataset, settings: FinetuneConfig,
                 generator: torch.Generator, device: torch.device | str = "cpu",
                 loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = supervised_loss):
        self.model, self.data, self.settings = model, data, settings
        self.generator, self.device, self.loss = generator, torch.device(device), loss
        self.x, self.y = data.x_train.to(self.device), data.y_train.to(self.device)
        self.optimizer = _make_optimizer(model, settings)
        self.epoch = 0
        self.rate, self.train_loss = settings.lr, math.nan

    def label(self) -> str:
        """What the progress bar calls this run."""
        return "fine-tuning"

    def summary(self, row: dict[str, Any]) -> str:
        """The progress bar's text after an epoch with record ``row``."""
        return (f"loss {row['train_loss']:.4f} valid {row['valid_error']:.2f}% "
                f"test {row['test_error']:.2f}%")

    def n_batches(self) -> int:
        """Updates per epoch."""
        return math.ceil(len(self.x) / self.settings.batch_size)

    def run_epoch(self, on_batch: Callable[[], None] = lambda: None) -> None:
        """One pass over the shuffled training split at the learning rate of this epoch."""
        s = self.settings
        self.rate = lr_at(self.epoch, s.epochs, s.lr, s.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate
        with torch.enable_grad(), precision_mod.autocast(s.precision, self.device):  # bf16: mixed
            self.train_loss = train_epoch(self.model, self.optimizer, self.x, self.y, s.batch_size,
                                          self.generator, s.clip_grad, self.loss, on_batch)

    def monitor(self) -> dict[str, Any]:
        """The epoch's record: its learning rate, then loss and error (percent) of each split."""
        return {"lr": self.rate, **split_metrics(self.model, self.data, self.device)}

    def finite(self) -> bool:
        """Whether the epoch's mean training loss is finite (else the loop rolls it back)."""
        return math.isfinite(self.train_loss)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Model, optimizer state and generator, flat, for safetensors."""
        return training_tensors(self.model, self.optimizer, self.generator)

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Put a state from :meth:`tensors` back."""
        load_training_tensors(self.model, self.optimizer, self.generator, tensors, self.device)

    def meta(self) -> dict[str, Any]:
        """What a resumed run must share: the settings (all but epochs and the precision)."""
        return {"settings": {k: v for k, v in asdict(self.settings).items()
                             if k not in ("epochs", "precision")}}


def split_metrics(model: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """``{split}_loss`` and ``{split}_error`` (percent) of ``model`` on train, valid and test."""
    row: dict[str, float] = {}
    for split in ("train", "valid", "test"):
        x, y = getattr(data, f"x_{split}").to(device), getattr(data, f"y_{split}").to(device)
        row[f"{split}_loss"], row[f"{split}_error"] = evaluate(model, x, y)
    return row


def keep_score(row: dict[str, Any]) -> float:
    """What fine-tuning keeps the best epoch by: the validation error, else the training loss."""
    return row["valid_error"] if not math.isnan(row["valid_error"]) else row["train_loss"]


def finetune(model: nn.Module, data: Dataset, *, epochs: int = 30, lr: float = 0.1,
             momentum: float = 0.9, batch_size: int = 32, weight_decay: float = 0.0,
             patience: int = 0, schedule: str = "constant",
             clip_grad: float | None = None, generator: torch.Generator | None = None,
             checkpoint_dir: str | Path | None = None,
             callbacks: Sequence[Callable[[dict[str, float]], Any]] = (),
             progress: bool = True, device: torch.device | str = "cpu", optimizer: str = "sgd",
             precision: str = "fp32", loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = supervised_loss,
             ) -> FinetuneResult:
    """Train ``model`` on ``data`` with SGD + momentum (or Adam, RMSprop); keep the best-validation weights.

    The SGD update is :math:`v \\leftarrow \\mu v - \\epsilon_t (\\nabla L + \\lambda\\theta)`,
    :math:`\\theta \\leftarrow \\theta + v`, with :math:`\\epsilon_t` from ``schedule``.
    A :class:`SupervisedUpdater` run by the training engine :func:`neuralsmith.loop.fit`: each
    epoch evaluates train / valid / test loss and error and calls every callback with the
    record (after a resume, only for the epochs still to run: the result's history holds them
    all); a callback returning True stops training. A NaN or infinite training loss stops the
    run and restores the last good state (``metrics["diverged"]`` is then True). With
    ``checkpoint_dir`` every epoch is checkpointed atomically and a rerun resumes where it
    stopped, with the same result (a run that stopped stays stopped).

    Args:
        model: any module mapping a batch of ``data.x_*`` rows to logits (or predictions).
        data: the :class:`~neuralsmith.data.Dataset` (validation split optional).
        epochs: number of passes over the training set.
        lr, momentum, weight_decay: SGD settings.
        batch_size: minibatch size.
        patience: stop after this many epochs without a better validation error (training
            loss without a validation split; 0: never).
        schedule: ``constant``, ``linear`` or ``cosine`` learning-rate decay.
        clip_grad: clip the global gradient norm to this value.
        generator: the source of the data order, a CPU generator (None: a fresh seed, logged;
            see :func:`neuralsmith.seeds.resolve_generator`).
        checkpoint_dir: where the engine keeps checkpoints ``last`` and ``best``.
        callbacks: called with each epoch's record; returning True stops training.
        optimizer: ``sgd`` (with ``momentum``), ``adam`` or ``rmsprop`` (see :func:`_make_optimizer`).
        precision: ``fp32``, or ``bf16``: mixed precision, the forward and backward products
            under ``torch.autocast`` to bfloat16, the weights, gradients and optimizer state fp32
            (:func:`neuralsmith.precision.autocast`; fp32 where bf16 is not fast). The recorded
            losses and errors are computed in fp32.
        loss: the training objective ``loss(model, x_batch, y_batch)`` (e.g. with a penalty
            added); the recorded losses and errors are always the plain supervised ones.

    Returns:
        A :class:`FinetuneResult`; ``model`` holds the kept (best-validation) weights.

    Raises:
        ValueError: for a non-positive epochs, lr or batch size, an unknown schedule or
            optimizer, or a checkpoint written with other settings.
    """
    cfg = FinetuneConfig(epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size,
                         weight_decay=weight_decay, patience=patience, schedule=schedule,
                         clip_grad=clip_grad, optimizer=optimizer, precision=precision)
    generator = seeds.resolve_generator(generator)  # the data order is drawn on the CPU
    updater = SupervisedUpdater(model.to(device), data, cfg, generator, device, loss)
    if checkpoint_dir is not None:
        upgrade_checkpoint(Path(checkpoint_dir), updater)
    history = loop.fit(updater, epochs=epochs, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                       patience=patience or None, progress=progress, score=keep_score)
    return FinetuneResult(history.rows, final_metrics(updater, history))


def final_metrics(updater: SupervisedUpdater, history: loop.History) -> dict[str, Any]:
    """The result's metrics: each split's loss and error of the kept weights, and the run's facts."""
    metrics: dict[str, Any] = split_metrics(updater.model, updater.data, updater.device)
    metrics.update(best_epoch=history.best_epoch or 0, epochs=updater.epoch,
                   seconds=round(sum(row["seconds"] for row in history.rows), 4),
                   diverged=history.diverged)
    return metrics


def upgrade_checkpoint(folder: Path, updater: SupervisedUpdater) -> None:
    """Rewrite a checkpoint ``finetune`` of the former fine-tuning loop as the engine's ``last`` and ``best``.

    The former loop kept the best weights inside its one checkpoint and the cumulative time
    in ``seconds``; a run whose patience had run out resumes as stopped. Nothing happens where
    there is no such checkpoint, or the engine's is already there.
    """
    if not checkpoint.exists(folder, LEGACY_CHECKPOINT) or checkpoint.exists(folder, loop.CHECKPOINT):
        return
    tensors, meta = checkpoint.load(folder, LEGACY_CHECKPOINT)
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    if best:
        kept = {"epoch": meta["best_epoch"], loop.SCORE: meta["best_score"]}
        checkpoint.save(folder, loop.BEST, best, kept)
    patience = updater.settings.patience
    history = loop.History(rows=per_epoch_seconds(meta["history"]), diverged=meta["diverged"],
                           stopped_early=patience > 0 and meta["bad_epochs"] >= patience)
    updater.load_tensors({k: v for k, v in tensors.items() if not k.startswith("best.")})
    updater.epoch = meta["epoch"]
    loop.save(updater, history, folder)
    for suffix in ("safetensors", "json"):
        (folder / f"{LEGACY_CHECKPOINT}.{suffix}").unlink()


def per_epoch_seconds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records whose ``seconds`` count from the start of the run, as seconds of each epoch."""
    out, before = [], 0.0
    for row in rows:
        out.append({**row, "seconds": round(row["seconds"] - before, 4)})
        before = row["seconds"]
    return out
