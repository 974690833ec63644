"""Erhan-style studies: many starts x depths x seeds, one fine-tuning budget, one report.

A suite (:class:`SuiteSpec`, :func:`run_suite`) runs one study per data set and sums them up
as a table of test errors, as in Larochelle et al. (2007).

Either runs its trials here, one after another, or (``client=`` a ``distributed.Client``,
see :mod:`neuralsmith.study.cluster`) as tasks on a Dask cluster, with the same records.

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

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch

from neuralsmith import data as data_api
from neuralsmith.data import Dataset
from neuralsmith.device import resolve_device
from neuralsmith.runfolder import MODES, RunFolder
from neuralsmith.study import provenance
from neuralsmith.study.report import rebuild, write_report
from neuralsmith.study.runner import Study, run_studies, run_study
from neuralsmith.study.spec import ALL_STARTS, DEFAULT_STARTS, StudySpec
from neuralsmith.study.store import TrialStore
from neuralsmith.study.suite import SuiteSpec, data_folder, write_suite_report

__all__ = ["ALL_STARTS", "DEFAULT_STARTS", "StudySpec", "SuiteSpec", "check_folder", "config_record", "rebuild",
           "run", "run_suite"]


def config_record(spec: StudySpec | SuiteSpec) -> dict[str, Any]:
    """What ``config.toml`` holds (and a resume is compared with): the kind, then the spec's tables.

    A study writes ``kind = "study"`` and a ``[study]`` table; a suite ``kind = "suite"``,
    ``[study]`` (the shared settings) and ``[suite]``. Either reads back with ``--config``.
    """
    if isinstance(spec, SuiteSpec):
        return {"kind": "suite", **spec.to_dict()}
    return {"kind": "study", "study": spec.to_dict()}


def config_defaults(spec: StudySpec | SuiteSpec) -> dict[str, Any] | None:
    """A study's :func:`config_record` at every default, so that ``--resume`` accepts a run made
    before a setting existed, with that setting at its default (None for a suite)."""
    return config_record(StudySpec()) if isinstance(spec, StudySpec) else None


def check_folder(out: str | os.PathLike, spec: StudySpec | SuiteSpec, mode: str) -> None:
    """Refuse ``mode`` for ``out`` as :func:`run` would, writing nothing (a CLI checks before a cluster starts)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    RunFolder(out).check(config_record(spec), mode, defaults=config_defaults(spec))


def load_data(spec: StudySpec) -> Dataset:
    """The study's data set, with its validation split and the seeded ``n_train`` subset."""
    ds = data_api.load(spec.data, validation=spec.validation, seed=spec.seed)
    if spec.n_train:
        keep = torch.randperm(len(ds.x_train), generator=torch.Generator().manual_seed(spec.seed))[:spec.n_train]
        ds = dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])
    return ds


def run(spec: StudySpec, out: str | os.PathLike, *, mode: str = "new", progress: bool = True,
        device: str = "cpu", client: Any = None) -> dict[str, Any]:
    """Run ``spec`` into the run folder ``out`` and write its report; return results.json's content.

    The folder follows :meth:`neuralsmith.runfolder.RunFolder.open`: ``mode="new"`` refuses a
    non-empty ``out``; ``"resume"`` keeps the finished trials of a run with the same spec
    (``threads`` may differ) and refuses any other, naming the differing keys, before anything
    is written; ``"overwrite"`` deletes the earlier run first. A lock keeps out a second process.

    Args:
        device: where the pre-training (``dbn``, ``sda``) and the batched fine-tuning run
            (``cpu``, ``cuda`` or ``auto``).
        client: a ``distributed.Client`` (``pip install 'neuralsmith[dask]'``): the trials run
            as tasks on its workers, with the same records as a serial run; this process alone
            writes the run folder. Trials that fail there are listed in results' ``failed``.
    """
    t0, device = time.perf_counter(), resolve_device(device)
    check_folder(out, spec, mode)  # refuse before the data is loaded
    ds = load_data(spec)
    with RunFolder.open(out, config_record(spec), mode=mode, defaults=config_defaults(spec)) as folder:
        if spec.threads:
            torch.set_num_threads(spec.threads)
        provenance.save(folder.path, provenance.collect(ds))
        study = run_study(spec, ds, folder.path, progress=progress, device=device, client=client)
        return _report(study, folder.path, time.perf_counter() - t0)


def run_suite(suite: SuiteSpec, out: str | os.PathLike, *, mode: str = "new", progress: bool = True,
              device: str = "cpu", client: Any = None) -> dict[str, Any]:
    """Run one study per data set into ``out/DATA/``, then write the suite's table.

    ``out`` follows the same policy as :func:`run` (its ``config.toml`` holds the whole suite);
    with ``mode="resume"`` each data set's study keeps its finished trials. With a ``client``
    the trials of all data sets run in one pool on its workers (see :func:`run`).

    Returns:
        The suite's results.json content: ``table`` (one row per data set and model), its
        ``text``, each data set's info, the seconds taken, the trials that ``failed``.
    """
    t0 = time.perf_counter()
    resolve_device(device)  # refuse a bad device before anything is written
    sub_mode = "resume" if mode == "resume" else "new"  # overwrite has emptied the suite's folder
    with RunFolder.open(out, config_record(suite), mode=mode) as folder:
        if client is None:
            results = {data: run(suite.spec_for(data), folder.path / data_folder(data), mode=sub_mode,
                                 progress=progress, device=device) for data in suite.data}
        else:
            results = _suite_on_cluster(suite, folder.path, sub_mode, progress, device, client)
        report = write_suite_report(suite, results, folder.path, time.perf_counter() - t0)
        report["failed"] = [{"data": d, **f} for d in suite.data for f in results[d]["failed"]]
        folder.write_results(report, seed=suite.study.seed)
        return report


def _suite_on_cluster(suite: SuiteSpec, out: Path, mode: str, progress: bool, device: str,
                      client: Any) -> dict[str, dict[str, Any]]:
    """Every data set's study opened and loaded, their trials run in one pool, then reported."""
    t0, device, specs = time.perf_counter(), resolve_device(device), {d: suite.spec_for(d) for d in suite.data}
    with contextlib.ExitStack() as stack:
        folders, studies = {d: out / data_folder(d) for d in specs}, {}
        for data, spec in specs.items():
            check_folder(folders[data], spec, mode)
            stack.enter_context(RunFolder.open(folders[data], config_record(spec), mode=mode,
                                               defaults=config_defaults(spec)))
            studies[data] = Study(spec, load_data(spec), TrialStore(folders[data]), label=f"{data} ")
            provenance.save(folders[data], provenance.collect(studies[data].data))
        run_studies(list(studies.values()), progress=progress, device=device, client=client)
        seconds = time.perf_counter() - t0
        return {d: _report(s, folders[d], seconds) for d, s in studies.items()}


def _report(study: Study, out: Path, seconds: float) -> dict[str, Any]:
    """Write the study's report; results.json also lists the trials that failed (``failed``).

    Raises:
        RuntimeError: when every trial failed (nothing to report); the errors are named.
    """
    records = study.records()
    if not records:
        raise RuntimeError(f"every trial of the study failed: {study.failed}")
    return write_report(study.spec, records, out, provenance.load(out), seconds, failed=study.failed)
