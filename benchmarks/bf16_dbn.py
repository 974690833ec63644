"""A DBN pre-trained in bf16 against one pre-trained in fp32, both fine-tuned in fp32 (issue 21).

Fashion-MNIST 60k/10k with 5k of the training set held out for validation. For each seed, a
784-500-500 DBN is pre-trained greedily with CD-1 twice from the same generator, once with
``precision="fp32"`` and once with ``precision="bf16"``; each is then dumped into a sigmoid
784-500-500-10 MLP and fine-tuned in fp32 with the same fine-tuning generator, keeping the
best-validation weights. Printed: test accuracy per seed and precision, the per-seed difference
(bf16 - fp32), and the spread of fp32 over seeds, which is what a difference has to be read
against. The learning rates are constant unless ``--rbm-schedule`` / ``--schedule`` anneal them
(linearly or by a cosine, to zero). Writes ``benchmarks/results/bf16_dbn.json`` (or ``--out``).

    python benchmarks/bf16_dbn.py                                   # 3 seeds (about 15 CPU min)
    python benchmarks/bf16_dbn.py --subset 2000 --pretrain-epochs 1 --epochs 1 --seeds 0   # smoke
    python benchmarks/bf16_dbn.py --rbm-schedule linear --schedule linear \
        --out benchmarks/results/bf16_dbn_linear.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from neuralsmith import data
from neuralsmith.stack import DBN, greedy_pretrain_dbn
from neuralsmith.train import SCHEDULES, finetune

HIDDEN = [500, 500]
PRECISIONS = ("fp32", "bf16")


def pretrained(ds: data.Dataset, precision: str, seed: int, a: argparse.Namespace) -> torch.nn.Module:
    """A DBN pre-trained in ``precision`` from ``seed``, as an MLP with a zero output layer."""
    g = torch.Generator().manual_seed(seed)
    dbn = DBN([ds.n_features, *HIDDEN], generator=g)
    greedy_pretrain_dbn(dbn, ds.x_train, epochs=a.pretrain_epochs, lr=a.rbm_lr, batch_size=a.pretrain_batch,
                        momentum=0.5, generator=g, progress=False, precision=precision,
                        schedule=a.rbm_schedule)
    return dbn.to_mlp(ds.n_classes)


def run(ds: data.Dataset, precision: str, seed: int, a: argparse.Namespace) -> dict:
    """Pre-train in ``precision``, fine-tune in fp32; the test accuracy and timings."""
    t0 = time.perf_counter()
    model = pretrained(ds, precision, seed, a)
    t1 = time.perf_counter()
    result = finetune(model, ds, epochs=a.epochs, lr=a.lr, momentum=0.9, batch_size=a.batch_size,
                      schedule=a.schedule, generator=torch.Generator().manual_seed(10_000 + seed),
                      progress=False)
    m = result.metrics
    return {"seed": seed, "precision": precision, "test_accuracy": 100 - m["test_error"],
            "valid_accuracy": 100 - m["valid_error"], "best_epoch": m["best_epoch"],
            "pretrain_s": t1 - t0, "finetune_s": m["seconds"]}


def summarize(rows: list[dict]) -> dict:
    """Per-seed differences bf16 - fp32 and the fp32 spread over seeds."""
    acc = {(r["seed"], r["precision"]): r["test_accuracy"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    diffs = [acc[s, "bf16"] - acc[s, "fp32"] for s in seeds if {(s, "bf16"), (s, "fp32")} <= acc.keys()]
    fp32 = [acc[s, "fp32"] for s in seeds if (s, "fp32") in acc]
    return {"differences": diffs, "mean_difference": statistics.fmean(diffs) if diffs else None,
            "max_abs_difference": max(map(abs, diffs)) if diffs else None,
            "fp32_range": max(fp32) - min(fp32) if fp32 else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--pretrain-batch", type=int, default=20)
    p.add_argument("--rbm-lr", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--rbm-schedule", default="constant", choices=SCHEDULES, help="pre-training lr schedule")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES, help="fine-tuning lr schedule")
    p.add_argument("--subset", type=int, default=0, help="use only this many training images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precisions", default=",".join(PRECISIONS),
                   help="bf16 alone reruns a change that leaves the fp32 path bit for bit as it was")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "bf16_dbn.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = data.load("fashion-mnist", validation=5000 / 60000, seed=0)
    if a.subset:
        ds = replace(ds, x_train=ds.x_train[:a.subset], y_train=ds.y_train[:a.subset])
    rows = []
    for seed in map(int, a.seeds.split(",")):
        for precision in a.precisions.split(","):
            rows.append(run(ds, precision, seed, a))
            r = rows[-1]
            print(f"seed {seed} {precision}: test acc {r['test_accuracy']:.2f}%  best epoch {r['best_epoch']}  "
                  f"pre-train {r['pretrain_s']:.0f} s  fine-tune {r['finetune_s']:.0f} s", flush=True)
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows, "summary": summarize(rows)},
                                              indent=2) + "\n")
    s = summarize(rows)
    if not s["differences"] or s["fp32_range"] is None:
        return
    print(f"bf16 - fp32 per seed: {', '.join(f'{d:+.2f}' for d in s['differences'])} points "
          f"(mean {s['mean_difference']:+.2f}); fp32 range over seeds {s['fp32_range']:.2f}")


if __name__ == "__main__":
    main()
