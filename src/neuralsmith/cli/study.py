"""``neuralsmith study``: compare starts across depths and seeds, write report.html.

With a suite config (a ``[suite]`` table, e.g. ``configs/larochelle2007.toml``) it runs the
study on each listed data set and prints the suite's table; ``--data`` then takes a
comma-separated list that replaces the config's.

``--out`` follows the one run-folder policy: a non-empty folder needs ``--resume`` (keep the
finished trials of a study with the same settings) or ``--overwrite`` (start afresh).

``--workers N`` runs the trials on a local Dask cluster of N worker processes (started and
closed by the command); ``--scheduler ADDRESS`` on a running one (``tcp://host:8786`` or a
scheduler file). Both need ``pip install 'neuralsmith[dask]'`` and give the serial run's records.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from neuralsmith.cli.common import TensorboardOpt, tensorboard_tracker
from neuralsmith.cli.common import DeviceOpt, JsonOpt, OverwriteOpt, QuietOpt, ResumeOpt, console, \
    emit_json, emit_rows, parse_list, run_mode
from neuralsmith.study import StudySpec, SuiteSpec, check_folder, run, run_suite
from neuralsmith.study.suite import is_suite
from neuralsmith.tracking import track_study

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "quick.toml"


def study(
    config: Annotated[Optional[Path], typer.Option("--config", help="Study spec (TOML).")] = None,
    data: Annotated[Optional[str], typer.Option(
        "--data", help="Data source (with a suite config: a comma-separated list).")] = None,
    depths: Annotated[Optional[str], typer.Option("--depths", help="e.g. 1,2,3")] = None,
    inits: Annotated[Optional[str], typer.Option(
        "--inits", help="Starts to compare, comma-separated (initializers, dbn, sda).")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Networks per start and depth.")] = None,
    activation: Annotated[Optional[str], typer.Option("--activation", help="sigmoid, tanh or relu.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Fine-tuning epochs.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Root seed.")] = None,
    precision: Annotated[Optional[str], typer.Option(
        "--precision",
        help="fp32, or bf16: bfloat16 products in the DBN/SdA pre-training and the fine-tuning.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/study"),
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    device: DeviceOpt = "auto",
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Run the trials on a local Dask cluster of N worker processes.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", help="Run the trials on a running Dask cluster: tcp://HOST:PORT or a scheduler file.")] = None,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", help="Torch threads per trial (default: the config's; with --workers, what fits "
                          "the cores).")] = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    tensorboard: TensorboardOpt = None,
) -> None:
    """Compare starts (initializers, DBN, SdA) across depths and seeds; write report.html."""
    mode, tracker = run_mode(resume, overwrite), tensorboard_tracker(tensorboard)
    if workers is not None and scheduler is not None:
        raise ValueError("give --workers (a local cluster) or --scheduler (a running one), not both")
    overrides = dict(depths=_listed(depths, int, "--depths"), seeds=seeds, activation=activation,
                     epochs=epochs, seed=seed, starts=_listed(inits, str, "--inits"), threads=threads,
                     precision=precision)
    if config is not None and is_suite(config):
        suite = SuiteSpec.from_toml(config, data=_listed(data, str, "--data"), **overrides)
        suite = SuiteSpec(_fit_threads(suite.study, workers, threads), suite.data, suite.overrides)
        check_folder(out, suite, mode)  # refuse before a cluster starts
        with _client(workers, scheduler, suite.study) as client:
            _suite(suite, out, mode, device, json, quiet, client, tracker)
        return
    overrides["data"] = data
    spec = StudySpec.from_toml(config or DEFAULT_CONFIG, **overrides) if (config or DEFAULT_CONFIG.is_file()) \
        else StudySpec().replace(**overrides)
    spec = _fit_threads(spec, workers, threads)
    check_folder(out, spec, mode)
    with _client(workers, scheduler, spec) as client:
        results = run(spec, out, mode=mode, progress=not quiet and not json, device=device, client=client)
    track_study(out, tracker)
    if json:
        emit_json(results)
        return
    emit_rows("test error (%)", [{k: r[k] for k in ("depth", "start", "lr", "median", "mean", "std", "diverged")}
                                 for r in results["summary"]], as_json=False, quiet=quiet)
    if not quiet:
        console.print(results["verdict"])
        console.print(f"report: {out / 'report.html'}")


def _listed(text: Optional[str], kind: type, what: str) -> Optional[list]:
    """An override list, or None (the config's value) when the option is not given."""
    return None if text is None else list(parse_list(text, kind, what))


def _fit_threads(spec: StudySpec, workers: Optional[int], threads: Optional[int]) -> StudySpec:
    """With ``--workers`` and no ``--threads``: torch threads so that workers x threads fits the cores."""
    if workers is None or threads is not None:
        return spec
    from neuralsmith.study.cluster import default_threads

    return spec.replace(threads=default_threads(max(workers, 1), spec.threads))


@contextlib.contextmanager
def _client(workers: Optional[int], scheduler: Optional[str], spec: StudySpec) -> Iterator[Any]:
    """A Dask client for ``--workers`` or ``--scheduler``; None (serial) without either."""
    from neuralsmith.study import cluster  # imports Dask only when a cluster is asked for

    if workers is not None:
        with cluster.local_client(workers, threads=spec.threads or 1) as client:
            yield client
    elif scheduler is not None:
        with cluster.connect(scheduler) as client:
            yield client
    else:
        yield None


def _suite(suite: SuiteSpec, out: Path, mode: str, device: str, json: bool, quiet: bool, client: Any,
           tracker: object = None) -> None:
    """Run a suite and print its table (or its results as JSON); track each data set's study."""
    results = run_suite(suite, out, mode=mode, progress=not quiet and not json, device=device, client=client)
    for sub in sorted(p for p in out.iterdir() if (p / "trials").is_dir()):
        track_study(sub, None if tracker is None else type(tracker)(tracker.log_dir / sub.name))
    if json:
        emit_json(results)
    elif not quiet:
        typer.echo(results["text"], nl=False)
        typer.echo(f"table: {out / 'table.txt'}; per data set: {out}/DATA/report.html")
