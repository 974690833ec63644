"""Does a bf16 study rank the starts as the fp32 one does? (issue 21)

Runs the default study (``configs/quick.toml``) twice, ``--precision fp32`` and ``--precision
bf16``, from the same root seed (or reads two finished run folders), and compares them depth
by depth: the starts in order of median test error, each start's median in both precisions,
and two checks:

* **medians within seed spread**: for every start, |median(bf16) - median(fp32)| is at most
  the standard deviation of its fp32 test errors over seeds;
* **same ordering**: no two starts swap places whose fp32 medians are further apart than
  either one's seed spread (starts closer than that are ties, and either order is the same).

Prints one table per depth and writes ``benchmarks/results/bf16_study.json``.

    python benchmarks/bf16_study.py                                    # runs both studies
    python benchmarks/bf16_study.py --fp32 runs/study --bf16 runs/study-bf16   # compare two runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_study(config: Path, precision: str, out: Path, threads: int) -> Path:
    """``neuralsmith study`` in ``precision`` into ``out`` (resumed if it is there)."""
    command = [sys.executable, "-m", "neuralsmith", "study", "--config", str(config), "--precision", precision,
               "--out", str(out), "--threads", str(threads), "--quiet"]
    if out.exists():
        command.append("--resume")
    subprocess.run(command, check=True)
    return out


def summary(run: Path) -> tuple[dict[tuple[int, str], dict], dict]:
    """The study's per-(depth, start) summary rows, and its results.json."""
    results = json.loads((run / "results.json").read_text())
    return {(row["depth"], row["start"]): row for row in results["summary"]}, results


def swapped(fp32: dict[str, dict], bf16: dict[str, dict]) -> list[tuple[str, str]]:
    """Pairs (a, b) that fp32 clearly ranks a < b and bf16 ranks b < a."""
    pairs = []
    for a, ra in fp32.items():
        for b, rb in fp32.items():
            gap = rb["median"] - ra["median"]
            if gap > max(ra["std"], rb["std"]) and bf16[b]["median"] < bf16[a]["median"]:
                pairs.append((a, b))
    return pairs


def compare(fp32_run: Path, bf16_run: Path) -> dict:
    """Depth by depth: the rows of both precisions and the two checks."""
    a, ra = summary(fp32_run)
    b, rb = summary(bf16_run)
    out = {"fp32_seconds": ra["seconds"], "bf16_seconds": rb["seconds"], "depths": {}}
    for depth in sorted({d for d, _ in a}):
        fa = {s: row for (d, s), row in a.items() if d == depth}
        fb = {s: row for (d, s), row in b.items() if d == depth}
        outside = [s for s in fa if abs(fb[s]["median"] - fa[s]["median"]) > fa[s]["std"]]
        out["depths"][depth] = {
            "rows": [{"start": s, "fp32": fa[s]["median"], "bf16": fb[s]["median"], "fp32_std": fa[s]["std"]}
                     for s in sorted(fa, key=lambda s: fa[s]["median"])],
            "outside_spread": outside, "swapped": swapped(fa, fb)}
    return out


def report(result: dict) -> None:
    for depth, d in result["depths"].items():
        print(f"\ndepth {depth}: start, median test error % fp32 / bf16 (fp32 std over seeds)")
        for row in d["rows"]:
            print(f"  {row['start']:11s} {row['fp32']:6.2f} / {row['bf16']:6.2f}  ({row['fp32_std']:.2f})")
        print(f"  medians outside the seed spread: {d['outside_spread'] or 'none'}; "
              f"clear pairs swapped: {d['swapped'] or 'none'}")
    print(f"\nstudy wall time: fp32 {result['fp32_seconds']:.0f} s, bf16 {result['bf16_seconds']:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.toml")
    p.add_argument("--fp32", type=Path, help="a finished fp32 study to compare (else one is run)")
    p.add_argument("--bf16", type=Path, help="a finished bf16 study to compare (else one is run)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bf16_study.json")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = a.fp32 or run_study(a.config, "fp32", Path(tmp) / "fp32", a.threads)
        bf16 = a.bf16 or run_study(a.config, "bf16", Path(tmp) / "bf16", a.threads)
        result = compare(fp32, bf16)
    result["config"] = str(a.config.relative_to(ROOT) if a.config.is_relative_to(ROOT) else a.config)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)


if __name__ == "__main__":
    main()
