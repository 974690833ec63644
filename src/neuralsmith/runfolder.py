"""The one run-folder policy: create, resume or overwrite; a lock; atomic files the umask allows.

Every command that trains writes::

    RUN/config.toml     the resolved settings (written by tomli-w: any path or value round-trips)
    RUN/results.json    metrics, seed, versions, timings (strict JSON: NaN and inf become null)
    RUN/metrics.csv     one row per epoch
    RUN/checkpoints/    safetensors + JSON (see :mod:`neuralsmith.checkpoint`)
    RUN/figures/        PNG figures

:meth:`RunFolder.open` is the policy every command follows:

* ``mode="new"`` (the default): a missing or empty folder is created; a non-empty one is
  refused, naming ``--resume`` and ``--overwrite``;
* ``mode="resume"``: the folder's ``config.toml`` must hold the same settings (all but
  :data:`RUNTIME_KEYS`, which cannot change a result); the differing keys are named and
  nothing is written;
* ``mode="overwrite"``: an earlier run's files are deleted first (only in a run folder);
* a lock file (``RUN/.lock``, holding the PID) stops a second process from writing the same
  folder; the lock of a process that died is taken over.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with RunFolder.open(out, {"kind": "demo", "seed": 0}) as run:
    ...     run.log_metrics({"epoch": 1, "loss": 0.5})
    >>> run.read_metrics()[0]["loss"], run.read_config()["seed"]
    ('0.5', 0)
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import math
import os
import platform
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

MODES = ("new", "resume", "overwrite")
#: settings that cannot change a result: a resumed run may differ from the first in these
RUNTIME_KEYS = frozenset({"device", "quiet", "json", "progress", "threads",
                          "tensorboard"})
LOCK = ".lock"


def file_mode() -> int:
    """The permissions a new file gets under the process's umask (0644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename, never half a file.

    The file gets the permissions the umask gives an ordinary new file (not mkstemp's 0600).

    Raises:
        OSError: ``errno.ENOSPC`` (or ``EDQUOT``) for a full disk, naming ``path`` and the
            bytes it needed; the temporary file is removed.
    """
    path = Path(path)
    try:
        _write_replace(path, payload)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OSError(exc.errno, f"no space left to write {len(payload)} bytes; free some space "
                      "or write elsewhere (--out)", str(path)) from None
    return path


def _write_replace(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file beside ``path``, sync it, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj`` (non-finite floats as null; paths and the like as strings)."""
    return json.dumps(finite(obj), allow_nan=False, default=str, **kwargs)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, strict JSON (non-finite floats become null)."""
    return atomic_write_text(path, dumps_json(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming the file in any error (NaN and infinities are not JSON either)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return json.loads(read_text(path), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not valid JSON ({' '.join(str(exc).split())})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; an unreadable file raised as PermissionError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except PermissionError:
        raise PermissionError(f"{path}: cannot read it (permission denied)") from None


def toml_ready(value: Any) -> Any:
    """``value`` as TOML can hold it: tuples as lists, paths as strings, None keys left out."""
    if isinstance(value, Mapping):
        return {str(k): toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [toml_ready(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_toml(config: Mapping[str, Any]) -> str:
    """TOML text of a (nested) mapping; a key whose value is None is left out."""
    return tomli_w.dumps(toml_ready(config))


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file, naming the file in any error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        return tomllib.loads(read_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import numpy
    import torch

    from neuralsmith import __version__

    return {"neuralsmith": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__}


def differing_keys(saved: Mapping[str, Any], now: Mapping[str, Any],
                   ignore: Iterable[str] = RUNTIME_KEYS, prefix: str = "",
                   defaults: Mapping[str, Any] | None = None) -> list[str]:
    """Dotted keys whose values differ between two (nested) configs, ``ignore``'d keys aside.

    With ``defaults`` (the config's defaults, nested alike), a key the saved config lacks
    counts as equal when its value now is its default: a setting added to the code since the
    run was made, which the run had in effect.

    Example:
        >>> differing_keys({"lr": 0.1, "rbm": {"k": 1}, "device": "cpu"},
        ...                {"lr": 0.5, "rbm": {"k": 1}, "device": "cuda"})
        ['lr']
        >>> differing_keys({"lr": 0.1}, {"lr": 0.1, "grid": []}, defaults={"grid": []})
        []
    """
    ignore, out, defaults = frozenset(ignore), [], defaults or {}
    for key in sorted(set(saved) | set(now)):
        if key in ignore:
            continue
        a, b, d = saved.get(key), now.get(key), defaults.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differing_keys(a, b, ignore, f"{prefix}{key}.", d if isinstance(d, Mapping) else None)
        elif key not in saved and key in defaults and b == d:
            continue  # new since the run was made, at its default
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


class RunFolder:
    """A run's output folder; open one with :meth:`open` (the policy), or wrap a finished one.

    ``RunFolder(path)`` alone only reads and writes files; it creates nothing and takes no lock.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.figures = self.path / "figures"
        self._locked = False

    # --- the policy --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, config: Mapping[str, Any], *, mode: str = "new",
             ignore: Iterable[str] = RUNTIME_KEYS, defaults: Mapping[str, Any] | None = None) -> "RunFolder":
        """Claim ``path`` for a run with ``config``, by the policy in the module docstring.

        Every check reads only, so a refused run leaves the folder as it was, byte for byte.

        Raises:
            ValueError: a non-empty folder without resume or overwrite, a resume whose
                settings differ (the keys are named), a lock another process holds.
            NotADirectoryError: ``path`` is an existing file.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        run = cls(path)
        run.check(config, mode, ignore, defaults)
        run.path.mkdir(parents=True, exist_ok=True)
        run.lock()
        try:
            run.check(config, mode, ignore, defaults)  # again under the lock: another run may have begun
            if mode == "overwrite":
                run.clear()
            run.checkpoints.mkdir(exist_ok=True)
            run.figures.mkdir(exist_ok=True)
            run.write_config(config)
        except BaseException:
            run.unlock()
            raise
        return run

    def check(self, config: Mapping[str, Any], mode: str, ignore: Iterable[str] = RUNTIME_KEYS,
              defaults: Mapping[str, Any] | None = None) -> None:
        """Refuse ``config`` in this folder under ``mode`` (see :meth:`open`); writes nothing.

        ``defaults``: the config's defaults, so that a resumed run made before a setting existed
        is not refused for lacking it (:func:`differing_keys`)."""
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} is a file, not a run folder; choose another --out")
        if not self.entries():
            return
        has_config = (self.path / "config.toml").is_file()
        if mode == "new":
            raise ValueError(f"{self.path} already holds files of an earlier run; pass --resume to "
                             "continue it, --overwrite to start afresh, or choose another --out")
        if not has_config:
            raise ValueError(f"{self.path} is not empty and holds no config.toml, so it is not a run "
                             "folder; choose another --out (nothing there was changed)")
        if mode == "resume":
            diff = differing_keys(self.read_config(), toml_ready(config), ignore,
                                  defaults=toml_ready(defaults) if defaults else None)
            if diff:
                raise ValueError(f"{self.path} holds a run with other settings ({', '.join(diff)}); "
                                 "resume with the same settings, or pass --overwrite to start afresh")

    def entries(self) -> list[Path]:
        """What the folder holds, its lock aside (empty if it does not exist)."""
        if not self.path.is_dir():
            return []
        return [p for p in self.path.iterdir() if p.name != LOCK]

    def clear(self) -> None:
        """Delete an earlier run's files (a fresh start); the lock stays."""
        for entry in self.entries():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    # --- the lock ----------------------------------------------------------------------------

    def lock(self) -> None:
        """Take ``RUN/.lock``; take over a dead process's lock; refuse a live one's."""
        path, owner = self.path / LOCK, f"{os.getpid()} {socket.gethostname()}\n"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
            except FileExistsError:
                pid, host = _lock_owner(path)
                if pid is not None and _alive(pid, host):
                    raise ValueError(f"{self.path} is being written by another process (PID {pid}); "
                                     "wait for it to finish, or choose another --out") from None
                log.warning("taking over the lock of a process that is gone (PID %s) in %s", pid, self.path)
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(owner)
            self._locked = True
            return
        raise ValueError(f"{self.path}: could not take the lock {path}; another process keeps taking it")

    def unlock(self) -> None:
        """Release the lock (a no-op if this process does not hold it)."""
        if self._locked:
            (self.path / LOCK).unlink(missing_ok=True)
            self._locked = False

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    # --- files -------------------------------------------------------------------------------

    def write_config(self, config: Mapping[str, Any]) -> Path:
        """Write the resolved settings to ``config.toml``."""
        return atomic_write_text(self.path / "config.toml", dumps_toml(config))

    def read_config(self) -> dict[str, Any]:
        """The settings in ``config.toml``."""
        return load_toml(self.path / "config.toml")

    def write_results(self, results: Mapping[str, Any], *, seed: int | None = None) -> Path:
        """Write ``results.json`` with the seed and library versions added."""
        payload = {**results, "seed": seed, "versions": versions()}
        return write_json(self.path / "results.json", payload)

    def log_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one row (usually an epoch) to ``metrics.csv``, rewriting it atomically."""
        rows = self.read_metrics() + [{k: "" if v is None else str(v) for k, v in row.items()}]
        self.write_metrics(rows)

    def write_metrics(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Atomically write all ``rows`` to ``metrics.csv`` (columns: union of the keys; None as empty)."""
        rows = [{k: "" if v is None else v for k, v in row.items()} for row in rows]
        fields = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    def read_metrics(self) -> list[dict[str, str]]:
        """The rows of ``metrics.csv`` so far (empty if none)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))


def _lock_owner(path: Path) -> tuple[int | None, str]:
    """The PID and host written in a lock file (None if it cannot be read)."""
    try:
        pid, _, host = path.read_text(encoding="utf-8").strip().partition(" ")
        return int(pid), host
    except (OSError, ValueError):
        return None, ""


def _alive(pid: int, host: str) -> bool:
    """Whether process ``pid`` runs (a lock from another host is taken as held)."""
    if host and host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
