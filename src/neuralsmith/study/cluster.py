"""Studies on a Dask cluster: one task per trial, the driver alone writes the run folder.

The optional extra ``pip install 'neuralsmith[dask]'`` brings Dask distributed; nothing here
imports it until a cluster is asked for. A trial (one depth and start, all its seeds) is one
task: its seeds derive from the root seed (:func:`neuralsmith.seeds.derived_generator`), so
where and in which order trials run changes nothing in their records. The data set goes to
every worker once (``client.scatter(..., broadcast=True)``); a trial sends back its record
and tensors and the driver writes them atomically as they arrive.

Faults: a trial that raises is retried ``retries`` times (``client.submit(retries=...)``); a
trial whose worker dies is rescheduled by the scheduler up to its ``allowed-failures``
(:func:`local_client` sets it to ``retries``). A trial that still fails is recorded as failed
(``results.json``'s ``failed`` list) and the study goes on; ``--resume`` runs it again.

Example (needs the extra; a cluster of two worker processes on this machine)::

    from neuralsmith import study
    from neuralsmith.study.cluster import local_client
    with local_client(workers=2, threads=1) as client:
        study.run(study.StudySpec(), "runs/study", client=client)
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from neuralsmith.study.findings import PRETRAINED
from neuralsmith.study.runner import Study, function_space_inputs, run_trial
from neuralsmith.study.spec import StudySpec
from neuralsmith.study.store import trial_name

INSTALL = "pip install 'neuralsmith[dask]'"
RETRIES = 2  # a trial runs at most 1 + RETRIES times (exceptions and dead workers alike)
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up
REFRESH = 1.0  # seconds between progress-bar refreshes while trials run

log = logging.getLogger(__name__)


def require_distributed() -> Any:
    """The ``distributed`` module, or a ValueError that names the install command.

    Raises:
        ValueError: when Dask distributed is not installed.
    """
    try:
        import distributed
    except ImportError:
        raise ValueError(f"running trials on a cluster (--workers, --scheduler) needs Dask; "
                         f"install it with: {INSTALL}") from None
    return distributed


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(workers: int, spec_threads: int) -> int:
    """Torch threads per worker so that ``workers * threads`` fits the cores.

    The spec's ``threads`` is kept when it fits (a study's default is 1); ``0`` (torch's
    choice) becomes the cores' share of one worker.

    Example:
        >>> default_threads(2, 1), default_threads(1, 0) >= 1
        (1, True)
    """
    share = max(1, cores() // workers)
    return min(spec_threads, share) if spec_threads else share


@contextlib.contextmanager
def local_client(workers: int, threads: int = 1, retries: int = RETRIES) -> Iterator[Any]:
    """A ``distributed.Client`` on a new cluster of ``workers`` processes here, closed after.

    Each worker runs one trial at a time (one Dask thread); ``threads`` is the torch thread
    count a trial uses when its spec's ``threads`` is 0. A trial whose worker dies is run
    again at most ``retries`` times (the scheduler's ``allowed-failures``).

    Raises:
        ValueError: for ``workers < 1`` or ``threads < 1``, or without the extra.
    """
    if workers < 1 or threads < 1:
        raise ValueError(f"--workers and --threads must be >= 1; got {workers}, {threads}")
    distributed = require_distributed()
    import dask

    settings = {"distributed.scheduler.allowed-failures": retries,
                "distributed.scheduler.worker-saturation": 1.0,
                "distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS": threads,
                # Dask's 64 KiB trim threshold also freezes glibc's mmap threshold at 128 KiB, so
                # each large tensor torch frees goes back to the OS and the next one page-faults
                # in afresh: 25-30% slower steps. Unset, glibc keeps its adaptive defaults.
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(settings):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client


@contextlib.contextmanager
def connect(address: str, timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on the running scheduler at ``address``, closed after.

    Args:
        address: ``tcp://host:port`` (any address Dask takes) or a scheduler file (JSON
            written by ``dask scheduler --scheduler-file``).
        timeout: seconds to wait for the scheduler (default :data:`CONNECT_TIMEOUT`).

    Raises:
        ConnectionError: when the scheduler cannot be reached within ``timeout``.
        ValueError: for an address that is neither, or without the extra.
    """
    distributed, timeout = require_distributed(), CONNECT_TIMEOUT if timeout is None else timeout
    where = {"scheduler_file": address} if Path(address).is_file() else {"address": address}
    if "address" in where and ":" not in address:
        raise ValueError(f"--scheduler takes tcp://HOST:PORT or a scheduler file; {address!r} is "
                         "neither (no such file)")
    try:
        client = distributed.Client(**where, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                              f"({type(exc).__name__}); start it (dask scheduler) or check the "
                              "address") from None
    with client:
        yield client


def longest_first(trials: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """``(depth, start)`` trials in the order a pool of workers should start them: the longest
    first (Graham's LPT rule, 1969), so that no long trial starts last while the other workers
    idle. A pre-trained start costs most (its layers' unsupervised epochs come on top of the
    fine-tuning), then depth; the default study's measured times follow this order.

    Example:
        >>> longest_first([(1, "he"), (2, "he"), (1, "sda"), (2, "dbn")])
        [(2, 'dbn'), (1, 'sda'), (2, 'he'), (1, 'he')]
    """
    return sorted(trials, key=lambda t: (t[1] in PRETRAINED, t[0]), reverse=True)


def trial_task(spec: StudySpec, depth: int, start: str, data: Any,
               device: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """What a worker runs: one trial, with the spec's torch threads as a serial run sets them."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    return run_trial(spec, depth, start, data, function_space_inputs(spec, data), torch.device(device))


@dataclass
class _Pool:
    """The futures in flight: which study and trial each one is."""

    client: Any
    trials: dict[Any, tuple[Study, int, str]] = field(default_factory=dict)

    def submit(self, study: Study, data: Any, device: str, retries: int, label: str) -> None:
        """Submit every unfinished trial of ``study`` (``data``: its scattered data set), the
        longest first (:func:`longest_first`, as Dask priorities)."""
        from dask.base import tokenize

        for rank, (depth, start) in enumerate(longest_first(study.todo())):
            key = f"{label}{trial_name(depth, start)}-{tokenize(study.spec.to_dict(), depth, start)}"
            future = self.client.submit(trial_task, study.spec, depth, start, data, device,
                                        key=key, retries=retries, pure=False, priority=-rank)
            self.trials[future] = (study, depth, start)

    def running(self) -> str:
        """What the workers run now, e.g. ``depth1-dbn, depth2-sda``."""
        keys = {k for ks in self.client.processing().values() for k in ks}
        names = [f"{s.label}{trial_name(d, st)}" for f, (s, d, st) in self.trials.items() if f.key in keys]
        return ", ".join(sorted(names)) or "waiting for workers"


def run_on_cluster(client: Any, studies: list[Study], bar: Any, device: str = "cpu",
                   retries: int = RETRIES) -> None:
    """Run every unfinished trial of ``studies`` on ``client``'s workers, saving each as it ends.

    Each study's data set is scattered to every worker once. A trial that fails after its
    retries is appended to its study's ``failed`` list; the others go on.

    Raises:
        ConnectionError: when the cluster goes away (the finished trials stay on disk).
    """
    distributed = require_distributed()
    pool = _Pool(client)
    for study in studies:
        if study.todo():
            pool.submit(study, client.scatter(study.data, broadcast=True, hash=False), device, retries,
                        study.label)
    pending = set(pool.trials)
    while pending:
        bar.describe(f"study: {pool.running()}")
        try:
            done, pending = distributed.wait(pending, timeout=REFRESH, return_when="FIRST_COMPLETED")
        except TimeoutError:
            continue
        for future in done:
            _collect(future, *pool.trials.pop(future), bar)


def _collect(future: Any, study: Study, depth: int, start: str, bar: Any) -> None:
    """Save a finished trial, or record it as failed; advance the bar either way."""
    if future.status == "cancelled":
        raise ConnectionError("the Dask cluster dropped the study's trials (scheduler gone?); the "
                              "finished ones are on disk: rerun with --resume")
    if future.status == "error":
        exc = future.exception()
        failure = {"depth": depth, "start": start, "error": f"{type(exc).__name__}: {exc}"}
        log.warning("trial %s%s failed: %s", study.label, trial_name(depth, start), failure["error"])
        study.failed.append(failure)
        bar.advance()
        return
    record, tensors = future.result()
    study.store.save(record, tensors)
    bar.advance({"median_test_error": study.median_error(record)})
