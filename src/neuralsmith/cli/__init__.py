"""The ``neuralsmith`` command: a thin layer over the Python API.

User errors (bad files, bad values, missing data, usage errors such as an unknown option, a
full disk, an unreadable file) print one line on stderr, ``neuralsmith: error: ...``, and exit
with code 2; unexpected internal errors show a traceback and exit with code 1.
"""

from __future__ import annotations

import errno
import sys
from typing import Optional, Sequence

import typer
from typer.exceptions import TyperException

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
from neuralsmith.cli.report import report_cmd

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
app.command("report")(report_cmd)

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError,
               PermissionError, KeyError, ConnectionError, UnicodeDecodeError)
#: operating-system errors that are the user's to fix (a full disk, a read-only place, ...)
USER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                         errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ENOENT})


def _version(value: bool) -> None:
    if value:
        typer.echo(f"neuralsmith {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version,
                                                 is_eager=True, help="Show the version.")) -> None:
    """Start neural networks out right."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit code (2 for user errors, each in one line)."""
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="neuralsmith",
                   standalone_mode=False)
    except SystemExit as exc:  # a command that exits on its own
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except TyperException as exc:  # click's usage errors (typer's own copy of click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as click prints it
            if exc.format_message():
                print(exc.format_message(), file=sys.stderr)
            return 2
        return error(usage_message(exc))
    except typer.Abort:
        return error("aborted")
    except USER_ERRORS as exc:
        return error(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    except OSError as exc:
        if exc.errno not in USER_ERRNOS:
            raise
        return error(os_message(exc))
    return code if isinstance(code, int) else 0


def error(message: object) -> int:
    """Print ``neuralsmith: error: MESSAGE`` as one line on stderr; return exit code 2."""
    text = " ".join(str(message).split())
    print(f"neuralsmith: error: {text}", file=sys.stderr)
    return 2


def usage_message(exc: Exception) -> str:
    """A usage error in words, with the command whose ``--help`` tells the right usage."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "neuralsmith"
    text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return f"{text} (see '{where} --help')"


def os_message(exc: OSError) -> str:
    """An operating-system error in words, naming the file (a full disk: also the fix)."""
    name = f"{exc.filename}: " if exc.filename else ""
    text = f"{name}{exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and "free" not in text:
        text += "; free some space or write elsewhere (--out)"
    return text
