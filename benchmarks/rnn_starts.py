"""Recurrent starts on long lags: IRNN, orthogonal and small Gaussian, with and without the identity constraint.

Runs ``neuralsmith.experiments.rnn.run`` for four starts (ReLU + identity = the IRNN, ReLU + N(0, 0.001^2),
tanh + orthogonal, tanh + N(0, 0.01^2)) under each constraint, on the adding problem at each
length and on sequential digits (pixel by pixel, 64 steps); prints Markdown tables of the test
MSE / test error and writes docs/figures/rnn_adding.png (learning curves) and
docs/figures/rnn_state_gradients.png (||dL/dh_t|| through time at the start). Every run is a
run folder under --runs: a killed benchmark resumes where it stopped.

    python benchmarks/rnn_starts.py                       # the README budget: 3000/1000/1000 Adam steps
    python benchmarks/rnn_starts.py --lengths 150 200 300 400 --steps 200000 --optimizer sgd --lr 0.01 \\
        --n-train 100000 --n-test 10000                   # Le et al.'s scale (days on a CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from multiprocessing import Pool
from pathlib import Path

import torch

from neuralsmith import plots, rnn
from neuralsmith.experiments import rnn as experiment

STARTS = {  # label -> (cell, init, init_std)
    "IRNN: relu, identity": ("relu", "identity", 0.001),
    "relu, N(0, 0.001²)": ("relu", "normal", 0.001),
    "tanh, orthogonal": ("tanh", "orthogonal", None),
    "tanh, N(0, 0.01²)": ("tanh", "normal", 0.01),
}


def _job(args: tuple[dict, str]) -> dict:
    settings, folder = args
    torch.set_num_threads(1)
    os.nice(5)
    done = Path(folder) / "results.json"
    if done.is_file():
        return json.loads(done.read_text())
    # resume: a run folder a killed benchmark left continues (a missing or empty one starts)
    return experiment.run(experiment.Config(**settings), folder, mode="resume", progress=False)


def _jobs(args) -> list[tuple[str, str, str, dict]]:
    """(task label, start label, constraint, config settings) for every run."""
    common = dict(lr=args.lr, optimizer=args.optimizer, batch_size=16, clip=1.0, hidden=100,
                  n_train=args.n_train, n_test=args.n_test, seed=args.seed, device="cpu")
    jobs = []
    for task in [f"T={t}" for t in args.lengths] + (["digits"] if args.digits_steps else []):
        for label, (cell, init, std) in STARTS.items():
            for constraint in args.constraints + (["soft"] if task in args.soft_at else []):
                settings = dict(common, cell=cell, init=init, init_std=std, constraint=constraint)
                if task == "digits":
                    settings.update(task="digits", steps=args.digits_steps)
                else:
                    settings.update(length=int(task[2:]), steps=args.steps[min(args.lengths.index(int(task[2:])),
                                                                               len(args.steps) - 1)])
                jobs.append((task, label, constraint, settings))
    return jobs


def _folder(runs: Path, task: str, label: str, constraint: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in f"{task}-{label}-{constraint}").strip("-")
    return str(runs / slug)


def _table(results: list[tuple[str, str, str, dict]], tasks: list[str], metric: str) -> str:
    lines = ["| start | constraint | " + " | ".join(tasks) + " |", "|---|---|" + "---:|" * len(tasks)]
    rows = dict.fromkeys((label, c) for _, label, c, _ in results)
    for label, constraint in rows:
        cells = []
        for task in tasks:
            found = [r for t, lab, c, r in results if (t, lab, c) == (task, label, constraint)]
            cells.append(f"{found[0][metric]:.4g}" if found else "")
        lines.append(f"| {label} | {constraint} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _state_gradient_figure(length: int, path: Path) -> None:
    x = rnn.adding_problem(length, n_train=256, n_test=1, generator=torch.Generator().manual_seed(0))
    curves = {}
    for label, (cell, init, std) in STARTS.items():
        net = experiment.build(experiment.Config(length=length, cell=cell, init=init, init_std=std), x, 2,
                               torch.Generator().manual_seed(0))
        g = rnn.state_gradient_norms(net.double(), x.x_train.double(), x.y_train.double())  # float64: 1e-300
        curves[label] = (list(range(1, length + 1)), (g / g[-1]).tolist())
    plots.save(plots.curves_by_step(curves, ylabel="||dL/dh_t|| / ||dL/dh_T||", xlabel="step t", log=True,
                                    title=f"gradient reaching each step at the start, adding T = {length}"), path)


def _curve_figure(results, runs: Path, task: str, path: Path) -> None:
    curves = {}
    for t, label, constraint, _ in results:
        if t == task and constraint == "none":
            rows = [line.split(",") for line in (Path(_folder(runs, t, label, constraint)) / "metrics.csv")
                    .read_text().splitlines()]
            col = rows[0].index("test_loss")
            curves[label] = ([float(r[0]) for r in rows[1:]], [float(r[col]) for r in rows[1:]])
    plots.save(plots.curves_by_step(curves, ylabel="test MSE", log=True, reference=1 / 6,
                                    reference_label="always 1 (0.167)", title=f"adding problem, {task}"), path)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 150])
    parser.add_argument("--steps", type=int, nargs="+", default=[3000, 1000, 1000],
                        help="steps a run, one per length (the last repeats)")
    parser.add_argument("--digits-steps", type=int, default=1000, help="0: skip sequential digits")
    parser.add_argument("--constraints", nargs="+", default=["none", "hard"])
    parser.add_argument("--soft-at", nargs="*", default=["T=50"], help="tasks that also get the soft constraint")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/rnn-starts"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    jobs = _jobs(args)
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        outcomes = pool.map(_job, [(s, _folder(args.runs, t, lab, c)) for t, lab, c, s in jobs], chunksize=1)
    results = [(t, lab, c, r) for (t, lab, c, _), r in zip(jobs, outcomes)]
    tasks = [f"T={t}" for t in args.lengths]
    print(f"adding problem, test MSE after {args.steps} {args.optimizer} steps for T = {args.lengths} "
          f"(lr {args.lr}, batch 16, clip 1):")
    print(_table(results, tasks, "test_mse"))
    if args.digits_steps:
        print(f"\nsequential digits (pixel by pixel), test error % after {args.digits_steps} steps:")
        print(_table(results, ["digits"], "test_error"))
    print(f"\nwall time {time.perf_counter() - start:.0f} s, {len(jobs)} runs, {args.workers} workers")
    args.figures.mkdir(parents=True, exist_ok=True)
    _curve_figure(results, args.runs, tasks[0], args.figures / "rnn_adding.png")
    _state_gradient_figure(max(args.lengths), args.figures / "rnn_state_gradients.png")


if __name__ == "__main__":
    main()
