"""``neuralsmith init``: the initializer schemes, with formula and paper."""

from __future__ import annotations

import typer

from neuralsmith import init as init_api
from neuralsmith.cli.common import JsonOpt, QuietOpt, emit_rows

app = typer.Typer(help="Initializer schemes.", no_args_is_help=True)


@app.command("list")
def list_cmd(json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """List the initializer schemes with their formula, options and paper."""
    rows = [{"name": s.name, "formula": s.formula, "options": ", ".join(s.options()), "paper": s.paper}
            for s in init_api.SCHEMES.values()]
    emit_rows("initializer schemes", rows, as_json=json, quiet=quiet)
