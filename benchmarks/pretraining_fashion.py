"""Pre-training on Fashion-MNIST: DBN and SdA against PyTorch's default init, one fine-tuning budget.

Fashion-MNIST 60k/10k with 5k of the training set held out for validation; a sigmoid
784-500-500-2000-10 MLP started three ways (Hinton et al. 2006; Vincent et al. 2010), then
fine-tuned with the same SGD budget, best-validation weights kept. Prints one table and writes
``benchmarks/results/pretraining_fashion.json``.

    python benchmarks/pretraining_fashion.py                 # the full run (tens of minutes)
    python benchmarks/pretraining_fashion.py --subset 3000 --pretrain-epochs 1 --epochs 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from neuralsmith import data, nets
from neuralsmith.stack import DBN, StackedDAE, greedy_pretrain_dbn, greedy_pretrain_sda
from neuralsmith.train import finetune

HIDDEN = [500, 500, 2000]


def start(name: str, ds, a, g: torch.Generator) -> torch.nn.Module:
    sizes = [ds.n_features, *HIDDEN]
    if name == "dbn":
        dbn = DBN(sizes, generator=g)
        greedy_pretrain_dbn(dbn, ds.x_train, epochs=a.pretrain_epochs, lr=a.rbm_lr, batch_size=a.pretrain_batch,
                            momentum=0.5, generator=g, progress=a.progress)
        return dbn.to_mlp(ds.n_classes)
    if name == "sda":
        sda = StackedDAE(sizes, levels=[0.1, 0.2, 0.3], generator=g)
        greedy_pretrain_sda(sda, ds.x_train, epochs=a.pretrain_epochs, lr=a.dae_lr, batch_size=a.pretrain_batch,
                            generator=g, progress=a.progress)
        return sda.to_mlp(ds.n_classes)
    return nets.mlp(sizes + [ds.n_classes], "sigmoid", init="default", generator=g)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--starts", default="default,dbn,sda")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--pretrain-batch", type=int, default=20)
    p.add_argument("--rbm-lr", type=float, default=0.05)
    p.add_argument("--dae-lr", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--schedule", default="constant")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--subset", type=int, default=0, help="use only this many training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "pretraining_fashion.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = data.load("fashion-mnist", validation=5000 / 60000, seed=a.seed)
    if a.subset:
        ds = replace(ds, x_train=ds.x_train[:a.subset], y_train=ds.y_train[:a.subset])
    rows = []
    for name in a.starts.split(","):
        g = torch.Generator().manual_seed(a.seed)
        t0 = time.perf_counter()
        model = start(name, ds, a, g)
        t1 = time.perf_counter()
        result = finetune(model, ds, epochs=a.epochs, lr=a.lr, momentum=a.momentum, batch_size=a.batch_size,
                          schedule=a.schedule,
                          generator=g, progress=a.progress)
        m = result.metrics
        rows.append({"start": name, "test_accuracy": 100 - m["test_error"], "valid_accuracy": 100 - m["valid_error"],
                     "best_epoch": m["best_epoch"], "pretrain_s": t1 - t0, "finetune_s": m["seconds"]})
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2) + "\n")
        print(f"{name:8s} test acc {rows[-1]['test_accuracy']:.2f}%  valid acc {rows[-1]['valid_accuracy']:.2f}%  "
              f"best epoch {m['best_epoch']}  pre-train {t1 - t0:.0f} s  fine-tune {m['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
