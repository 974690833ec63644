"""``neuralsmith data``: list, describe and fetch data sets."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from neuralsmith import data as data_api
from neuralsmith.cli.common import JsonOpt, QuietOpt, emit_mapping, emit_rows, err_console

app = typer.Typer(help="List, describe and fetch data sets.", no_args_is_help=True)

SourceArg = Annotated[str, typer.Argument(help="Registered name, IDX folder or .npz file.")]
NameArg = Annotated[str, typer.Argument(help="mnist, fashion-mnist or kmnist.")]
BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", help="Download from this URL instead of the official ones.")]



@app.command("list")
def list_cmd(json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """List the registered data sources (each also takes -rot, -bg-rand, -bg-img, -rot-bg-img)."""
    emit_rows("data sources", data_api.catalog(), as_json=json, quiet=quiet)


@app.command("info")
def info_cmd(source: SourceArg, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Describe SOURCE: sizes, features, classes, image shape, where it came from."""
    emit_mapping(source, data_api.info(source), as_json=json, quiet=quiet)


@app.command("fetch")
def fetch_cmd(name: NameArg, base_url: BaseUrlOpt = None, json: JsonOpt = False,
              quiet: QuietOpt = False) -> None:
    """Download NAME's IDX files, verifying each SHA-256, into the user data folder."""
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err_console,
                  disable=quiet or json or not err_console.is_terminal) as bar:  # no frames in a log
        tasks: dict[str, int] = {}

        def on_progress(file: str, done: int, total: int) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done)

        folder = data_api.fetch(name, base_url=base_url, on_progress=on_progress)
    emit_mapping(name, {"name": name, "folder": str(folder)}, as_json=json, quiet=quiet)
