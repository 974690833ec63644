"""A study's results on disk: one JSON (+ safetensors) per finished trial, written atomically.

A trial is one (depth, start) pair with all its seeds. A study killed at any moment loses at
most the trial in flight; ``--resume`` skips the trials whose JSON exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neuralsmith import checkpoint
from neuralsmith.runfolder import read_json


def trial_name(depth: int, start: str) -> str:
    return f"depth{depth}-{start}"


class TrialStore:
    """Finished trials under ``RUN/trials/``: ``NAME.json`` and ``NAME.safetensors``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder) / "trials"
        self.folder.mkdir(parents=True, exist_ok=True)

    def done(self, depth: int, start: str) -> bool:
        return checkpoint.exists(self.folder, trial_name(depth, start))

    def save(self, record: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Write the trial's tensors, then its JSON (the JSON marks it finished)."""
        checkpoint.save(self.folder, trial_name(record["depth"], record["start"]), tensors, record)

    def load(self, depth: int, start: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        tensors, record = checkpoint.load(self.folder, trial_name(depth, start))
        return record, tensors

    def records(self) -> list[dict[str, Any]]:
        """Every finished trial's JSON record, by name."""
        return [read_json(p) for p in sorted(self.folder.glob("*.json"))]
