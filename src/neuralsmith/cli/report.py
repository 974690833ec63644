"""``neuralsmith report RUN``: rebuild a study's report.html and figures from its run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuralsmith.cli.common import JsonOpt, QuietOpt, emit_json, emit_mapping


def report_cmd(
    run: Annotated[Path, typer.Argument(help="A study's run folder (its --out), finished or not.")],
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rebuild report.html, results.json/.csv and figures/ from the trials on disk; trains nothing.

    On a partial run (killed, or still running) the page shows the finished trials and says so.
    """
    from neuralsmith.study import rebuild

    results = rebuild(run)
    if json:
        emit_json(results)
        return
    emit_mapping(f"report {run}", {"report": str(run / "report.html"), "verdict": results["verdict"],
                                   "trials": f"{results['trials_done']} of {results['trials']}"},
                 as_json=False, quiet=quiet)
