"""Pre-training against random starts as nets deepen (Erhan et al. 2010, figure 2).

Runs ``neuralsmith study`` on each config given (default: digits and a 5 000-image subset
of Fashion-MNIST, 4-layer sigmoid nets, >= 5 seeds) and prints the median test error by depth
for each start, with the gain of the best pre-trained start over the best random one.

    python benchmarks/depth_effect.py [--configs configs/depth_digits.toml,...] [--out runs/depth]

``--resume`` continues studies that were interrupted. Figures go to
``benchmarks/results/depth_effect.json`` (a run of some configs replaces only their entries).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = "configs/depth_digits.toml,configs/depth_fashion5k.toml"
RANDOM, PRETRAINED = ("default", "uniform"), ("dbn", "sda")


def run(config: str, out: Path, resume: bool) -> dict:
    """Run one study through the CLI (so the figures are what users get) and load its results."""
    cmd = [sys.executable, "-m", "neuralsmith", "study", "--config", config, "--out", str(out)]
    subprocess.run(cmd + (["--resume"] if resume else []), check=True)
    return json.loads((out / "results.json").read_text())


def table(results: dict) -> list[dict]:
    """One row per depth: the median test error of each start and the pre-training gain."""
    rows: dict[int, dict] = {}
    for r in results["summary"]:
        rows.setdefault(r["depth"], {"depth": r["depth"]})[r["start"]] = r["median"]
    for row in rows.values():
        best_random = min(row[s] for s in RANDOM if s in row)
        best_pre = min(row[s] for s in PRETRAINED if s in row)
        row["gain"] = best_random - best_pre
    return [rows[d] for d in sorted(rows)]


def show(name: str, rows: list[dict]) -> None:
    starts = [s for s in (*RANDOM, *PRETRAINED) if s in rows[0]]
    print(f"\n{name}: median test error (%) over seeds")
    print("depth  " + "  ".join(f"{s:>8s}" for s in starts) + "   gain (best random - best pre-trained)")
    for row in rows:
        print(f"{row['depth']:5d}  " + "  ".join(f"{row[s]:8.2f}" for s in starts) + f"   {row['gain']:+.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=CONFIGS)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "depth")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "depth_effect.json")
    a = p.parse_args()
    figures = json.loads(a.json.read_text()) if a.json.is_file() else {}  # other configs' rows stay
    for config in a.configs.split(","):
        results = run(config, a.out / Path(config).stem, a.resume)
        rows = table(results)
        show(results["spec"]["name"], rows)
        figures[results["spec"]["name"]] = {"config": config, "seeds": results["spec"]["seeds"],
                                            "seconds": results["seconds"], "rows": rows}
    a.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
