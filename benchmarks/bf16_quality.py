"""Quality parity of bf16 training: a 784 x 500 RBM, CD-1, bf16 vs fp32 from the same seed.

    python benchmarks/bf16_quality.py [--n 60000] [--epochs 20] [--runs 100] [--steps 14500]
                                      [--json benchmarks/results/bf16_quality.json]

Both models start from the same initialization and see the same batches (one seed; the
Gibbs draws differ once a bf16 probability rounds across a uniform). log Z of each comes from
AIS (Salakhutdinov & Murray, 2008: 14 500 temperatures, 100 runs, base rates of the training
data), and the test log-likelihood is averaged over the 10 000 binarized Fashion-MNIST test
images. The acceptance (issue 21): the two within 1 nat. ``--seeds 0,1`` adds an fp32 run
from another seed, for the spread that seeds alone give.

``--ais-repeats K`` runs AIS K times per model from different generators (the first as
without it): each repeat's test log-likelihood, and the one of all K x ``--runs`` importance
weights pooled (an AIS of K x runs runs). A single 100-run estimate can sit several nats from
another of the same model, more than the standard error it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _fashion  # noqa: E402

from neuralsmith.rbm import RBM, ais_log_partition, default_betas, log_likelihood, train  # noqa: E402
from neuralsmith.rbm.partition import ais_result  # noqa: E402


def fit_and_score(precision: str, seed: int, x: torch.Tensor, x_test: torch.Tensor, args) -> dict:
    """Train one RBM in ``precision`` from ``seed``; its AIS test log-likelihood and timings."""
    g = torch.Generator().manual_seed(seed)
    rbm = RBM.from_data(x, 500, generator=g)
    if precision == "fp64":  # the same start, draws and updates, rounded at 2^-53
        rbm, x = rbm.double(), x.double()
    start = time.perf_counter()
    hist = train(rbm, x, epochs=args.epochs, method="cd", k=1, lr=args.lr, momentum=0.5,
                 weight_decay=1e-4, batch_size=100, generator=g, progress=False,
                 precision="fp32" if precision == "fp64" else precision, schedule=args.schedule)
    rbm, x = rbm.float(), x.float()  # scored in fp32 like the others
    t_train, start = time.perf_counter() - start, time.perf_counter()
    row = {"precision": precision, "seed": seed, "weight_dtype": str(rbm.weight.dtype),
           **scored(rbm, x, x_test, seed, args),
           "reconstruction_error": hist[-1]["reconstruction_error"]}
    row["seconds"] = {"train": round(t_train, 1), "ais": round(time.perf_counter() - start, 1)}
    return row


def scored(rbm: RBM, x: torch.Tensor, x_test: torch.Tensor, seed: int, args) -> dict:
    """Test log-likelihood by AIS, ``--ais-repeats`` times from different generators: the first
    estimate (with its 3-sigma range), and with repeats each one and all of them pooled."""
    betas = default_betas(args.steps)
    ests = [ais_log_partition(rbm, n_runs=args.runs, betas=betas, data=x,
                              generator=torch.Generator().manual_seed(1000 + seed + 10000 * i))
            for i in range(args.ais_repeats)]
    est = ests[0]
    out = {"test_log_likelihood": log_likelihood(rbm, x_test, est.log_z),
           "test_ll_range_3sigma": [log_likelihood(rbm, x_test, est.upper),
                                    log_likelihood(rbm, x_test, est.lower)],
           "log_z": est.log_z, "log_z_std": est.std}
    if len(ests) > 1:
        pooled = ais_result(torch.cat([e.log_weights for e in ests]), est.log_z_base)
        out["ais_repeats"] = [{"log_z": e.log_z, "log_z_std": e.std,
                               "test_log_likelihood": log_likelihood(rbm, x_test, e.log_z)} for e in ests]
        out["test_log_likelihood_pooled"] = log_likelihood(rbm, x_test, pooled.log_z)
    return out


def _gaps(rows: list[dict]) -> dict:
    """bf16 (or fp64) minus fp32 of the first seed: the first AIS estimates, and pooled ones."""
    out = {"bf16_minus_fp32": rows[0]["test_log_likelihood"] - rows[1]["test_log_likelihood"]}
    if "test_log_likelihood_pooled" in rows[0]:
        out["bf16_minus_fp32_pooled"] = (rows[0]["test_log_likelihood_pooled"]
                                         - rows[1]["test_log_likelihood_pooled"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--schedule", default="constant", help="constant, or linear / cosine decay to 0")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--steps", type=int, default=14500)
    p.add_argument("--ais-repeats", type=int, default=1, help="AIS estimates per model, pooled")
    p.add_argument("--seeds", default="0", help="fp32 seeds; bf16 runs from the first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16-only", action="store_true",
                   help="bf16 from every seed and no fp32 (fp32 rows of unchanged code: earlier files)")
    p.add_argument("--fp64", action="store_true",
                   help="fp64 and fp32 from the first seed: how far rounding alone moves a pair")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x_train, x_test = _fashion.load(binarize=True)
    x = x_train[: args.n].contiguous()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"784 x 500 RBM, CD-1, {len(x)} images, {args.epochs} epochs, lr {args.lr}; AIS "
          f"{args.runs} runs x {args.steps} temperatures; load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    runs = [("bf16", s) for s in seeds] if args.bf16_only else \
        [("fp64", seeds[0]), ("fp32", seeds[0])] if args.fp64 else \
        [("bf16", seeds[0])] + [("fp32", s) for s in seeds]
    for precision, seed in runs:
        rows.append(fit_and_score(precision, seed, x, x_test, args))
        r = rows[-1]
        print(f"{precision} seed {seed}: test log-lik {r['test_log_likelihood']:.2f} nats "
              f"(log Z {r['log_z']:.2f} +- {r['log_z_std']:.3f}), rec {r['reconstruction_error']:.4f}, "
              f"{r['seconds']}", flush=True)
        if "ais_repeats" in r:
            print(f"  AIS repeats: {[round(a['test_log_likelihood'], 2) for a in r['ais_repeats']]}, "
                  f"pooled {r['test_log_likelihood_pooled']:.2f}", flush=True)
    gaps = {"bf16_minus_fp32": None} if args.bf16_only else _gaps(rows)
    for name, gap in gaps.items():
        if gap is not None:
            print(f"{runs[0][0]} - fp32 (seed {seeds[0]}), {name}: {gap:+.2f} nats (acceptance for bf16: within 1)")
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": None}, "rows": rows, **gaps,
                                         "load": os.getloadavg()[0], "torch": torch.__version__},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
