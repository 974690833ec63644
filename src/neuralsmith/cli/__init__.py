"""The ``neuralsmith`` command: a thin layer over the Python API.

User errors (bad files, bad values, missing data) print one line on stderr and exit with
code 2; unexpected internal errors show a traceback and exit with code 1.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import typer

from neuralsmith import __version__
from neuralsmith.cli import data as data_cmd
from neuralsmith.cli import finetune as finetune_cmd
from neuralsmith.cli import study as study_cmd
from neuralsmith.cli import diagnose as diagnose_cmd
from neuralsmith.cli import init as init_cmd
from neuralsmith.cli import evaluate as evaluate_cmd
from neuralsmith.cli import pretrain as pretrain_cmd
from neuralsmith.cli import sample as sample_cmd
from neuralsmith.cli import linear_depth as linear_depth_cmd, rnn as rnn_cmd
from neuralsmith.cli.classrbm import classrbm_cmd
from neuralsmith.cli.hybrid import hybrid_cmd
from neuralsmith.cli.plot import plot_cmd

app = typer.Typer(name="neuralsmith", help="Start neural networks out right.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(data_cmd.app, name="data")
app.command("study")(study_cmd.study)
app.command("finetune")(finetune_cmd.finetune_cmd)
app.add_typer(init_cmd.app, name="init")
app.command("diagnose")(diagnose_cmd.diagnose_cmd)
app.add_typer(pretrain_cmd.app, name="pretrain")
app.command("evaluate")(evaluate_cmd.evaluate_cmd)
app.command("sample")(sample_cmd.sample_cmd)
app.command("rnn")(rnn_cmd.rnn_cmd)
app.command("linear-depth")(linear_depth_cmd.linear_depth_cmd)
app.command("classrbm")(classrbm_cmd)
app.command("hybrid")(hybrid_cmd)
app.command("plot")(plot_cmd)

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError, KeyError, ConnectionError)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"neuralsmith {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version,
                                                 is_eager=True, help="Show the version.")) -> None:
    """Start neural networks out right."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit code (2 for user errors)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="neuralsmith")
    except SystemExit as exc:  # typer exits on its own: --help, --version, usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"neuralsmith: error: {message}", file=sys.stderr)
        return 2
    return 0
