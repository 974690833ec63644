"""The training engine: one epoch loop that drives any *updater* by a small protocol.

The loop owns what every training run needs: epochs with a progress bar, callbacks that may
stop training, roll-back to the last good state when the parameters stop being finite,
a checkpoint after every epoch (resumed bit for bit), keeping the parameters of the epoch with
the lowest validation error (with early stopping after ``patience`` epochs without a better
one), and one :class:`History`. The math of an update lives in the updater.

An updater is any object with

* ``model``: the :class:`torch.nn.Module` it trains (keep-best copies its ``state_dict``);
* ``epoch``: the epochs done so far, an int the updater reads (e.g. for its learning-rate
  schedule) and the loop sets: it adds one after each epoch, restores it on roll-back and
  resume;
* ``n_batches()``: updates per epoch (the progress bar's unit);
* ``run_epoch(on_batch)``: one pass over the data, calling ``on_batch()`` after each update;
* ``monitor()``: the epoch's record (a dict of JSON-ready numbers; ``valid_error``, lower is
  better, turns on keep-best, or whatever number :func:`fit`'s ``score`` reads from it);
* ``finite()``: whether the training state is still finite;
* ``tensors()`` / ``load_tensors(tensors)``: the whole training state (parameters, momentum,
  chains, generator) as a flat dict of tensors, and putting such a state back in place;
* ``meta()``: a JSON-ready dict of dicts that a resumed run must match (settings, model
  config); a resume whose values differ is refused, naming them;
* ``label()`` and ``summary(row)``: the progress bar's name of the run and text of a record.

Example:
    >>> import torch
    >>> class Count:  # the smallest updater: one parameter counting its updates
    ...     def __init__(self):
    ...         self.model, self.epoch = torch.nn.Linear(1, 1, bias=False), 0
    ...     def n_batches(self): return 1
    ...     def run_epoch(self, on_batch): self.model.weight.add_(1.0); on_batch()
    ...     def monitor(self): return {"weight": float(self.model.weight)}
    ...     def finite(self): return bool(torch.isfinite(self.model.weight).all())
    ...     def tensors(self): return {"w": self.model.weight.detach().clone()}
    ...     def load_tensors(self, t): self.model.weight.copy_(t["w"])
    ...     def meta(self): return {"settings": {}}
    ...     def label(self): return "count"
    ...     def summary(self, row): return ""
    >>> u = Count()
    >>> with torch.no_grad():
    ...     _ = u.model.weight.zero_()
    >>> fit(u, epochs=3, progress=False).column("weight")
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import Tensor, nn

from neuralsmith import checkpoint
from neuralsmith.progress import progress_bar

log = logging.getLogger(__name__)

CHECKPOINT = "last"  # the training state, saved after every epoch
BEST = "best"  # the parameters of the best validation epoch
SCORE = "valid_error"  # the record entry keep-best minimizes


class Updater(Protocol):
    """What :func:`fit` needs of an updater; see the module docstring."""

    model: nn.Module
    epoch: int

    def n_batches(self) -> int: ...
    def run_epoch(self, on_batch: Callable[[], None]) -> None: ...
    def monitor(self) -> dict[str, Any]: ...
    def finite(self) -> bool: ...
    def tensors(self) -> dict[str, Tensor]: ...
    def load_tensors(self, tensors: dict[str, Tensor]) -> None: ...
    def meta(self) -> dict[str, Any]: ...
    def label(self) -> str: ...
    def summary(self, row: dict[str, Any]) -> str: ...


@dataclass
class History:
    """Per-epoch records of a training run: the one history shape of every updater.

    Attributes:
        rows: one dict per epoch: ``epoch``, the updater's monitored values, ``seconds``
            (training time of the epoch).
        diverged: the run met a non-finite state and stopped at its last good state.
        stopped_early: a callback (or ``patience``) asked to stop.
        best_epoch, best_valid_error: the epoch whose parameters were kept and its score
            (its ``valid_error`` unless :func:`fit` was given another ``score``), where the
            records are scored; else None.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    diverged: bool = False
    stopped_early: bool = False
    best_epoch: int | None = None
    best_valid_error: float | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def column(self, name: str) -> list[Any]:
        """One metric across epochs."""
        return [row.get(name) for row in self.rows]


def minibatches(x: Tensor, batch_size: int, generator: torch.Generator) -> Iterable[Tensor]:
    """The rows of ``x`` in a fresh random order (drawn from ``generator``), ``batch_size`` at a time.

    The one shuffle of the unsupervised updaters' epochs (CD/PCD/PT, the DBM's joint training).

    Example:
        >>> [len(b) for b in minibatches(torch.zeros(5, 2), 2, torch.Generator().manual_seed(0))]
        [2, 2, 1]
    """
    perm = torch.randperm(len(x), generator=generator, device=generator.device)
    for lo in range(0, len(x), batch_size):
        yield torch.index_select(x, 0, perm[lo:lo + batch_size].to(x.device))


class ShuffledEpochs:
    """An updater part: an epoch is one pass over ``self.x`` in shuffled batches of
    ``self.settings.batch_size`` rows (:func:`minibatches`, drawn from ``self.generator``),
    each handed to ``self.step``. CDUpdater and the DBM's joint updater take it."""

    def n_batches(self) -> int:
        """Updates per epoch."""
        return math.ceil(len(self.x) / self.settings.batch_size)

    def run_epoch(self, on_batch: Callable[[], None] = lambda: None) -> None:
        """One pass over the shuffled data."""
        for batch in minibatches(self.x, self.settings.batch_size, self.generator):
            self.step(batch)
            on_batch()


def valid_error(row: dict[str, Any]) -> float | None:
    """The default score keep-best minimizes: the record's ``valid_error`` (None: not scored)."""
    return row.get(SCORE)


class KeepBest:
    """Keep the parameters of the epoch with the lowest score; stop after ``patience``.

    ``score(row)`` reads the number to minimize from an epoch's record (None: the epoch is
    not scored). Saved as checkpoint ``best`` when a folder is given (so a resumed run keeps
    it); its JSON holds the score under ``valid_error``.
    """

    def __init__(self, model: nn.Module, folder: Any, patience: int | None, resuming: bool,
                 score: Callable[[dict[str, Any]], float | None] = valid_error):
        self.model, self.folder, self.patience, self.score = model, folder, patience, score
        self.error, self.epoch, self.state = math.inf, None, None
        if resuming and checkpoint.exists(folder, BEST):
            self.state, meta = checkpoint.load(folder, BEST)
            self.error, self.epoch = meta[SCORE], meta["epoch"]

    def __call__(self, row: dict[str, Any]) -> bool:
        """Note the epoch's record; True (stop) after ``patience`` epochs without improvement."""
        error = self.score(row)
        if error is None:
            return False
        if error < self.error:
            self.error, self.epoch = error, row["epoch"]
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if self.folder is not None:
                checkpoint.save(self.folder, BEST, self.state, {"epoch": self.epoch, SCORE: error})
        return self.patience is not None and row["epoch"] - (self.epoch or 0) >= self.patience

    def restore(self) -> None:
        """Put the kept parameters back into the model (if any epoch was scored)."""
        if self.state is not None:
            self.model.load_state_dict(self.state)


def check_patience(patience: Any) -> None:
    """Refuse a ``patience`` that is not None or an int >= 1."""
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)
                                 or patience < 1):
        raise ValueError("patience must be an int >= 1 (epochs without a better validation "
                         f"error) or None; got {patience!r}")


def fit(updater: Updater, *, epochs: int, callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
        checkpoint_dir: str | os.PathLike | None = None, patience: int | None = None,
        progress: bool = True,
        score: Callable[[dict[str, Any]], float | None] = valid_error) -> History:
    """Run ``updater`` until it has done ``epochs`` epochs; return the :class:`History`.

    With ``checkpoint_dir`` the state is saved after every epoch and a run with a checkpoint
    there resumes from it (its :meth:`meta` must match); a run that had stopped (diverged,
    or stopped early) stays stopped. Records that ``score`` gives a number (by default their
    ``valid_error``) keep the parameters of the epoch with the lowest one (restored at the
    end). Every callback sees every record; one returning True, or ``patience`` epochs
    without a better score, stops the run. A callback with a ``begin(updater, history)``
    method is shown the updater and the history so far (a resumed run's) before the first
    epoch, and one with ``end(updater, history)`` the trained updater at the end (trackers such
    as :class:`neuralsmith.tracking.TensorBoard` read the model there); neither may draw from
    the training generator.

    Raises:
        ValueError: a bad ``patience``, or a checkpoint of another model or other settings.
    """
    check_patience(patience)
    resuming = checkpoint_dir is not None and checkpoint.exists(checkpoint_dir, CHECKPOINT)
    with torch.no_grad():
        history = resume(updater, checkpoint_dir) if resuming else History()
        keep = KeepBest(updater.model, checkpoint_dir, patience, resuming, score)
        callbacks = [keep, *callbacks]
        _hooks(callbacks, "begin", updater, history)
        _epochs(updater, history, epochs, callbacks, checkpoint_dir, progress)
    keep.restore()
    with torch.no_grad():
        _hooks(callbacks, "end", updater, history)
    if keep.epoch is not None:
        history.best_epoch, history.best_valid_error = keep.epoch, keep.error
    return history


def _hooks(callbacks: list[Callable], name: str, updater: Updater, history: History) -> None:
    """Call ``callback.<name>(updater, history)`` on every callback that has it."""
    for callback in callbacks:
        hook = getattr(callback, name, None)
        if callable(hook):
            hook(updater, history)


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """What the progress bar shows of an epoch's record: training and validation numbers only.

    Example:
        >>> shown({"epoch": 2, "train_loss": 0.3, "valid_error": 4.0, "test_error": 3.9})
        {'train_loss': 0.3, 'valid_error': 4.0}
    """
    return {k: v for k, v in row.items() if not k.startswith("test") and k not in ("epoch", "seconds")}


def _epochs(updater: Updater, history: History, epochs: int, callbacks: list[Callable],
            folder: Any, progress: bool) -> None:
    """Run the remaining epochs with a progress bar, checkpoints and divergence checks."""
    if history.diverged or history.stopped_early:
        log.log(logging.WARNING if history.diverged else logging.INFO,
                "the checkpointed run had %s; not training further",
                "diverged" if history.diverged else "stopped early")
        return
    total = (epochs - updater.epoch) * updater.n_batches()
    with progress_bar(updater.label(), total=max(total, 0), enabled=progress) as bar:
        while updater.epoch < epochs:
            if not _one_epoch(updater, history, bar.advance, folder):
                break
            row = history.rows[-1]
            bar.describe(f"{updater.label()} {row['epoch']}/{epochs}")
            bar.show(shown(row))
            if _stop(updater, history, callbacks, folder):
                break


def _stop(updater: Updater, history: History, callbacks: list[Callable], folder: Any) -> bool:
    """Show every callback the last record; if one returns True, mark (and save) the stop."""
    stops = [cb(history.rows[-1]) is True for cb in callbacks]  # no short cut: each sees it
    if any(stops):
        history.stopped_early = True
        if folder is not None:
            save(updater, history, folder)  # a resumed run stays stopped
    return any(stops)


def _one_epoch(updater: Updater, history: History, on_batch: Callable[[], None], folder: Any) -> bool:
    """Train one epoch; keep the last good state and return False if it diverged."""
    before, epoch = updater.tensors(), updater.epoch
    start = time.perf_counter()
    updater.run_epoch(on_batch)
    seconds = time.perf_counter() - start
    if updater.finite():
        updater.epoch = epoch + 1
        history.rows.append({"epoch": updater.epoch, **updater.monitor(), "seconds": round(seconds, 4)})
    else:
        updater.load_tensors(before)
        updater.epoch = epoch
        history.diverged = True
        log.warning("non-finite parameters in epoch %d (lower lr?); kept the state before it", epoch + 1)
    if folder is not None:
        save(updater, history, folder)
    return not history.diverged


def save(updater: Updater, history: History, folder: str | os.PathLike) -> None:
    """Write the training state as checkpoint ``last`` (atomic; the JSON last)."""
    meta = {"epoch": updater.epoch, **updater.meta(), "history": history.rows,
            "diverged": history.diverged, "stopped_early": history.stopped_early}
    checkpoint.save(folder, CHECKPOINT, updater.tensors(), meta)


def resume(updater: Updater, folder: str | os.PathLike) -> History:
    """Load checkpoint ``last`` into ``updater``; return the history so far.

    Raises:
        ValueError: if the checkpoint's :meth:`meta` differs from the updater's.
    """
    tensors, meta = checkpoint.load(folder, CHECKPOINT)
    check_same(folder, {k: meta.get(k) for k in updater.meta()}, updater.meta())
    updater.load_tensors(tensors)
    updater.epoch = int(meta["epoch"])
    log.info("resumed from %s at epoch %d", folder, updater.epoch)
    return History(rows=list(meta["history"]), diverged=bool(meta["diverged"]),
                   stopped_early=bool(meta.get("stopped_early", False)))


def check_same(folder: Any, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse a resume whose settings or model differ, naming every differing value."""
    diff: dict[str, tuple[Any, Any]] = {}
    for key, value in now.items():
        old = saved.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            diff.update({k: (old.get(k), v) for k, v in value.items() if old.get(k) != v})
        elif old != value:
            diff[key] = (old, value)
    if diff:
        what = ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in diff.items())
        raise ValueError(f"{folder}: checkpoint was trained with {what}; resume with the same "
                         "settings or use a fresh checkpoint_dir")
