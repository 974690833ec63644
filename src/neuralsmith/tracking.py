"""Experiment tracking: a JSON-lines stream a dashboard can follow, and TensorBoard event files.

Both are callbacks of :func:`neuralsmith.loop.fit` (and of every training function that
takes ``callbacks``): each sees every epoch's record; before the first epoch and after the
last they are shown the updater, so :class:`TensorBoard` can read the model's parameters
(histograms), their gradients where the updater leaves them (norms per layer), and an RBM's
filters and samples (images). Nothing here draws from the training generator: a tracked run
trains exactly as an untracked one.

* :class:`JsonLines`: ``RUN/metrics.jsonl``, one strict-JSON object per epoch (NaN as null),
  flushed as it is written, so ``tail -f`` or a dashboard can follow the run.
* :class:`TensorBoard`: scalars (every number of the record: losses, errors, reconstruction,
  pseudo-likelihood, learning rate), histograms and images through
  :mod:`torch.utils.tensorboard`; needs the ``tensorboard`` extra
  (``pip install 'neuralsmith[tensorboard]'``).

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> log = JsonLines(path)
    >>> log({"epoch": 1, "loss": 0.5}); log({"epoch": 2, "loss": float("nan")})
    >>> [json.loads(line) for line in path.read_text().splitlines()]
    [{'epoch': 1, 'loss': 0.5}, {'epoch': 2, 'loss': None}]
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from neuralsmith.runfolder import atomic_write_text, dumps_json

INSTALL = "pip install 'neuralsmith[tensorboard]'"
JSONL = "metrics.jsonl"


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a record worth a curve: every finite int or float but ``epoch``.

    A list (one value per ensemble member) gives its mean.

    Example:
        >>> scalars({"epoch": 2, "lr": 0.1, "test_error": [2.0, 4.0], "note": "x", "gap": None})
        {'lr': 0.1, 'test_error': 3.0}
    """
    out = {}
    for key, value in row.items():
        if isinstance(value, (list, tuple)) and value and all(_number(v) for v in value):
            value = sum(value) / len(value)
        if key != "epoch" and _number(value) and math.isfinite(value):
            out[key] = float(value)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Tracker:
    """The callback shape both trackers share; a stage (e.g. a DBN's layer) tags their records.

    ``stages``: the modules trained one after another (a stack's layers); an updater whose
    model is the i-th of them tags its records ``layer = i + 1``.
    """

    def __init__(self, stages: Sequence[nn.Module] = ()):
        self.stages, self.stage = list(stages), None

    def begin(self, updater: Any, history: Any) -> None:
        """Note the stage of ``updater`` (a :func:`~neuralsmith.loop.fit` hook)."""
        model = getattr(updater, "model", None)
        ids = [id(m) for m in self.stages]
        self.stage = ids.index(id(model)) + 1 if id(model) in ids else None

    def tagged(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``row`` with its layer in front, where the stage is a layer number."""
        return {"layer": self.stage, **row} if isinstance(self.stage, int) else dict(row)

    @property
    def prefix(self) -> str:
        """The tag prefix of the stage: ``layer2/`` for a layer, ``NAME/`` for a named one."""
        if self.stage is None:
            return ""
        return f"layer{self.stage}/" if isinstance(self.stage, int) else f"{self.stage}/"

    def replay(self, groups: Sequence[tuple[int | str | None, Sequence[Mapping[str, Any]]]]) -> None:
        """Record finished histories (training that took no callbacks), one per stage."""
        for stage, rows in groups:
            self.stage = stage
            for row in rows:
                self(row)
        self.stage = None

    def __call__(self, row: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release what the tracker holds."""


class JsonLines(Tracker):
    """Append each record to a JSON-lines file as one strict-JSON object, flushed at once.

    A resumed run keeps the lines written so far and adds the epochs they lack (an epoch whose
    line a kill cut off is written again from the checkpointed history).
    """

    def __init__(self, path: str | os.PathLike, stages: Sequence[nn.Module] = ()):
        super().__init__(stages)
        self.path = Path(path)
        self.seen = {self._key(row) for row in read_jsonl(self.path)} if self.path.is_file() else set()
        if self.path.is_file():
            self._drop_partial_line()

    def replay(self, groups: Sequence[tuple[int | str | None, Sequence[Mapping[str, Any]]]]) -> None:
        """Write the whole file afresh from finished histories (a resumed run's too)."""
        lines = []
        for stage, rows in groups:
            self.stage = stage
            lines += [dumps_json(self.tagged(row)) + "\n" for row in rows]
        self.stage = None
        atomic_write_text(self.path, "".join(lines))

    def begin(self, updater: Any, history: Any) -> None:
        """Write the epochs of a resumed ``history`` that the file lacks."""
        super().begin(updater, history)
        for row in getattr(history, "rows", []):
            if self._key(self.tagged(row)) not in self.seen:
                self(row)

    def __call__(self, row: Mapping[str, Any]) -> None:
        row = self.tagged(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(dumps_json(row) + "\n")
        self.seen.add(self._key(row))

    @staticmethod
    def _key(row: Mapping[str, Any]) -> tuple:
        return row.get("layer"), row.get("epoch")

    def _drop_partial_line(self) -> None:
        """Cut a last line a killed process left half written."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete records of a JSON-lines file (a half-written last line is left out)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def summary_writer() -> type:
    """:class:`torch.utils.tensorboard.SummaryWriter`, or a ValueError naming the install command."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None
    return SummaryWriter


class TensorBoard(Tracker):
    """Write a run's scalars, histograms and images as TensorBoard event files in ``log_dir``.

    Per epoch: every number of the record as a scalar (``layer2/reconstruction_error`` for a
    stack's second layer), a histogram of every parameter (``weights/<name>``) and, where the
    updater leaves gradients (back-propagation), their histograms and norms per parameter
    (``grad_norm/<name>``). For an RBM whose visible layer is an image of ``image_shape``:
    its first filters every epoch and, at the end, 16 samples (200 Gibbs steps, from a
    generator of its own, seed 0) as images.

    Args:
        log_dir: the folder for the event files (``tensorboard --logdir DIR`` shows them).
        image_shape: (height, width) of an input row, for the images; None: no images.
        histograms: write parameter and gradient histograms every epoch.

    Raises:
        ValueError: the tensorboard package is missing (the message names the install command).
    """

    def __init__(self, log_dir: str | os.PathLike, *, image_shape: Sequence[int] | None = None,
                 histograms: bool = True, stages: Sequence[nn.Module] = ()):
        super().__init__(stages)
        self.writer_class = summary_writer()
        self.log_dir, self.image_shape, self.histograms = Path(log_dir), image_shape, histograms
        self.model: nn.Module | None = None
        self._writer = None

    @property
    def writer(self) -> Any:
        """The event-file writer, made at the first record (no empty folders for refused runs)."""
        if self._writer is None:
            self._writer = self.writer_class(log_dir=str(self.log_dir))
        return self._writer

    def begin(self, updater: Any, history: Any) -> None:
        """Note the model whose parameters and images go with each epoch."""
        super().begin(updater, history)
        self.model = getattr(updater, "model", None)

    def __call__(self, row: Mapping[str, Any]) -> None:
        step, prefix = int(row.get("epoch", 0)), self.prefix
        for key, value in scalars(row).items():
            self.writer.add_scalar(prefix + key, value, step)
        if self.model is not None and self.histograms:
            self._parameters(self.model, prefix, step)
        if self.model is not None:
            self._filters(self.model, prefix, step)
        self.writer.flush()

    def end(self, updater: Any, history: Any) -> None:
        """Samples of a trained RBM (a :func:`~neuralsmith.loop.fit` hook)."""
        model = getattr(updater, "model", None)
        if _image_rbm(model, self.image_shape):
            prefix = self.prefix
            g = torch.Generator(model.weight.device).manual_seed(0)
            v = model.sample(16, steps=199, generator=g)
            means = model.visible_probs(model.sample_hidden(v, g))
            self.writer.add_images(prefix + "samples", _as_images(means, self.image_shape),
                                   len(history))
            self.writer.flush()

    def _parameters(self, model: nn.Module, prefix: str, step: int) -> None:
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"{prefix}weights/{name}", p.detach().float().cpu(), step)
            if p.grad is not None:
                grad = p.grad.detach().float().cpu()
                self.writer.add_histogram(f"{prefix}gradients/{name}", grad, step)
                self.writer.add_scalar(f"{prefix}grad_norm/{name}", float(grad.norm()), step)

    def _filters(self, model: nn.Module, prefix: str, step: int) -> None:
        if _image_rbm(model, self.image_shape):
            filters = model.weight.detach()[:64]
            self.writer.add_images(prefix + "filters", _as_images(filters, self.image_shape,
                                                                  per_image=True), step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _image_rbm(model: Any, image_shape: Sequence[int] | None) -> bool:
    """Whether ``model`` is an RBM whose visible rows are images of ``image_shape``."""
    from neuralsmith.rbm.model import RBM

    return (image_shape is not None and isinstance(model, RBM)
            and model.weight.shape[1] == math.prod(image_shape))


def _as_images(rows: torch.Tensor, image_shape: Sequence[int], per_image: bool = False) -> torch.Tensor:
    """Rows as an (N, 1, H, W) batch in [0, 1]; ``per_image`` rescales each to its own range."""
    x = rows.detach().float().cpu().reshape(-1, 1, *image_shape)
    if per_image:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        high = x.amax(dim=(1, 2, 3), keepdim=True)
        return (x - low) / (high - low).clamp(min=1e-12)
    return x.clamp(0, 1)


class Tracking:
    """A run folder's trackers as one callback: ``metrics.jsonl``, and TensorBoard if asked for.

    Experiments build it with :func:`for_run`, pass it among the training callbacks, replay
    histories of training that took no callbacks, and close it at the end.
    """

    def __init__(self, trackers: Sequence[Tracker]):
        self.trackers = list(trackers)

    def begin(self, updater: Any, history: Any) -> None:
        for t in self.trackers:
            t.begin(updater, history)

    def __call__(self, row: Mapping[str, Any]) -> None:
        for t in self.trackers:
            t(row)

    def end(self, updater: Any, history: Any) -> None:
        for t in self.trackers:
            if hasattr(t, "end"):
                t.end(updater, history)

    def replay(self, groups: Sequence[tuple[int | str | None, Sequence[Mapping[str, Any]]]]) -> None:
        """Record finished histories, ``(stage, rows)`` each, in every tracker."""
        for t in self.trackers:
            t.replay(groups)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


def for_run(run: Any, tensorboard: TensorBoard | str | os.PathLike | None = None, *,
            image_shape: Sequence[int] | None = None, stages: Sequence[nn.Module] = ()) -> Tracking:
    """The trackers of run folder ``run``: ``RUN/metrics.jsonl``, and ``tensorboard`` if given.

    ``tensorboard`` is a :class:`TensorBoard` or the folder for one; ``image_shape`` (for the
    RBM images) and ``stages`` (a stack's layers) are given to both.
    """
    trackers: list[Tracker] = [JsonLines(Path(run.path) / JSONL, stages)]
    if tensorboard is not None:
        tb = tensorboard if isinstance(tensorboard, TensorBoard) else TensorBoard(tensorboard)
        tb.stages = tb.stages or list(stages)
        tb.image_shape = tb.image_shape or (tuple(image_shape) if image_shape else None)
        trackers.append(tb)
    return Tracking(trackers)


def need_folder(out: Any, tensorboard: Any) -> None:
    """Refuse ``tensorboard`` for a run that writes no folder (``out`` None)."""
    if out is None and tensorboard is not None:
        raise ValueError("--tensorboard tracks a run folder's epochs: give the folder with --out")


def track_study(folder: str | os.PathLike, tensorboard: TensorBoard | str | os.PathLike | None) -> None:
    """A finished study's fine-tuning curves, one stage per trial (``depth2/xavier/``), as
    ``RUN/metrics.jsonl`` and, with ``tensorboard``, TensorBoard scalars (means over seeds)."""
    from neuralsmith.runfolder import RunFolder
    from neuralsmith.study.store import TrialStore

    groups = []
    for record in TrialStore(folder).records():
        curves = record["curves"]
        rows = [{"depth": record["depth"], "start": record["start"], "epoch": e + 1,
                 **{k: v[e] for k, v in curves.items()}} for e in range(len(curves["train_loss"]))]
        groups.append((f"depth{record['depth']}/{record['start']}", rows))
    track = for_run(RunFolder(folder), tensorboard)
    track.replay(groups)
    track.close()
