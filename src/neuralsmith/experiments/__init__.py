"""One experiment per command: a settings dataclass and ``run(config, out, mode=...)``.

Every experiment module holds a frozen ``Config`` (embedding its family's settings object,
the only home of their defaults), ``run(config, out, *, mode, progress)`` that trains into a
run folder opened by :meth:`neuralsmith.runfolder.RunFolder.open`, and, where it makes sense,
``evaluate(run_dir, config, **options)``. A config has a ``kind`` (``config.toml`` records it),
which is how :func:`read_run` and :func:`evaluate` find the module of any run folder. A module
whose kinds have different config classes maps each kind to its class in ``CONFIGS``.

Adding a command: write ``experiments/NAME.py`` (Config + run), list its kinds in
:data:`KINDS`, and a ``cli/NAME.py`` that turns options into the Config (see
:func:`neuralsmith.settings.from_flat`), calls ``run`` and prints.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from neuralsmith.runfolder import RunFolder
from neuralsmith.settings import from_dict, to_dict

#: run kind -> the module that runs and evaluates it
KINDS: dict[str, str] = {
    "rbm": "neuralsmith.experiments.rbm",
    "dbn": "neuralsmith.experiments.stack",
    "sda": "neuralsmith.experiments.stack",
    "dbm": "neuralsmith.experiments.dbm",
    "finetune": "neuralsmith.experiments.finetune",
    "diagnose": "neuralsmith.experiments.diagnose",
    "classrbm": "neuralsmith.experiments.hybrid",
    "dhbm": "neuralsmith.experiments.hybrid",
    "dhda": "neuralsmith.experiments.hybrid",
    "study": "neuralsmith.experiments.study",
    "rnn": "neuralsmith.experiments.rnn",
    "linear-depth": "neuralsmith.experiments.linear_depth",
}


def open_run(out: str | os.PathLike, config: Any, mode: str = "new") -> RunFolder:
    """Open run folder ``out`` for ``config`` by the one policy; ``config.toml`` records its kind."""
    return RunFolder.open(out, config_record(config), mode=mode)


def config_record(config: Any) -> dict[str, Any]:
    """What ``config.toml`` holds for ``config``: its kind, then its settings."""
    return {"kind": config.kind, **to_dict(config)}


def module_for(kind: str) -> ModuleType:
    """The experiment module of run kind ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; known: {', '.join(KINDS)}")
    return importlib.import_module(KINDS[kind])


def read_run(run_dir: str | os.PathLike) -> tuple[ModuleType, Any]:
    """The experiment module and the settings of the run in ``run_dir``.

    Raises:
        FileNotFoundError: no run folder (no config.toml) there.
        ValueError: a config.toml of no known kind, or with bad settings (the file is named).
    """
    path = Path(run_dir) / "config.toml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no config.toml); give a folder "
                                "written by a training command's --out")
    raw = RunFolder(run_dir).read_config()
    kind = raw.get("kind")
    if not isinstance(kind, str):
        raise ValueError(f"{path}: no run kind recorded (an older run?); train it again")
    module = module_for(kind)
    config_class = getattr(module, "CONFIGS", {}).get(kind, module.Config)
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {k: v for k, v in raw.items() if k != "kind" or k in names}
    return module, from_dict(config_class, values, str(path), missing_is_none=True)


def evaluate(run_dir: str | os.PathLike, **options: Any) -> dict[str, Any]:
    """Score the run in ``run_dir`` on its own test set, whatever its kind.

    The result is also written to ``RUN/evaluation.json``.

    Raises:
        ValueError: for a kind that has nothing to evaluate.
    """
    module, config = read_run(run_dir)
    if not hasattr(module, "evaluate"):
        raise ValueError(f"{run_dir}: a {config.kind} run has nothing to evaluate")
    accepted = inspect.signature(module.evaluate).parameters
    extra = sorted(k for k in options if k not in accepted)
    if extra:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in extra)} does not apply to "
                         f"a {config.kind} run")
    return module.evaluate(Path(run_dir), config, **options)
