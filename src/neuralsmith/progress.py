"""Progress bars for long work (rich): always legible, one final line when not in a terminal.

In a terminal the first line holds the name (cut to a fixed width), the bar, the count, the
rate and the time left, in at most 80 columns; the latest numbers go on a second line, cut
to the terminal's width, so they never push the bar off. When stderr is not a terminal
(a log file, a pipe) nothing is drawn while the work runs and one summary line is written
when it ends.

A bar opened while another is drawn does not draw itself: its progress shows as a fraction
of the outer bar's current step (a study's bar moves with every epoch of the trial it runs).

Example:
    >>> import io
    >>> from rich.console import Console
    >>> err = Console(file=io.StringIO(), force_terminal=False)
    >>> with progress_bar("epochs", total=2, console=err) as bar:
    ...     bar.advance(); bar.advance(); bar.show({"loss": 0.5})
    >>> print(err.file.getvalue().strip())
    epochs: 2/2 in 0.0s, loss 0.5
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from rich.console import Console, Group
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task,
                           TextColumn, TimeRemainingColumn)
from rich.table import Column
from rich.text import Text

NAME_WIDTH = 22  # columns of the bar's name; the whole first line fits in 80
BAR_WIDTH = 24

_ACTIVE: list["_Bar"] = []  # the bars open now, outermost first


def compact(record: Mapping[str, Any] | None) -> str:
    """The finite numbers of ``record`` as short ``name value`` pairs (no epoch or seconds).

    Example:
        >>> compact({"epoch": 3, "train_loss": 0.123456, "valid_error": 2.5, "seconds": 1.0})
        'train_loss 0.1235  valid_error 2.5'
    """
    parts = [f"{k} {v:.4g}" for k, v in (record or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
             and k not in ("epoch", "seconds")]
    return "  ".join(parts)


class _Rate(ProgressColumn):
    """Steps per second (or seconds per step when slower than one a second)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("  -/s", style="progress.data.speed")
        text = f"{speed:.3g}/s" if speed >= 1 else f"{1 / speed:.3g}s/it"
        return Text(text, style="progress.data.speed")


class _TwoLines(Progress):
    """A progress display whose numbers go on a line of their own under the bar."""

    def get_renderables(self):
        lines = [self.make_tasks_table(self.tasks)]
        lines += [Text(t.fields.get("info", ""), no_wrap=True, overflow="ellipsis")
                  for t in self.tasks if t.fields.get("info")]
        yield Group(*lines)


class _Bar:
    """One bar: drawn, summed up in a final line, or reporting to the bar it runs inside."""

    def __init__(self, description: str, total: float, completed: float, console: Console | None,
                 parent: "_Bar | None"):
        self.description, self.total, self.done, self.info = description, total, completed, ""
        self.console, self.parent, self.start = console, parent, time.perf_counter()
        self._progress: Progress | None = None
        self._task: Any = None
        self._partial = 0.0

    def advance(self, record: Mapping[str, Any] | None = None, steps: float = 1) -> None:
        """Move on ``steps``; show the record's numbers (if given) on the second line."""
        self.done += steps
        self._partial = 0.0
        if record:
            self.info = compact(record)
        self._refresh()

    def show(self, record: Mapping[str, Any] | str) -> None:
        """Show a record's numbers (or a text) on the second line without moving on."""
        self.info = record if isinstance(record, str) else compact(record)
        self._refresh()

    def describe(self, description: str) -> None:
        """Say what runs now."""
        self.description = description
        self._refresh()

    def pulse(self, fraction: float) -> None:
        """Show ``fraction`` (0 to 1) of the current step as done (a nested bar's progress)."""
        self._partial = min(max(fraction, 0.0), 0.999)
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done + self._partial,
                                  description=self.description, info=self.info)
        elif self.parent is not None and self.total:
            self.parent.pulse(self.done / self.total)

    def summary(self) -> str:
        """The final line: name, count, time taken and the latest numbers."""
        count = f"{self.done:g}/{self.total:g}"
        line = f"{self.description}: {count} in {time.perf_counter() - self.start:.1f}s"
        return f"{line}, {self.info.replace('  ', ', ')}" if self.info else line


def _columns() -> tuple:
    name = TextColumn("{task.description}", table_column=Column(
        width=NAME_WIDTH, no_wrap=True, overflow="ellipsis"))
    return (name, BarColumn(bar_width=BAR_WIDTH), MofNCompleteColumn(), _Rate(),
            TimeRemainingColumn())


@contextmanager
def progress_bar(description: str, total: int, completed: int = 0, enabled: bool = True,
                 console: Console | None = None) -> Iterator[_Bar]:
    """A progress bar on stderr (or ``console``): count, rate, time left, the latest numbers.

    Disabled, or opened inside another bar, it draws nothing (inside another bar its progress
    moves that bar within its current step). When the console is not a terminal it writes one
    summary line at the end instead of drawing.
    """
    parent = _ACTIVE[-1] if _ACTIVE else None
    bar = _Bar(description, total, completed, None, parent)
    console = console or Console(stderr=True)
    drawn = enabled and parent is None and console.is_terminal
    _ACTIVE.append(bar)
    try:
        if drawn:
            with _TwoLines(*_columns(), console=console, transient=True) as progress:
                bar._progress = progress
                bar._task = progress.add_task(description, total=total, completed=completed, info="")
                yield bar
            console.print(bar.summary(), highlight=False, soft_wrap=True)
        else:
            yield bar
            if enabled and parent is None:
                console.print(bar.summary(), highlight=False, soft_wrap=True)
    finally:
        _ACTIVE.remove(bar)
