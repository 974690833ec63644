"""Speed of a ClassRBM epoch in bf16 against fp32 (issue 21), interleaved round by round.

    python benchmarks/classrbm_speed.py [--n 10000] [--hidden 500] [--batch 20] [--rounds 3]
                                        [--threads 2] [--json FILE]

One epoch of ``train_classrbm`` (CD-1) on the first ``--n`` binarized Fashion-MNIST images per
objective: ``generative`` (all CD), ``hybrid`` (alpha 0.01: the discriminative gradient, fp32 in
both, plus CD) and a 784-500-500 DHBM, hybrid. In bf16 only the generative term's products
run on bf16 copies of the parameters, so the gain is largest where CD dominates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from neuralsmith import data  # noqa: E402
from neuralsmith.hybrid import build, train_hybrid  # noqa: E402
from neuralsmith.rbm.classrbm import ClassRBM, train_classrbm  # noqa: E402

CASES = ("generative", "hybrid", "dhbm")


def epoch(case: str, x: torch.Tensor, y: torch.Tensor, a: argparse.Namespace, precision: str) -> float:
    """Seconds for one epoch of ``case`` in ``precision`` (same seed every time)."""
    g = torch.Generator().manual_seed(0)
    kw = dict(epochs=1, batch_size=a.batch, lr=0.05, precision=precision, generator=g, progress=False)
    if case == "dhbm":
        model = build("dhbm", [x.shape[1], a.hidden, a.hidden], 10, generator=g)
        start = time.perf_counter()
        train_hybrid(model, x, y, objective="hybrid", **kw)
    else:
        model = ClassRBM(x.shape[1], a.hidden, 10, generator=g)
        start = time.perf_counter()
        train_classrbm(model, x, y, objective=case, **kw)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = data.load("fashion-mnist", binarize="threshold")
    x, y = ds.x_train[:a.n].contiguous(), ds.y_train[:a.n].contiguous()
    print(f"{a.n} images, {a.hidden} hidden, batch {a.batch}, {a.threads} threads, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    out = {}
    for case in CASES:
        epoch(case, x[:200], y[:200], a, "bf16")  # warm-up (and the kernels' first compile)
        rounds = [{prec: epoch(case, x, y, a, prec) for prec in ("fp32", "bf16")} for _ in range(a.rounds)]
        ratio = statistics.median(r["fp32"] / r["bf16"] for r in rounds)
        out[case] = {"rounds": rounds, "fp32_over_bf16": ratio}
        print(f"{case:10s} fp32 {min(r['fp32'] for r in rounds):.2f} s, bf16 "
              f"{min(r['bf16'] for r in rounds):.2f} s (best); fp32 / bf16 = {ratio:.2f} (median)", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"args": {**vars(a), "json": None}, "load": os.getloadavg()[0],
                                      "results": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
