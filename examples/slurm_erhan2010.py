"""Run the Erhan et al. (2010) study (configs/erhan2010.toml) on a SLURM cluster with dask-jobqueue.

Every SLURM job is one Dask worker that runs one trial (one depth and start, all 50 seeds) at
a time with ``--cores`` torch threads; this script is the driver: it keeps the run folder,
writes each finished trial as it arrives and the report at the end. Run it on the login node
(or in a small job of its own) from the environment the jobs will use::

    pip install 'neuralsmith[dask]'
    python examples/slurm_erhan2010.py --dry-run                # print the job script only
    python examples/slurm_erhan2010.py --out runs/erhan2010 --jobs 50 --cores 8 \\
        --memory 16GB --walltime 24:00:00 --queue compute --account myproject
    python examples/slurm_erhan2010.py --out runs/erhan2010 --jobs 50 --resume   # after a kill

The study has 50 trials (10 starts x 5 depths), so more than 50 jobs gain nothing; with J
jobs it takes about ceil(50 / J) trials' time, the longest being the 5-layer DBN and SdA
(pre-training plus 50 epochs). The data set is loaded here and sent to each worker once, so
the jobs need neuralsmith installed but not the data files. Any Dask cluster works the same:
``neuralsmith study --config configs/erhan2010.toml --scheduler tcp://HOST:8786`` (or a
scheduler file) for one started by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "erhan2010.toml"


def make_cluster(cores: int = 8, memory: str = "16GB", walltime: str = "24:00:00",
                 queue: str | None = None, account: str | None = None,
                 prologue: Sequence[str] = ()) -> Any:
    """A SLURMCluster whose every job is one single-threaded Dask worker on ``cores`` CPUs.

    One Dask thread per worker (one trial at a time); the trial's torch threads use the
    ``cores`` the job books (``--cpus-per-task``). Nothing is submitted until ``scale``.
    """
    import dask
    from dask_jobqueue import SLURMCluster

    from neuralsmith.study.cluster import RETRIES

    with dask.config.set({"distributed.scheduler.allowed-failures": RETRIES,
                          "distributed.scheduler.worker-saturation": 1.0}):
        return SLURMCluster(cores=1, processes=1, job_cpu=cores, memory=memory, walltime=walltime,
                            queue=queue, account=account, job_script_prologue=list(prologue),
                            job_name="neuralsmith-study")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/erhan2010"))
    parser.add_argument("--jobs", type=int, default=10, help="SLURM jobs (= Dask workers)")
    parser.add_argument("--cores", type=int, default=8, help="CPUs per job = torch threads per trial")
    parser.add_argument("--memory", default="16GB")
    parser.add_argument("--walltime", default="24:00:00")
    parser.add_argument("--queue")
    parser.add_argument("--account")
    parser.add_argument("--prologue", action="append", default=[],
                        help="a line run before the worker starts, e.g. 'source ~/venv/bin/activate'")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the job script; submit nothing")
    args = parser.parse_args(argv)

    from distributed import Client

    from neuralsmith import study

    spec = study.StudySpec.from_toml(CONFIG, threads=args.cores)
    with make_cluster(args.cores, args.memory, args.walltime, args.queue, args.account, args.prologue) as cluster:
        if args.dry_run:
            print(cluster.job_script())
            return
        cluster.scale(jobs=args.jobs)
        with Client(cluster) as client:
            results = study.run(spec, args.out, mode="resume" if args.resume else "new", client=client)
    print(results["verdict"], f"report: {args.out / 'report.html'}", sep="\n")


if __name__ == "__main__":
    main()
