"""``neuralsmith data``: list, describe and fetch data sets."""

from __future__ import annotations

import typer

from neuralsmith import data as data_api
from neuralsmith.cli.common import JsonOpt, QuietOpt, emit_mapping, emit_rows

app = typer.Typer(help="List, describe and fetch data sets.", no_args_is_help=True)


@app.command("list")
def list_cmd(json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """List the registered data sources."""
    emit_rows("data sources", [{"name": n} for n in data_api.list_sources()], as_json=json, quiet=quiet)


@app.command("info")
def info_cmd(source: str, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Describe SOURCE: sizes, features, classes, image shape, where it came from."""
    emit_mapping(source, data_api.info(source), as_json=json, quiet=quiet)
