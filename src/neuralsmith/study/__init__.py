"""Erhan-style studies: many starts x depths x seeds, one fine-tuning budget, one report.

A suite (:class:`SuiteSpec`, :func:`run_suite`) runs one study per data set and sums them up
as a table of test errors, as in Larochelle et al. (2007).

Example (a tiny study; the default one is ``configs/quick.toml``):
    >>> import tempfile
    >>> from neuralsmith.study import StudySpec, run
    >>> spec = StudySpec(depths=(1,), starts=("default", "uniform"), seeds=2, epochs=1, hidden=8,
    ...                  families=("default", "uniform"), function_space_examples=20)
    >>> results = run(spec, tempfile.mkdtemp(), progress=False)
    >>> [row["start"] for row in results["summary"]]
    ['default', 'uniform']
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from neuralsmith import data as data_api
from neuralsmith.device import resolve_device
from neuralsmith.runfolder import RunFolder
from neuralsmith.study.report import write_report
from neuralsmith.study.runner import run_study
from neuralsmith.study.spec import ALL_STARTS, StudySpec
from neuralsmith.study.suite import SuiteSpec, data_folder, write_suite_report

__all__ = ["ALL_STARTS", "StudySpec", "SuiteSpec", "run", "run_suite"]


def run(spec: StudySpec, out: str | Path, *, resume: bool = False, progress: bool = True,
        device: str = "cpu") -> dict[str, Any]:
    """Run ``spec`` into the run folder ``out`` and write its report; return results.json's content.

    ``device`` (``cpu``, ``cuda`` or ``auto``) is where the batched fine-tuning runs.
    """
    t0 = time.perf_counter()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    ds = data_api.load(spec.data, validation=spec.validation, seed=spec.seed)
    if spec.n_train:
        keep = torch.randperm(len(ds.x_train), generator=torch.Generator().manual_seed(spec.seed))[:spec.n_train]
        ds = dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])
    RunFolder(out).write_config(spec.to_dict())
    records = run_study(spec, ds, out, resume=resume, progress=progress, device=resolve_device(device))
    return write_report(spec, records, out, ds.info(), time.perf_counter() - t0)


def run_suite(suite: SuiteSpec, out: str | Path, *, resume: bool = False, progress: bool = True,
              device: str = "cpu") -> dict[str, Any]:
    """Run one study per data set into ``out/DATA/``, then write the suite's table.

    Each data set's study resumes on its own (``resume``), so a killed suite rerun with
    ``resume=True`` skips the finished trials of every data set.

    Returns:
        The suite's results.json content: ``table`` (one row per data set and model), its
        ``text``, each data set's info, the seconds taken.
    """
    t0 = time.perf_counter()
    RunFolder(out).write_config(suite.toml_tables())
    results = {data: run(suite.spec_for(data), Path(out) / data_folder(data), resume=resume,
                         progress=progress, device=device) for data in suite.data}
    return write_suite_report(suite, results, out, time.perf_counter() - t0)
