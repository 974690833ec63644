"""The supervised loop: fine-tuning any ``nn.Module`` gently, with checkpoints that resume.

One loop for every start (pre-trained stacks, initializer presets, recurrent nets): models own
their parameters, this module owns batching, the optimizer, the schedule, early stopping,
checkpoints and progress. The loss is cross-entropy on logits for integer targets and squared
error otherwise.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuralsmith import checkpoint, seeds
from neuralsmith.data import Dataset
from neuralsmith.progress import progress_bar

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
CHECKPOINT = "finetune"


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes:
        history: one record per epoch (lr, losses and errors in percent for each split).
        metrics: ``train_error``, ``valid_error``, ``test_error`` (percent) of the kept
            weights, with ``best_epoch``, ``epochs``, ``seconds`` and ``diverged``.
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
                ) -> float:
    """One pass over ``(x, y)`` in a seeded random order; returns the mean of ``loss``.

    ``loss(model, x_batch, y_batch)`` is the objective (e.g. a DAE's denoising loss).
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

    def __post_init__(self) -> None:
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


@dataclass
class _State:
    """Everything a resumed run needs besides the model and optimizer."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, torch.Tensor] | None = None
    best_score: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    diverged: bool = False
    seconds: float = 0.0


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
          generator: torch.Generator, st: _State) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in (st.best or {}).items()})
    for i, s in optimizer.state_dict()["state"].items():
        tensors.update({f"opt.{i}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    tensors["generator"] = checkpoint.generator_state(generator)
    meta = {k: getattr(st, k) for k in ("epoch", "history", "best_score", "best_epoch",
                                        "bad_epochs", "diverged", "seconds")}
    checkpoint.save(folder, CHECKPOINT, tensors, meta)


def _restore(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
             generator: torch.Generator) -> _State:
    tensors, meta = checkpoint.load(folder, CHECKPOINT)
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            opt_state.setdefault(int(i), {})[name] = v.to(device)
    optimizer.load_state_dict({"state": opt_state,
                               "param_groups": optimizer.state_dict()["param_groups"]})
    checkpoint.restore_generator(generator, tensors["generator"])
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    meta["best_score"] = math.inf if meta["best_score"] is None else meta["best_score"]
    return _State(best=best or None, **meta)


def _record(epoch: int, lr: float, train_loss: float, model: nn.Module, ds: Dataset,
            device: torch.device) -> dict[str, float]:
    rec = {"epoch": epoch, "lr": lr, "train_loss": train_loss}
    for split in ("train", "valid", "test"):
        x, y = getattr(ds, f"x_{split}").to(device), getattr(ds, f"y_{split}").to(device)
        rec[f"{split}_loss"], rec[f"{split}_error"] = evaluate(model, x, y)
    return rec


def _update_best(st: _State, rec: dict[str, float], model: nn.Module) -> None:
    """Keep the weights with the lowest validation error (training loss if no validation)."""
    score = rec["valid_error"] if not math.isnan(rec["valid_error"]) else rec["train_loss"]
    if score < st.best_score:
        st.best, st.best_score, st.best_epoch, st.bad_epochs = _snapshot(model), score, rec["epoch"], 0
    else:
        st.bad_epochs += 1


def finetune(model: nn.Module, data: Dataset, *, epochs: int = 30, lr: float = 0.1,
             momentum: float = 0.9, batch_size: int = 32, weight_decay: float = 0.0,
             patience: int = 0, schedule: str = "constant",
             clip_grad: float | None = None, generator: torch.Generator | None = None,
             checkpoint_dir: str | Path | None = None,
             callbacks: Sequence[Callable[[dict[str, float]], Any]] = (),
             progress: bool = True, device: torch.device | str = "cpu", optimizer: str = "sgd",
             loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = supervised_loss,
             ) -> FinetuneResult:
    """Train ``model`` on ``data`` with SGD + momentum (or Adam, RMSprop); keep the best-validation weights.

    The SGD update is :math:`v \\leftarrow \\mu v - \\epsilon_t (\\nabla L + \\lambda\\theta)`,
    :math:`\\theta \\leftarrow \\theta + v`, with :math:`\\epsilon_t` from ``schedule``.
    Each epoch evaluates train / valid / test loss and error and calls ``callbacks`` with
    the record (after a resume, only for the epochs still to run: the result's history
    holds them all). A NaN or infinite training loss stops the run and restores the last good
    weights (``metrics["diverged"]`` is then True). With ``checkpoint_dir`` every epoch is
    checkpointed atomically and a rerun resumes where it stopped, with the same result.

    Args:
        model: any module mapping a batch of ``data.x_*`` rows to logits (or predictions).
        data: the :class:`~neuralsmith.data.Dataset` (validation split optional).
        epochs: number of passes over the training set.
        lr, momentum, weight_decay: SGD settings.
        batch_size: minibatch size.
        patience: stop after this many epochs without a better validation error (0: never).
        schedule: ``constant``, ``linear`` or ``cosine`` learning-rate decay.
        clip_grad: clip the global gradient norm to this value.
        generator: the source of the data order, a CPU generator (None: a fresh seed, logged;
            see :func:`neuralsmith.seeds.resolve_generator`).
        optimizer: ``sgd`` (with ``momentum``), ``adam`` or ``rmsprop`` (see :func:`_make_optimizer`).
        loss: the training objective ``loss(model, x_batch, y_batch)`` (e.g. with a penalty
            added); the recorded losses and errors are always the plain supervised ones.

    Returns:
        A :class:`FinetuneResult`; ``model`` holds the kept (best-validation) weights.

    Raises:
        ValueError: for a non-positive epochs, lr or batch size, or an unknown schedule or optimizer.
    """
    cfg = FinetuneConfig(epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size,
                         weight_decay=weight_decay, patience=patience, schedule=schedule,
                         clip_grad=clip_grad, optimizer=optimizer)
    device = torch.device(device)
    generator = seeds.resolve_generator(generator)  # the data order is drawn on the CPU
    model.to(device)
    opt = _make_optimizer(model, cfg)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    st = _restore(folder, model, opt, generator) if folder and checkpoint.exists(folder, CHECKPOINT) else _State()
    x, y = data.x_train.to(device), data.y_train.to(device)
    with progress_bar("fine-tuning", total=epochs, completed=st.epoch, enabled=progress) as bar:
        while st.epoch < epochs and not st.diverged and not _stopped_early(st, patience):
            _run_epoch(model, opt, x, y, data, st, cfg, generator, callbacks, loss)
            if folder is not None:
                _save(folder, model, opt, generator, st)
            bar.advance(st.history[-1] if st.history else {})
    if st.best is not None:
        model.load_state_dict(st.best)
    return FinetuneResult(st.history, _final_metrics(model, data, st, device))


def _stopped_early(st: _State, patience: int) -> bool:
    return patience > 0 and st.bad_epochs >= patience


def _run_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               data: Dataset, st: _State, cfg: FinetuneConfig, generator: torch.Generator,
               callbacks: Sequence[Callable[[dict[str, float]], Any]],
               loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = supervised_loss,
               ) -> None:
    """Train one epoch; on a non-finite loss restore the weights and mark the run diverged."""
    t0 = time.perf_counter()
    good = _snapshot(model)
    rate = lr_at(st.epoch, cfg.epochs, cfg.lr, cfg.schedule)
    for group in opt.param_groups:
        group["lr"] = rate
    train_loss = train_epoch(model, opt, x, y, cfg.batch_size, generator, cfg.clip_grad, loss)
    if not math.isfinite(train_loss):
        log.warning("training loss is %s at epoch %d: stopping, keeping the last good weights",
                    train_loss, st.epoch + 1)
        model.load_state_dict(good)
        st.diverged = True
        return
    st.epoch += 1
    rec = _record(st.epoch, rate, train_loss, model, data, x.device)
    st.seconds += time.perf_counter() - t0
    rec["seconds"] = st.seconds
    st.history.append(rec)
    _update_best(st, rec, model)
    for cb in callbacks:
        cb(rec)


def _final_metrics(model: nn.Module, data: Dataset, st: _State, device) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for split in ("train", "valid", "test"):
        x, y = getattr(data, f"x_{split}").to(device), getattr(data, f"y_{split}").to(device)
        metrics[f"{split}_loss"], metrics[f"{split}_error"] = evaluate(model, x, y)
    metrics.update(best_epoch=st.best_epoch, epochs=st.epoch, seconds=st.seconds,
                   diverged=st.diverged)
    return metrics
