"""Options every command shares, and how commands print.

Conventions: ``--data SOURCE``, ``--seed N``, ``--out DIR``, ``--device auto|cpu|cuda``,
``--json`` (machine-readable output on stdout), ``--quiet``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Mapping, Optional

import typer
from rich.console import Console
from rich.table import Table

from neuralsmith.runfolder import dumps_json

DataOpt = Annotated[str, typer.Option("--data", help="Registered name, IDX folder or .npz file.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for every random draw.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run folder to write.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bars or tables.")]
TensorboardOpt = Annotated[Optional[Path], typer.Option("--tensorboard", help="Also write TensorBoard event files (scalars, histograms, images) to this folder; needs neuralsmith[tensorboard].")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out (same settings).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Delete the run in --out and start afresh.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Learning rate.")]
MomentumOpt = Annotated[float, typer.Option("--momentum", help="Momentum of the updates.")]
ScheduleOpt = Annotated[str, typer.Option("--schedule", help="Learning rate over the epochs: constant, or linear / cosine decay to 0.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="fp32, or bf16: products in bfloat16 with fp32 accumulation and fp32 weights (fp32 with a warning where the hardware has no fast bf16).")]
LabeledOpt = Annotated[float, typer.Option("--labeled", help="Fraction of training labels kept (class-stratified).")]
UnsupervisedOpt = Annotated[str, typer.Option("--unsupervised", help="Unsupervised term on unlabeled rows: likelihood (-log p(x), CD) or entropy of p(y|x).")]
UnlabeledRatioOpt = Annotated[int, typer.Option("--unlabeled-ratio", help="Unlabeled rows per labeled row in each paired update (semisupervised).")]
ArchOpt = Annotated[str, typer.Option("--arch", help="Hidden layer sizes, e.g. 500-500-2000 or 256x10 (inputs and outputs come from the data).")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="L2 decay of the weights (lambda).")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="Stop after this many epochs without a better validation error (0: never).")]
KOpt = Annotated[int, typer.Option("--k", help="Gibbs steps per update (CD-k / PCD-k).")]
AlphaOpt = Annotated[float, typer.Option("--alpha", help="Weight of the generative term (hybrid objective).")]
BetaOpt = Annotated[float, typer.Option("--beta", help="Weight of the unsupervised term (semisupervised objective).")]
BinarizeOpt = Annotated[str, typer.Option("--binarize", help="none, threshold or stochastic.")]
PickEpochOpt = Annotated[float, typer.Option("--validation", help="Fraction of train held out to pick the epoch.")]

console = Console()
err_console = Console(stderr=True)


def tensorboard_tracker(folder: Path | None) -> Any:
    """The :class:`neuralsmith.tracking.TensorBoard` that ``--tensorboard`` asks for (checked now), or None."""
    from neuralsmith.tracking import TensorBoard

    return None if folder is None else TensorBoard(folder)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout."""
    sys.stdout.write(dumps_json(obj, indent=2) + "\n")


def parse_list(text: str, kind: type = str, what: str = "the option") -> tuple:
    """Comma-separated values of one ``kind``, strictly: no empty parts, ``8.9`` is no int.

    Example:
        >>> parse_list("0.05, 0.01", float, "--thresholds")
        (0.05, 0.01)
    """
    parts = [t.strip() for t in text.split(",")]
    try:
        if not all(parts):
            raise ValueError
        return tuple(kind(t) for t in parts)
    except ValueError:
        raise ValueError(f"{what} takes comma-separated {kind.__name__} values with no empty parts, "
                         f"as in {','.join(['2', '4'] if kind is int else ['0.1', '0.2'] if kind is float else ['a', 'b'])}; "
                         f"got {text!r}") from None


def joined(values: tuple, sep: str = ",") -> str:
    """A tuple default as the text its option takes (``(500, 500)`` -> ``500,500``)."""
    return sep.join(map(str, values))


def run_mode(resume: bool, overwrite: bool) -> str:
    """The run-folder mode (:meth:`neuralsmith.runfolder.RunFolder.open`) that the flags ask for."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the run, or start afresh")
    return "resume" if resume else "overwrite" if overwrite else "new"


def folder_mode(out: Path | None, resume: bool, overwrite: bool) -> str:
    """:func:`run_mode` for a command whose run folder is optional (written only with --out)."""
    mode = run_mode(resume, overwrite)
    if out is None and mode != "new":
        raise ValueError("--resume and --overwrite act on a run folder: give it with --out")
    return mode


def emit_mapping(title: str, mapping: Mapping[str, Any], *, as_json: bool, quiet: bool = False) -> None:
    """Print a flat mapping as JSON or as a two-column table."""
    if as_json:
        emit_json(dict(mapping))
    elif not quiet:
        table = Table(title=title, show_header=False)
        for key, value in mapping.items():
            table.add_row(str(key), str(value))
        console.print(table)


def emit_rows(title: str, rows: list[Mapping[str, Any]], *, as_json: bool, quiet: bool = False) -> None:
    """Print a list of records as JSON or as a table with one column per key."""
    if as_json:
        emit_json(list(rows))
        return
    if quiet or not rows:
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    console.print(table)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
