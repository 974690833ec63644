"""Many seeds batched into one model vs a Python loop over seeds: one training epoch each.

Prints the seconds per epoch, interleaved in one run, of the loop over seeds, the batched model
with its hand-written backward pass (``neuralsmith.backprop``, what the study runs) and the
batched model by autograd and ``torch.optim.SGD`` (the same numbers, bit for bit), and their ratios.

    python benchmarks/ensemble_speed.py            # digits 64-100-100-10, batch 32, 20 seeds
    python benchmarks/ensemble_speed.py --fashion  # 784-500-500-10, batch 100, 10 seeds
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from neuralsmith import data
from neuralsmith import ensemble
from neuralsmith.backprop import MomentumSGD
from neuralsmith.train import train_epoch


def mlp(sizes, seed):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Sigmoid()]
    return nn.Sequential(*layers[:-1])


def time_loop(models, x, y, batch_size):
    t0 = time.perf_counter()
    for s, model in enumerate(models):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        train_epoch(model, opt, x, y, batch_size, torch.Generator().manual_seed(s))
    return time.perf_counter() - t0


def time_batched(models, x, y, batch_size):
    ens = ensemble.EnsembleMLP.from_models(models)
    sgd = MomentumSGD([p for pair in zip(ens.weights, ens.biases) for p in pair], lr=0.1, momentum=0.9)
    gens = [torch.Generator().manual_seed(s) for s in range(len(models))]
    t0 = time.perf_counter()
    ensemble.train_epoch(ens, sgd, x, y, batch_size, gens)
    return time.perf_counter() - t0


def time_batched_autograd(models, x, y, batch_size):
    ens = ensemble.EnsembleMLP.from_models(models)
    opt = torch.optim.SGD(ens.parameters(), lr=0.1, momentum=0.9, foreach=True)
    gens = [torch.Generator().manual_seed(s) for s in range(len(models))]
    step = ensemble.autograd_step(opt, lambda idx: ensemble.member_losses(ens(x[idx]), y[idx]))
    t0 = time.perf_counter()
    ensemble.batched_epoch(x.shape[0], batch_size, gens, step)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fashion", action="store_true")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.fashion:
        ds, sizes, batch, seeds = data.load("fashion-mnist"), [784, 500, 500, 10], 100, a.seeds or 10
    else:
        ds, sizes, batch, seeds = data.load("digits"), [64, 100, 100, 10], 32, a.seeds or 20
    x, y = ds.x_train, ds.y_train
    times = {"loop": [], "batched": [], "autograd": []}
    for r in range(a.repeats):  # interleaved so all see the same machine load
        for name, f in (("loop", time_loop), ("batched", time_batched), ("autograd", time_batched_autograd)):
            times[name].append(f([mlp(sizes, s) for s in range(seeds)], x, y, batch))
    lm, bm, am = (statistics.median(times[k]) for k in ("loop", "batched", "autograd"))
    print(f"{'-'.join(map(str, sizes))}, batch {batch}, {seeds} seeds, {len(x)} examples, "
          f"{a.threads} threads, load {os.getloadavg()[0]:.1f}")
    print(f"loop over seeds: {lm:.3f} s/epoch   batched: {bm:.3f} s/epoch   speed-up: {lm / bm:.2f}x")
    print(f"batched by autograd: {am:.3f} s/epoch   hand-written backward: {am / bm:.2f}x faster")


if __name__ == "__main__":
    main()
