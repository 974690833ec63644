"""``neuralsmith study`` as an experiment kind: a Config holding the :class:`StudySpec`, ``run``.

A thin wrapper, so that :func:`neuralsmith.experiments.read_run` knows a study's run folder
(``config.toml``: ``kind = "study"`` and a ``[study]`` table). The study itself lives in
:mod:`neuralsmith.study`; it has nothing to evaluate (its report is its evaluation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from neuralsmith import study
from neuralsmith.study import StudySpec


@dataclass(frozen=True)
class Config:
    """One study: its :class:`~neuralsmith.study.StudySpec` (the home of its defaults)."""

    kind: ClassVar[str] = "study"
    study: StudySpec = field(default_factory=StudySpec)


def run(config: Config, out: str | os.PathLike, *, mode: str = "new", progress: bool = True,
        device: str = "cpu") -> dict[str, Any]:
    """Run the study into run folder ``out`` (see :func:`neuralsmith.study.run`)."""
    return study.run(config.study, out, mode=mode, progress=progress, device=device)
