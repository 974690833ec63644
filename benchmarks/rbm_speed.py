"""Speed of one PCD epoch, 784 -> 500, on Fashion-MNIST: neuralsmith vs scikit-learn vs the GEMM floor.

    python benchmarks/rbm_speed.py [--n 60000] [--n-small 10000] [--rounds 3] [--threads 2]
                                   [--configs main,batch10,k15]

Configurations:

* ``main``: PCD-1, batch 100, on ``--n`` images (the acceptance case), against
  ``sklearn.neural_network.BernoulliRBM(n_components=500, batch_size=100)``, which is PCD-1
  with the same updates (plain SGD: no momentum, no weight decay; learning rate 0.05).
* ``batch10``: the same with batch 10 (sklearn too), on ``--n-small`` images.
* ``k15``: PCD-15, batch 100, on ``--n-small`` images; sklearn has no k, so only the floor.

The *floor* is the bare fp32 GEMMs a PCD-k update needs, timed with ``torch.mm`` into
preallocated outputs over the same batches: one for the data phase, two per Gibbs step, two
for the weight statistics (five batch x 784 x 500 products for k = 1). ``floor / ours`` is the
fraction of the machine's GEMM throughput our whole training loop reaches.

bf16 rows (issue 21): ``bf16`` is the same epoch with ``precision="bf16"`` (bfloat16 products,
fp32 accumulation and weights), ``floor_bf16`` the same bare GEMMs on bf16 operands. Every
round times fp32 floor, bf16 floor, ours fp32, ours bf16 and scikit-learn back to back;
reported are ``sklearn / bf16`` (target >= 3x for ``main``), ``fp32 / bf16`` and
``floor_bf16 / bf16`` (the fraction of the bf16 GEMM floor reached).

Whole epochs through the public APIs (``neuralsmith.rbm.train`` for one epoch,
``BernoulliRBM.fit`` with ``n_iter=1``), interleaved round by round, since the machine is
shared and its speed drifts by tens of percent within minutes. Reported: the median of the
per-round ratios and the ratio of the best (least disturbed) times. After each scikit-learn
epoch the script pauses a second, untimed: OpenBLAS threads keep spinning for a while after
a call and would otherwise slow the torch timing that follows (interleaving batch by batch
was tried and dropped for that reason).

Threads: ``torch.set_num_threads`` and, for scikit-learn's OpenBLAS, ``threadpoolctl``. The
environment may set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow numpy's BLAS down; both
are unset below, before numpy is first imported, so that scikit-learn gets a fair timing.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy is imported (see above)
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import _fashion  # noqa: E402

from neuralsmith.rbm import RBM, train  # noqa: E402

N_HIDDEN, LR = 500, 0.05
CONFIGS = {"main": (100, 1, True), "batch10": (10, 1, True), "k15": (100, 15, False)}


class Floor:
    """The bare GEMMs of PCD-k updates (3 + 2k per batch), into preallocated outputs."""

    def __init__(self, n_visible: int, batch: int, k: int, dtype: torch.dtype = torch.float32):
        g = torch.Generator().manual_seed(0)
        self.k = k
        self.w = (torch.randn(N_HIDDEN, n_visible, generator=g) * 0.01).to(dtype)
        self.h0 = (torch.rand(batch, N_HIDDEN, generator=g) < 0.5).to(dtype)
        self.vk = (torch.rand(batch, n_visible, generator=g) < 0.3).to(dtype)
        kw = {"dtype": dtype}
        self.out_h, self.out_v = torch.empty(batch, N_HIDDEN, **kw), torch.empty(batch, n_visible, **kw)
        self.grad = torch.empty(N_HIDDEN, n_visible, **kw)

    def step(self, v: torch.Tensor) -> None:
        n, w = len(v), self.w
        torch.mm(v, w.t(), out=self.out_h[:n])  # data phase
        for _ in range(self.k):
            torch.mm(self.h0, w, out=self.out_v)  # h -> v
            torch.mm(self.vk, w.t(), out=self.out_h)  # v -> h
        torch.mm(self.out_h[:n].t(), v, out=self.grad)  # positive statistics
        torch.mm(self.out_h.t(), self.vk, out=self.grad)  # negative statistics


def _sklearn_rbm(batch: int):
    from sklearn.neural_network import BernoulliRBM

    return BernoulliRBM(n_components=N_HIDDEN, batch_size=batch, n_iter=1, learning_rate=LR,
                        random_state=0)


def _blas_threads(threads: int):
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(threads)
    except ImportError:  # without it, OpenBLAS uses its default thread count
        return contextlib.nullcontext()


def epoch_floor(x: torch.Tensor, batch: int, k: int, dtype: torch.dtype = torch.float32) -> float:
    floor = Floor(x.shape[1], batch, k, dtype)
    x = x.to(dtype)
    start = time.perf_counter()
    for lo in range(0, len(x), batch):
        floor.step(x[lo:lo + batch])
    return time.perf_counter() - start


def epoch_ours(x: torch.Tensor, batch: int, k: int, precision: str = "fp32") -> float:
    g = torch.Generator().manual_seed(0)
    rbm = RBM(x.shape[1], N_HIDDEN, generator=g)
    start = time.perf_counter()
    train(rbm, x, epochs=1, batch_size=batch, lr=LR, k=k, method="pcd", momentum=0.0,
          weight_decay=0.0, generator=g, progress=False, precision=precision)
    return time.perf_counter() - start


def epoch_sklearn(x_np: np.ndarray, batch: int, threads: int) -> float:
    est = _sklearn_rbm(batch)
    with _blas_threads(threads):
        start = time.perf_counter()
        est.fit(x_np)
        return time.perf_counter() - start


def by_epochs(x: torch.Tensor, batch: int, k: int, with_sklearn: bool, rounds: int,
              threads: int, name: str) -> list[dict]:
    rows = []
    for r in range(rounds):
        row = {"floor": epoch_floor(x, batch, k), "floor_bf16": epoch_floor(x, batch, k, torch.bfloat16),
               "ours": epoch_ours(x, batch, k), "bf16": epoch_ours(x, batch, k, "bf16")}
        if with_sklearn:
            row["sklearn"] = epoch_sklearn(x.numpy(), batch, threads)
            time.sleep(1.0)  # let OpenBLAS's spinning threads park before torch is timed
        rows.append(row)
        _print_round(name, r, row)
    return rows


def _print_round(name: str, r: int, row: dict) -> None:
    print(f"  [{name}] round {r + 1}: " + ", ".join(f"{k} {v:.3f}s" for k, v in row.items()),
          flush=True)


def summarize(name: str, n: int, batch: int, k: int, rows: list[dict]) -> dict:
    """Median of the per-round ratios, and the ratio of the best (least disturbed) times."""
    best = {key: min(r[key] for r in rows) for key in rows[0]}
    out = {"config": name, "n": n, "batch": batch, "k": k, "rounds": rows, "best_seconds": best,
           "floor_over_ours": statistics.median(r["floor"] / r["ours"] for r in rows),
           "floor_over_ours_best": best["floor"] / best["ours"]}
    pairs = {"fp32_over_bf16": ("ours", "bf16"), "floor_bf16_over_bf16": ("floor_bf16", "bf16")}
    if "sklearn" in rows[0]:
        pairs |= {"sklearn_over_ours": ("sklearn", "ours"), "sklearn_over_bf16": ("sklearn", "bf16")}
    for name, (a, b) in pairs.items():
        out[name] = statistics.median(r[a] / r[b] for r in rows)
        out[name + "_best"] = best[a] / best[b]
    return out


def gemm_rate() -> float:
    """The machine's best fp32 GEMM rate now (GFLOP/s) on one 100 x 784 x 500 product."""
    a, b = torch.rand(100, 784), torch.rand(784, 500)
    out = torch.empty(100, 500)
    best = float("inf")
    for _ in range(50):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * 100 * 784 * 500 / best / 1e9


def _report(results: list[dict]) -> None:
    print("ratios: median over rounds [best time over best time]")
    for res in results:
        line = f"{res['config']:8s} n={res['n']} batch={res['batch']} k={res['k']}: " \
               f"floor/ours = {res['floor_over_ours']:.2f} [{res['floor_over_ours_best']:.2f}]"
        for key in ("sklearn_over_ours", "fp32_over_bf16", "floor_bf16_over_bf16", "sklearn_over_bf16"):
            if key in res:
                line += f", {key.replace('_over_', '/')} = {res[key]:.2f} [{res[key + '_best']:.2f}]"
        best = ", ".join(f"{k} {v:.3f}" for k, v in res["best_seconds"].items())
        print(line + f"  (best s: {best})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=60000, help="training images for 'main'")
    p.add_argument("--n-small", type=int, default=10000, help="images for batch10 and k15")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", default="main,batch10,k15")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x_all, _ = _fashion.load()
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"best single-GEMM rate now {gemm_rate():.0f} GFLOP/s, load {os.getloadavg()[0]:.1f}")
    results = []
    for name in args.configs.split(","):
        batch, k, with_sklearn = CONFIGS[name]
        x = x_all[: args.n if name == "main" else args.n_small].contiguous()
        by_epochs(x[: batch * 20], batch, k, with_sklearn, 1, args.threads, name + " warm-up")
        rows = by_epochs(x, batch, k, with_sklearn, args.rounds, args.threads, name)
        results.append(summarize(name, len(x), batch, k, rows))
    _report(results)
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "load": os.getloadavg()[0],
                                         "torch": torch.__version__,
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
