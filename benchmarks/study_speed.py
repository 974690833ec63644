"""The default study's time at an earlier commit and now, alternated in one run.

Checks out ``--before`` (a git revision) into a temporary worktree and runs ``neuralsmith study``
(``configs/quick.toml`` unless ``--config``, each side its own commit's copy) with that commit's
code and with this checkout's, one after the other, ``--rounds`` times, each in a fresh process:
serially, or with ``--as-demo`` as each commit's ``make demo`` runs it (its ``--workers``, if
any: the default study's wall time as a user meets it). Reports per run the wall time, the
study's own time (``results.json``) and the CPU time (user + system: on a virtual machine whose
host steals cycles, the wall time swings by tens of percent and the CPU time much less), the
per-round ratios before / now, and whether every trial record and tensor of the two agree bit
for bit (timings aside), and if not, whether the trials' test errors do (a later commit may
record more per trial). Writes ``benchmarks/results/study_speed.json``.

    python benchmarks/study_speed.py --before d9e4f4e --rounds 3
    python benchmarks/study_speed.py --before 476e995 --rounds 3 --as-demo --out benchmarks/results/study_speed_demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]


def demo_workers(root: Path) -> int:
    """The ``--workers`` of the study that ``make demo`` runs in the checkout at ``root`` (0: serial)."""
    recipe = [line for line in (root / "Makefile").read_text().splitlines() if "neuralsmith study" in line]
    found = re.search(r"--workers\s+(\d+)", recipe[0]) if recipe else None
    return int(found.group(1)) if found else 0


def run_study(src: Path, config: Path, out: Path, workers: int = 0) -> dict:
    """One study with the package at ``src`` (on ``workers`` local processes, or serially):
    wall, study and CPU seconds (the CPU time of worker processes included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "neuralsmith", "study", "--config", str(config), "--out", str(out),
                    "--quiet", *(["--workers", str(workers)] if workers else [])], check=True,
                   env={**os.environ, "PYTHONPATH": str(src)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    study = json.loads((out / "results.json").read_text())["seconds"]
    return {"wall_s": wall, "study_s": study, "cpu_s": cpu, "load": os.getloadavg()[0], "workers": workers}


def same_records(a: Path, b: Path) -> bool:
    """Every trial's record (its ``seconds`` aside) and tensors equal in the two run folders."""
    for record in sorted((a / "trials").glob("*.json")):
        other = b / "trials" / record.name
        x, y = json.loads(record.read_text()), json.loads(other.read_text())
        x.pop("seconds", None), y.pop("seconds", None)
        t, u = load_file(record.with_suffix(".safetensors")), load_file(other.with_suffix(".safetensors"))
        if x != y or t.keys() != u.keys() or any(not torch.equal(t[k], u[k]) for k in t):
            return False
    return True


def same_test_errors(a: Path, b: Path) -> bool:
    """Every trial's per-seed test errors equal in the two run folders (the study's outcome, even
    where a later commit records more per trial)."""
    return all(json.loads(r.read_text())["test_error"] == json.loads((b / "trials" / r.name).read_text())["test_error"]
               for r in sorted((a / "trials").glob("*.json")))


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(l.split(":", 1)[1].strip() for l in lines if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="the git revision to compare with")
    p.add_argument("--config", type=Path, default=Path("configs") / "quick.toml",
                   help="the study config, relative to the repository root: each side reads its own commit's copy")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--as-demo", action="store_true",
                   help="run each side as its commit's make demo does (its --workers), not serially")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "study_speed.json")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), a.before], check=True)
        try:
            rounds = []
            for r in range(a.rounds):  # alternated, so both see the same machine
                runs = {name: run_study(base / "src", base / a.config, Path(tmp) / f"{name}{r}",
                                        demo_workers(base) if a.as_demo else 0)
                        for name, base in (("before", tree), ("now", ROOT))}
                runs["same_records"] = same_records(Path(tmp) / f"before{r}", Path(tmp) / f"now{r}")
                runs["same_test_errors"] = same_test_errors(Path(tmp) / f"before{r}", Path(tmp) / f"now{r}")
                rounds.append(runs)
                times = [f"{k} wall {v['wall_s']:.1f} s, study {v['study_s']:.1f} s, cpu {v['cpu_s']:.1f} s"
                         for k, v in runs.items() if not k.startswith("same")]
                print(f"round {r + 1}: " + "   ".join(times) + f"   records equal: {runs['same_records']}, "
                      f"test errors equal: {runs['same_test_errors']}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    ratios = {k: [x["before"][k] / x["now"][k] for x in rounds] for k in ("wall_s", "study_s", "cpu_s")}
    summary = {k: statistics.median(v) for k, v in ratios.items()}
    print("before / now, median of the per-round ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in summary.items()))
    a.out.write_text(json.dumps({"before": a.before, "config": str(a.config), "as_demo": a.as_demo,
                                 "machine": cpu_model(), "cpus": os.cpu_count(),
                                 "rounds": rounds, "ratios": ratios, "median_ratios": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
