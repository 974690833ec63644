"""Speed of DBN pre-training: one CD-1 epoch per layer against the sum of its GEMM floors.

For each layer of the stack, one epoch of ``neuralsmith.rbm.train`` (CD-1, the DBN default
method) on that layer's inputs, timed beside the bare fp32 GEMMs the same epoch needs (five
per batch: data phase, h -> v, v -> h, positive and negative statistics), interleaved in one
run. Prints per-layer seconds, the sum, and ours / floor (target: within 1.3x).

    python benchmarks/dbn_speed.py                                  # 784-500-500-2000, batch 100
    python benchmarks/dbn_speed.py --layers 1000,1000,1000 --batch 10   # the Theano tutorial's DBN

bf16 (issue 21): each round also times the epoch with ``precision="bf16"`` and the same five
GEMMs on bf16 operands (the bf16 floor); reported per layer: fp32 / bf16 and bf16 floor / bf16.

The Theano deep-learning tutorial reports 2.05 minutes per layer-epoch for its 3 x 1000 DBN
(batch 10, CD-1, MNIST): compare with the per-layer seconds printed for that shape.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from neuralsmith import data
from neuralsmith.rbm import RBM, train


def gemm_floor(x: torch.Tensor, n_hidden: int, batch: int, dtype: torch.dtype = torch.float32) -> float:
    """Seconds for the five bare GEMMs per batch of one CD-1 epoch on ``x``, in ``dtype``."""
    n_visible, x = x.shape[1], x.to(dtype)
    w = (torch.randn(n_hidden, n_visible) * 0.01).to(dtype)
    h, v = torch.empty(batch, n_hidden, dtype=dtype), torch.empty(batch, n_visible, dtype=dtype)
    grad = torch.empty(n_hidden, n_visible, dtype=dtype)
    start = time.perf_counter()
    for lo in range(0, len(x), batch):
        xb = x[lo:lo + batch]
        m = len(xb)
        torch.mm(xb, w.t(), out=h[:m])
        torch.mm(h[:m], w, out=v[:m])
        torch.mm(v[:m], w.t(), out=h[:m])
        torch.mm(h[:m].t(), xb, out=grad)
        torch.mm(h[:m].t(), v[:m], out=grad)
    return time.perf_counter() - start


def ours(x: torch.Tensor, n_hidden: int, batch: int, precision: str = "fp32") -> tuple[float, torch.Tensor]:
    """Seconds for one CD-1 epoch of ``rbm.train``, and the layer's mean-field codes."""
    g = torch.Generator().manual_seed(0)
    rbm = RBM.from_data(x, n_hidden, generator=g)
    start = time.perf_counter()
    train(rbm, x, epochs=1, batch_size=batch, lr=0.05, method="cd", generator=g, progress=False,
          precision=precision)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds, rbm.hidden_probs(x)


def time_layer(x: torch.Tensor, n_hidden: int, batch: int, rounds: int):
    """Median seconds (ours, floor, bf16, bf16 floor) over interleaved rounds, after a warm-up;
    the medians of the per-round ratios fp32 / bf16 and bf16 floor / bf16; and the codes."""
    gemm_floor(x[:2000], n_hidden, batch), ours(x[:2000], n_hidden, batch)  # warm-up
    ours(x[:2000], n_hidden, batch, "bf16")
    times = []
    for _ in range(rounds):
        floor, floor16 = gemm_floor(x, n_hidden, batch), gemm_floor(x, n_hidden, batch, torch.bfloat16)
        seconds16 = ours(x, n_hidden, batch, "bf16")[0]
        seconds, codes = ours(x, n_hidden, batch)
        times.append((seconds, floor, seconds16, floor16))
    medians = [statistics.median(t[i] for t in times) for i in range(4)]
    ratios = {"fp32_over_bf16": statistics.median(t[0] / t[2] for t in times),
              "floor_bf16_over_bf16": statistics.median(t[3] / t[2] for t in times)}
    return medians, ratios, codes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="500,500,2000")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the figures here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x = data.load("fashion-mnist").x_train[:a.n]
    sizes = [int(s) for s in a.layers.split(",")]
    print(f"DBN {x.shape[1]}-{a.layers.replace(',', '-')}, CD-1, batch {a.batch}, {len(x)} images, "
          f"{a.threads} threads, median of {a.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    layers = []
    for l, n_hidden in enumerate(sizes, start=1):
        (seconds, floor, seconds16, floor16), ratios, x_next = time_layer(x, n_hidden, a.batch, a.rounds)
        layers.append({"layer": l, "shape": [x.shape[1], n_hidden], "ours": seconds, "floor": floor,
                       "bf16": seconds16, "floor_bf16": floor16, **ratios})
        print(f"layer {l} ({x.shape[1]} -> {n_hidden}): ours {seconds:.2f} s, GEMM floor {floor:.2f} s, "
              f"ratio {seconds / floor:.2f}; bf16 {seconds16:.2f} s, bf16 floor {floor16:.2f} s, "
              f"fp32/bf16 {ratios['fp32_over_bf16']:.2f}, bf16 floor/bf16 "
              f"{ratios['floor_bf16_over_bf16']:.2f}", flush=True)
        x = x_next
    ours_s, floor_s = sum(r["ours"] for r in layers), sum(r["floor"] for r in layers)
    bf16_s, floor16_s = sum(r["bf16"] for r in layers), sum(r["floor_bf16"] for r in layers)
    print(f"all layers, one epoch each: ours {ours_s:.2f} s, sum of floors {floor_s:.2f} s, "
          f"ratio {ours_s / floor_s:.2f}; bf16 {bf16_s:.2f} s (fp32/bf16 {ours_s / bf16_s:.2f}), "
          f"bf16 floors {floor16_s:.2f} s (bf16 floor/bf16 {floor16_s / bf16_s:.2f})")
    if a.json:
        a.json.write_text(json.dumps({"args": vars(a) | {"json": str(a.json)}, "layers": layers,
                                      "ours": ours_s, "floor": floor_s, "ratio": ours_s / floor_s,
                                      "bf16": bf16_s, "floor_bf16": floor16_s,
                                      "load": os.getloadavg()[0],
                                      "torch": torch.__version__}, indent=2) + "\n")


if __name__ == "__main__":
    main()
