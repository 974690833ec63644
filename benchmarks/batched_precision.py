"""A study's batched training in fp32 and in bf16: one epoch of S RBMs (CD-1), of S tied DAEs
(masking noise) and of S MLPs fine-tuned, alternated in one run, per shape.

The shapes: the default study's (digits, 64 -> 100, batch 10, 10 seeds), ``configs/erhan2010.toml``'s
first layer (784 -> 256, batch 10, 10 seeds, on a 10 000-image Fashion-MNIST-sized input) and the
paper's widths (784 -> 1000, batch 10, and batch 100); for fine-tuning, the default study's
depth-3 trial (digits 64-100-100-100-10, batch 32, 10 seeds, its evaluation of the three splits
included; bf16 is autocast). The pre-training inputs are binary noise of Fashion-MNIST's
mean density: the time of an epoch does not depend on what the pixels show. Each round also
times the *floor*: the epoch's batched products alone (``torch.bmm`` on operands of the same
shapes, made once), in each dtype. Prints seconds per epoch, fp32 / bf16 and each precision's
fraction of its floor, and writes ``benchmarks/results/batched_precision.json``.

    python benchmarks/batched_precision.py --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from neuralsmith import data, nets, precision
from neuralsmith.autoencoder import DenoisingAutoencoder
from neuralsmith.ensemble import EnsembleMLP, finetune_ensemble, train_daes, train_rbms
from neuralsmith.rbm import RBM

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: (visible, hidden, batch size, seeds, rows)
    "digits 64-100, batch 10 (default study)": (64, 100, 10, 10, 1146),
    "784-256, batch 10 (erhan2010.toml)": (784, 256, 10, 10, 10000),
    "784-1000, batch 10": (784, 1000, 10, 10, 5000),
    "784-1000, batch 100": (784, 1000, 100, 10, 5000),
}


def epoch_seconds(kind: str, name: str, visible: int, hidden: int, batch: int, seeds: int,
                  x: torch.Tensor) -> float:
    """Seconds of one epoch of ``seeds`` RBMs or DAEs trained together in precision ``name``."""
    gens = [torch.Generator().manual_seed(s) for s in range(seeds)]
    t0 = time.perf_counter()
    if kind == "rbm":
        rbms = [RBM(visible, hidden, generator=torch.Generator().manual_seed(s)) for s in range(seeds)]
        train_rbms(rbms, x, gens, epochs=1, lr=0.05, batch_size=batch, precision=name)
    else:
        daes = [DenoisingAutoencoder(visible, hidden, generator=torch.Generator().manual_seed(s))
                for s in range(seeds)]
        train_daes(daes, x, gens, epochs=1, lr=0.1, batch_size=batch, precision=name)
    return time.perf_counter() - t0


def finetune_seconds(name: str, ds: data.Dataset, seeds: int) -> float:
    """Seconds of one fine-tuning epoch (with its evaluation) of ``seeds`` depth-3 digits MLPs."""
    models = [nets.mlp([64, 100, 100, 100, 10], "sigmoid", generator=torch.Generator().manual_seed(s))
              for s in range(seeds)]
    ens = EnsembleMLP.from_models(models)
    t0 = time.perf_counter()
    finetune_ensemble(ens, ds, [torch.Generator().manual_seed(s) for s in range(seeds)], epochs=1,
                      precision=name, progress=False)
    return time.perf_counter() - t0


def mlp_products(ds: data.Dataset, sizes: list[int], batch: int, seeds: int) -> list[tuple[tuple[int, ...], ...]]:
    """An epoch's products of fine-tuning: per update each layer's forward, weight gradient and
    (but the first) input gradient; then the evaluation's forward passes, 1 000 rows at a time."""
    S, layers = seeds, list(zip(sizes[:-1], sizes[1:]))
    ops = []
    for i in range(0, len(ds.x_train), batch):
        B = min(batch, len(ds.x_train) - i)
        ops += [((S, B, a), (S, a, b)) for a, b in layers] + [((S, a, B), (S, B, b)) for a, b in layers]
        ops += [((S, B, b), (S, b, a)) for a, b in layers[1:]]
    for n in (len(ds.x_train), len(ds.x_valid), len(ds.x_test)):
        ops += [((S, min(1000, n - i), a), (S, a, b)) for i in range(0, n, 1000) for a, b in layers]
    return ops


def timed_products(shapes: list[tuple[tuple[int, ...], ...]], dtype: torch.dtype) -> float:
    """Seconds of ``torch.bmm`` over ``shapes`` in order, on operands made once per distinct shape."""
    made = {shape: (torch.rand(shape[0]).to(dtype), torch.rand(shape[1]).to(dtype)) for shape in set(shapes)}
    t0 = time.perf_counter()
    for shape in shapes:
        torch.bmm(*made[shape])
    return time.perf_counter() - t0


def products(kind: str, visible: int, hidden: int, batch: int, seeds: int) -> list[tuple[tuple[int, ...], ...]]:
    """The (S, m, k) x (S, k, n) products of one update: CD-1's three conditionals and its one
    weight statistic over the stacked 2B rows; the DAE's encoder, decoder, decoder backward and
    the tied weight's two gradient products."""
    S, B, v, h = seeds, batch, visible, hidden
    if kind == "rbm":
        return [((S, B, v), (S, v, h)), ((S, B, h), (S, h, v)), ((S, B, v), (S, v, h)), ((S, h, 2 * B), (S, 2 * B, v))]
    return [((S, B, v), (S, v, h)), ((S, B, h), (S, h, v)), ((S, B, v), (S, v, h)), ((S, h, B), (S, B, v)),
            ((S, v, B), (S, B, h))]


def floor_seconds(kind: str, dtype: torch.dtype, visible: int, hidden: int, batch: int, seeds: int,
                  rows: int) -> float:
    """Seconds of an epoch's products alone (``rows / batch`` updates), on operands made once."""
    return timed_products(products(kind, visible, hidden, batch, seeds) * -(-rows // batch), dtype)


def report(name: str, rounds: list[dict[str, float]], results: dict) -> None:
    """Print and keep a case's rounds: fp32 / bf16 and each precision's fraction of its floor (medians)."""
    med = {k: statistics.median(v) for k, v in {
        "fp32_over_bf16": [r["fp32"] / r["bf16"] for r in rounds],
        "fp32_floor_fraction": [r["fp32_floor"] / r["fp32"] for r in rounds],
        "bf16_floor_fraction": [r["bf16_floor"] / r["bf16"] for r in rounds]}.items()}
    results[name] = {"rounds": rounds, "medians": med}
    best = {n: min(r[n] for r in rounds) for n in rounds[0]}
    print(f"{name}: best s " + ", ".join(f"{n} {v:.2f}" for n, v in best.items())
          + f"; fp32 / bf16 {med['fp32_over_bf16']:.2f}x, of the floor: fp32 "
          f"{med['fp32_floor_fraction']:.2f}, bf16 {med['bf16_floor_fraction']:.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (a study runs trials on one)")
    p.add_argument("--kinds", default="rbm,dae,finetune", help="which of rbm, dae, finetune to time")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batched_precision.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if not precision.has_fast_bf16():
        raise SystemExit("this CPU has no fast bf16 (avx512_bf16 / amx_bf16): nothing to compare")
    results = {}
    for case, (visible, hidden, batch, seeds, rows) in CASES.items():
        x = (torch.rand(rows, visible, generator=torch.Generator().manual_seed(0)) < 0.38).float()
        for kind in [k for k in ("rbm", "dae") if k in a.kinds.split(",")]:
            epoch_seconds(kind, "bf16", visible, hidden, batch, seeds, x[:batch * 4])  # warm up
            rounds = []
            for _ in range(a.rounds):
                r = {name: epoch_seconds(kind, name, visible, hidden, batch, seeds, x) for name in ("fp32", "bf16")}
                for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                    r[f"{name}_floor"] = floor_seconds(kind, dtype, visible, hidden, batch, seeds, rows)
                rounds.append(r)
            report(f"{kind}: {case}", rounds, results)
    if "finetune" in a.kinds.split(","):
        finetune_rows(a.rounds, results)
    a.out.write_text(json.dumps({"threads": a.threads, "load": os.getloadavg()[0], "cases": results},
                                indent=2) + "\n")


def finetune_rows(rounds_wanted: int, results: dict) -> None:
    """The default study's depth-3 fine-tuning epoch in both precisions, with its floors."""
    ds, seeds = data.load("digits", validation=0.15, seed=0), 10
    finetune_seconds("bf16", ds, seeds)  # warm up
    rounds = []
    for _ in range(rounds_wanted):
        r = {name: finetune_seconds(name, ds, seeds) for name in ("fp32", "bf16")}
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            r[f"{name}_floor"] = timed_products(mlp_products(ds, [64, 100, 100, 100, 10], 32, seeds), dtype)
        rounds.append(r)
    report("fine-tuning: digits 64-100-100-100-10, batch 32, 10 seeds (default study, depth 3)", rounds, results)


if __name__ == "__main__":
    main()
