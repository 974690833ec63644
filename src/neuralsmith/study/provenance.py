"""How a study was made: library versions, machine, data set and its checksum, start time.

Collected once when a study starts and kept in ``RUN/provenance.json``, so a report rebuilt
later (``neuralsmith report RUN``) states the run's facts, not the rebuilding machine's.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

import torch

from neuralsmith.data import Dataset
from neuralsmith.runfolder import read_json, versions, write_json

FILE = "provenance.json"


def collect(data: Dataset) -> dict[str, Any]:
    """The facts of this process and ``data``, as JSON-ready values."""
    return {"versions": versions(), "data": {**data.info(), "sha256": data.checksum()},
            "machine": {"platform": platform.platform(), "processor": _cpu_name(),
                        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _cpu_name() -> str:
    """The CPU's model name where the OS says it (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def save(run: str | os.PathLike, facts: dict[str, Any]) -> Path:
    """Write ``facts`` to ``RUN/provenance.json`` unless a resumed run already has them."""
    path = Path(run) / FILE
    return path if path.is_file() else write_json(path, facts)


def load(run: str | os.PathLike) -> dict[str, Any]:
    """``RUN/provenance.json``; for a run made before it existed, what ``results.json`` kept."""
    path = Path(run) / FILE
    if path.is_file():
        return read_json(path)
    results = Path(run) / "results.json"
    if results.is_file():
        old = read_json(results)
        return {"versions": old.get("versions", {}), "data": old.get("data", {}), "machine": {}, "started": ""}
    raise FileNotFoundError(f"{run} has neither {FILE} nor results.json: is it a study's run folder?")
