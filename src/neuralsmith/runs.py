"""Run folders: the resolved config, results, per-epoch metrics, all written atomically.

Every command that trains writes::

    RUN/config.toml     the resolved settings
    RUN/results.json    metrics, seed, versions, timings
    RUN/metrics.csv     one row per epoch
    RUN/checkpoints/    safetensors + JSON (see :mod:`neuralsmith.checkpoint`)
    RUN/figures/        PNG figures
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (non-finite floats become null)."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing file raises FileNotFoundError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return json.loads(path.read_text(encoding="utf-8"))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not (isinstance(value, float) and not math.isfinite(value)) else "nan"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        return '""'
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def dumps_toml(config: Mapping[str, Any]) -> str:
    """Serialize a (one-level nested) mapping to TOML; tables come after plain keys."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, Mapping)]
    for name, table in config.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{name}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file, naming the file in any error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import numpy
    import torch

    from neuralsmith import __version__

    return {"neuralsmith": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__}


class RunFolder:
    """A run's output folder.

    Example:
        >>> import tempfile
        >>> run = RunFolder(tempfile.mkdtemp())
        >>> _ = run.write_config({"seed": 0, "rbm": {"n_hidden": 10}})
        >>> run.log_metrics({"epoch": 1, "loss": 0.5})
        >>> run.read_metrics()[0]["loss"]
        '0.5'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints = self.path / "checkpoints"
        self.figures = self.path / "figures"
        self.checkpoints.mkdir(exist_ok=True)
        self.figures.mkdir(exist_ok=True)

    def clear_training_state(self) -> None:
        """Forget checkpoints and metrics of an earlier run in this folder (a fresh start)."""
        for path in [*self.checkpoints.iterdir(), self.path / "metrics.csv"]:
            if path.is_file():
                path.unlink()

    def write_config(self, config: Mapping[str, Any]) -> Path:
        """Write the resolved settings to ``config.toml``."""
        return atomic_write_text(self.path / "config.toml", dumps_toml(config))

    def write_results(self, results: Mapping[str, Any], *, seed: int | None = None) -> Path:
        """Write ``results.json`` with the seed and library versions added."""
        payload = {**results, "seed": seed, "versions": versions()}
        return write_json(self.path / "results.json", payload)

    def log_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one row (usually an epoch) to ``metrics.csv``, rewriting it atomically."""
        rows = self.read_metrics() + [{k: str(v) for k, v in row.items()}]
        self.write_metrics(rows)

    def write_metrics(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Atomically write all ``rows`` to ``metrics.csv`` (columns: union of the keys)."""
        rows = list(rows)
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

    def claim(self, config: Mapping[str, Any]) -> Path:
        """Write ``config.toml``, refusing a folder whose earlier run had other settings.

        A rerun with the same settings resumes from the folder's checkpoints; one with other
        settings would mix two runs, so it raises ``ValueError`` naming the fix.
        """
        path, text = self.path / "config.toml", dumps_toml(config)
        if path.is_file() and path.read_text(encoding="utf-8") != text:
            raise ValueError(f"{self.path} holds a run with other settings; use another --out, or delete "
                             "the folder to start afresh")
        return atomic_write_text(path, text)
