"""Studies on a real Dask LocalCluster (2 worker processes, 1 thread each): same records as serial.

Needs the dask extra (``pip install 'neuralsmith[dask]'``); without it the cluster tests skip
and only the one-line refusal is checked.
"""

import importlib.util
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from neuralsmith.study import StudySpec, SuiteSpec, run, run_suite
from neuralsmith.study import cluster

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="needs the dask extra: pip install 'neuralsmith[dask]'")

SPEC = StudySpec(depths=(1, 2), starts=("default", "uniform", "dbn"), seeds=2, epochs=1, hidden=8,
                 pretrain_epochs=1, families=("default", "uniform"), function_space_examples=20)


def _trials(folder: Path) -> dict[str, tuple[dict, dict]]:
    """Every trial's record (timings dropped) and tensors, by name."""
    out = {}
    for path in sorted((folder / "trials").glob("*.json")):
        record = {k: v for k, v in json.loads(path.read_text()).items() if k != "seconds"}
        out[path.stem] = record, load_file(path.with_suffix(".safetensors"))
    return out


def _same(a: dict[str, tuple[dict, dict]], b: dict[str, tuple[dict, dict]]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name][0] == b[name][0], name
        assert a[name][1].keys() == b[name][1].keys()
        assert all(torch.equal(a[name][1][k], b[name][1][k]) for k in a[name][1]), name


@pytest.fixture(scope="module")
def client():
    with cluster.local_client(workers=2, threads=1) as c:
        yield c


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    run(SPEC, out, progress=False)
    return out


@pytest.fixture(scope="module")
def serial(serial_run):
    return _trials(serial_run)


@needs_dask
def test_local_workers_keep_glibc_adaptive_malloc_and_one_torch_thread(client):
    """Dask's MALLOC_TRIM_THRESHOLD_ (which made every large tensor page-fault in afresh) is
    unset in our workers; OMP_NUM_THREADS is what local_client was given."""
    env = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"),
                              torch.get_num_threads()))
    assert list(env.values()) == [(None, "1", 1)] * 2


@needs_dask
def test_cluster_run_gives_the_serial_records_bit_for_bit(client, serial, tmp_path):
    results = run(SPEC, tmp_path / "run", progress=False, client=client)
    assert results["failed"] == [] and len(results["summary"]) == 6
    _same(_trials(tmp_path / "run"), serial)
    assert (tmp_path / "run" / "report.html").is_file()


class _KillOnce:
    """A worker plugin: the first worker to start ``trial`` dies there (os._exit), once."""

    name = "neuralsmith-test-kill-once"

    def __init__(self, trial: str, marker: str):
        self.trial, self.marker = trial, marker

    def setup(self, worker):
        pass

    def teardown(self, worker):
        pass

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and self.trial in str(key) and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)


@needs_dask
def test_a_worker_killed_mid_trial_is_retried_and_the_study_completes(client, serial, tmp_path):
    from distributed import WorkerPlugin

    plugin = type("KillOnce", (_KillOnce, WorkerPlugin), {})("depth2-uniform", str(tmp_path / "killed"))
    client.register_plugin(plugin)
    try:
        spec = SPEC.replace(depths=[2], starts=["default", "uniform"])
        results = run(spec, tmp_path / "run", progress=False, client=client)
    finally:
        client.unregister_worker_plugin(_KillOnce.name)
    assert (tmp_path / "killed").is_file(), "no worker was killed: the test proves nothing"
    assert results["failed"] == []
    _same(_trials(tmp_path / "run"), {k: v for k, v in serial.items() if k in ("depth2-default", "depth2-uniform")})
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the dead worker


def _break_uniform_at_depth_2(marker: str) -> None:
    """Run on each worker: the ``uniform`` start raises at depth 2 while ``marker`` exists."""
    from neuralsmith.study import starts

    original = starts.STARTS["uniform"]

    def broken(spec, depth, *args):
        if depth == 2 and os.path.exists(marker):
            raise RuntimeError("test: this start is broken")
        return original(spec, depth, *args)

    starts.STARTS["uniform"] = broken


@needs_dask
def test_a_trial_failing_every_retry_is_listed_and_a_resume_finishes_it(client, serial, tmp_path):
    marker = tmp_path / "broken"
    marker.write_text("")
    client.wait_for_workers(2, timeout=60)
    client.run(_break_uniform_at_depth_2, str(marker))
    spec = SPEC.replace(depths=[2], starts=["default", "uniform"])
    results = run(spec, tmp_path / "run", progress=False, client=client)
    assert [(f["depth"], f["start"]) for f in results["failed"]] == [(2, "uniform")]
    assert "test: this start is broken" in results["failed"][0]["error"]
    assert [(r["depth"], r["start"]) for r in results["summary"]] == [(2, "default")]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["failed"] == results["failed"]
    marker.unlink()
    results = run(spec, tmp_path / "run", mode="resume", progress=False, client=client)
    assert results["failed"] == [] and len(results["summary"]) == 2
    _same(_trials(tmp_path / "run"), {k: v for k, v in serial.items() if k in ("depth2-default", "depth2-uniform")})


@needs_dask
def test_a_killed_driver_resumes_on_the_cluster_to_the_same_records(client, serial_run, serial, tmp_path):
    out = shutil.copytree(serial_run, tmp_path / "run")
    for name in ("depth1-dbn", "depth2-uniform"):  # unfinished when the driver died
        (out / "trials" / f"{name}.json").unlink()
    (out / "trials" / "depth2-dbn.json").unlink()  # killed between its two files
    (out / "results.json").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*.json")}
    results = run(SPEC, out, mode="resume", progress=False, client=client)
    assert results["failed"] == [] and len(results["summary"]) == 6
    assert all((out / "trials" / n).stat().st_mtime_ns == t for n, t in kept.items())  # not rerun
    _same(_trials(out), serial)


@needs_dask
def test_cli_scheduler_runs_a_suite_in_one_pool(client, cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('[study]\nname = "tiny"\ndepths = [1]\nstarts = ["uniform", "dbn"]\nseeds = 1\n'
                      'hidden = 8\nepochs = 1\npretrain_epochs = 1\nvalidation = 0.2\n'
                      'function_space_examples = 20\nfamilies = ["uniform", "dbn"]\nthreads = 1\n\n'
                      '[suite]\ndata = ["digits", "digits-rot"]\n')
    code, out, err = cli("study", "--config", config, "--scheduler", client.scheduler.address,
                         "--out", tmp_path / "suite", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert results["failed"] == []
    assert {(r["data"], r["model"]) for r in results["table"]} >= {("digits", "NNet"), ("digits-rot", "DBN-1")}
    serial = run_suite(SuiteSpec.from_toml(config, data=["digits-rot"]), tmp_path / "serial", progress=False)
    assert [r["error"] for r in serial["table"]] == [r["error"] for r in results["table"] if r["data"] == "digits-rot"]
    _same(_trials(tmp_path / "suite" / "digits-rot"), _trials(tmp_path / "serial" / "digits-rot"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_dask
def test_an_unreachable_scheduler_is_one_line_and_exit_2_in_bounded_time(cli, monkeypatch, tmp_path):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 3.0)
    t0 = time.perf_counter()
    code, out, err = cli("study", "--scheduler", f"tcp://127.0.0.1:{_free_port()}", "--out", tmp_path / "r",
                         "--depths", "1", "--inits", "default", "--seeds", "1", "--epochs", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot reach the Dask scheduler" in err and time.perf_counter() - t0 < 10
    assert not (tmp_path / "r").exists()  # nothing written


def test_a_cluster_without_the_extra_names_the_install_command(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    code, out, err = cli("study", "--workers", "2", "--out", tmp_path / "r")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install 'neuralsmith[dask]'" in err and not (tmp_path / "r").exists()


@pytest.mark.skipif(importlib.util.find_spec("dask_jobqueue") is None,
                    reason="needs dask-jobqueue (the dask extra)")
def test_slurm_example_builds_the_cluster_without_submitting(capsys):
    path = Path(__file__).resolve().parents[2] / "examples" / "slurm_erhan2010.py"
    spec = importlib.util.spec_from_file_location("slurm_erhan2010", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--dry-run", "--cores", "4", "--memory", "8GB", "--account", "proj",
                  "--prologue", "source ~/venv/bin/activate"])
    script = capsys.readouterr().out
    for line in ("#SBATCH --cpus-per-task=4", "#SBATCH -A proj", "#SBATCH -t 24:00:00",
                 "source ~/venv/bin/activate", "--nthreads 1"):
        assert line in script
    assert StudySpec.from_toml(example.CONFIG).name == "erhan2010"


def test_workers_and_scheduler_together_are_refused(cli, tmp_path):
    code, out, err = cli("study", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786", "--out", tmp_path / "r")
    assert code == 2 and "not both" in err and not (tmp_path / "r").exists()


def test_no_module_imports_dask_at_import_time():
    """Dask is optional: only functions that use it import it (so the library works without it)."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src"
    found = []
    for path in src.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("dask", "distributed", "dask_jobqueue")]
    assert found == []


def test_default_threads_fit_the_cores(monkeypatch):
    monkeypatch.setattr(cluster, "cores", lambda: 8)
    assert cluster.default_threads(2, 0) == 4 and cluster.default_threads(2, 1) == 1
    assert cluster.default_threads(4, 6) == 2 and cluster.default_threads(16, 0) == 1


def test_trials_go_to_the_workers_longest_first():
    """Pre-trained starts, then deeper nets, get the higher Dask priority (the first rank)."""

    class Client:
        def __init__(self):
            self.submitted = []

        def submit(self, fn, spec, depth, start, *args, priority, **kwargs):
            self.submitted.append((priority, depth, start))

    from neuralsmith.study.runner import Study

    class Store:
        def done(self, depth, start):
            return False

    study = Study(SPEC, None, Store())
    pool = cluster._Pool(Client())
    pool.submit(study, None, "cpu", 0, "")
    order = [(d, s) for _, d, s in sorted(pool.client.submitted, reverse=True)]
    assert order == [(2, "dbn"), (1, "dbn"), (2, "default"), (2, "uniform"), (1, "default"), (1, "uniform")]
