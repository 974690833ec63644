"""Progress bars for long work (rich), silent when disabled or when stderr is not a terminal."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None):
        self._progress, self._task = progress, task

    def advance(self, record: Mapping[str, float] | None = None, steps: int = 1) -> None:
        """Move on ``steps`` and show the record's numbers (e.g. the epoch's losses)."""
        if self._progress is None:
            return
        shown = " ".join(f"{k}={v:.4g}" for k, v in (record or {}).items()
                         if isinstance(v, float) and math.isfinite(v) and k != "seconds")
        self._progress.update(self._task, advance=steps, info=shown)

    def describe(self, description: str) -> None:
        """Say what runs now."""
        if self._progress is not None:
            self._progress.update(self._task, description=description)


@contextmanager
def progress_bar(description: str, total: int, completed: int = 0,
                 enabled: bool = True) -> Iterator[_Bar]:
    """A progress bar on stderr showing count, time left and the latest numbers.

    Example:
        >>> with progress_bar("epochs", total=2, enabled=False) as bar:
        ...     bar.advance({"loss": 0.5})
    """
    if not enabled:
        yield _Bar(None, None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total, completed=completed, info="")
        yield _Bar(progress, task)
