"""A 2-layer DBM on binarized Fashion-MNIST: its likelihood bound against a DBN's and an RBM's, and its MLP.

    python benchmarks/dbm_fashion.py                   # the measured run (about 20 min on 2 cores)
    python benchmarks/dbm_fashion.py --subset 1000 --pretrain-epochs 1 --joint-epochs 1 \\
        --finetune-epochs 1 --seeds 1 --ais-steps 200   # smoke

Sized for two CPU cores, far below Salakhutdinov & Hinton (2009) (784-500-1000, 60 000
images, hundreds of epochs): every model sees the same ``--subset`` binarized training
images (thresholded at 0.5), batches of 100, and each layer the same number of passes over
the data, ``P + J``:

* DBM 784-250-250: greedy pre-training of the paper's doubled RBMs (CD-1, ``P`` epochs per
  layer, lr 0.05), then ``J`` epochs of joint training (mean field, 10 sweeps; 100 persistent
  chains, 5 Gibbs sweeps per update; lr 0.005 decreased linearly to 0).
* DBN 784-250-250 and RBM 784-250: the same layer trainer as the DBM's pre-training (CD-1,
  lr 0.05, momentum 0.5; the same seed, so the RBM is the DBN's first layer), ``P + J`` epochs
  per RBM. The comparison thus isolates what makes a DBM: the doubled RBMs and joint training.

**Likelihood** (10 000 test images): log Z by AIS (100 runs, ``--ais-steps`` temperatures
spaced as Salakhutdinov & Murray 2008, base rates of the training images; the DBM also with
``--dbm-ais-steps``, the paper's 20 000); the RBM's
log-likelihood is then exact given log Z; the DBN's is the variational bound
:math:`E_{q(h^1|v)}[\\log p(v|h^1) + \\log p(h^1) - \\log q(h^1|v)]`, estimated with 10 samples
of :math:`h^1` per image (Salakhutdinov & Murray 2008); the DBM's is the mean-field bound
(:func:`neuralsmith.rbm.dbm_ais.variational_bound`).

**Classification**: a sigmoid 784-250-250-10 MLP started from the DBM (plain weights:
``DBM.to_mlp()``; and ``dbm-aug``, the paper's network fed ``[v, q(h^2|v)]``), the DBN, a
stacked DAE (masking 0.2, ``P + J`` epochs per layer, lr 0.1) and PyTorch's default init;
every one fine-tuned by the same budget (SGD lr 0.1, momentum 0.9, batch 50,
``--finetune-epochs``, the best-validation epoch kept; 1 000 of the subset held out) on
``--seeds`` seeds; medians of the test accuracy. Seed 0's pre-trained DBM and DBN are the
ones scored for likelihood. Writes ``benchmarks/results/dbm_fashion.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from neuralsmith import data, nets
from neuralsmith.rbm import RBM, ais_log_partition, default_betas, log_likelihood, train
from neuralsmith.rbm import dbm_ais
from neuralsmith.rbm.dbm import DBM
from neuralsmith.rbm.dbm_learning import Settings
from neuralsmith.rbm.dbm_learning import train as train_dbm
from neuralsmith.stack import DBN, StackedDAE, greedy_pretrain_dbn, greedy_pretrain_sda
from neuralsmith.train import finetune

RESULTS = Path(__file__).parent / "results"


def pretrain(name: str, x: torch.Tensor, a, seed: int) -> tuple[torch.nn.Module, float]:
    """The pre-trained model ``name`` (rbm, dbn, sda, dbm) on rows ``x``, and its seconds."""
    g, t = torch.Generator().manual_seed(seed), time.perf_counter()
    sizes, epochs = [x.shape[1], *a.arch], a.pretrain_epochs + a.joint_epochs
    if name == "rbm":
        model = RBM.from_data(x, a.arch[0], generator=g)
        train(model, x, epochs=epochs, method="cd", lr=0.05, batch_size=100, generator=g, progress=a.progress)
    elif name == "dbn":
        model = DBN(sizes, generator=g)
        greedy_pretrain_dbn(model, x, epochs=epochs, method="cd", lr=0.05, batch_size=100, generator=g,
                            progress=a.progress)
    elif name == "sda":
        model = StackedDAE(sizes, levels=0.2, generator=g)
        greedy_pretrain_sda(model, x, epochs=epochs, lr=0.1, batch_size=100, generator=g, progress=a.progress)
    else:
        model = DBM(sizes, generator=g)
        train_dbm(model, x, Settings(pretrain_epochs=a.pretrain_epochs, epochs=a.joint_epochs), generator=g,
                  progress=a.progress)
    return model, time.perf_counter() - t


def _bernoulli_log_prob(v: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, v, reduction="none").sum(-1)


@torch.no_grad()
def dbn_bound(dbn: DBN, x: torch.Tensor, log_z_top: float, samples: int, g: torch.Generator) -> float:
    """Mean over rows of the sampled bound E_q[log p(v|h1) + log p(h1) - log q(h1|v)]."""
    bottom, top = dbn.rbms[0], dbn.rbms[1]
    q_logits = bottom.hidden_input(x)
    total = torch.zeros(len(x), dtype=torch.float64)
    for _ in range(samples):
        h = torch.bernoulli(torch.sigmoid(q_logits), generator=g)
        log_p_v = _bernoulli_log_prob(x, bottom.visible_input(h))
        log_p_h = -top.free_energy(h) - log_z_top
        total += (log_p_v + log_p_h - _bernoulli_log_prob(h, q_logits)).double()
    return float(total.mean()) / samples


def _score(name: str, model, x: torch.Tensor, x_test: torch.Tensor, steps: int, a) -> tuple:
    """(AIS estimate, test log-likelihood or bound given a log Z) of one model."""
    g, betas = torch.Generator().manual_seed(1), default_betas(steps)
    if name == "rbm":
        est = ais_log_partition(model, n_runs=a.ais_runs, betas=betas, data=x, generator=g)
        return est, lambda log_z: log_likelihood(model, x_test, log_z)
    if name == "dbn":  # the top RBM's log Z; its visible base rates from E[h1 | v]
        est = ais_log_partition(model.rbms[1], n_runs=a.ais_runs, betas=betas,
                                data=model.rbms[0].hidden_probs(x), generator=g)
        return est, lambda log_z: dbn_bound(model, x_test, log_z, 10, torch.Generator().manual_seed(2))
    est = dbm_ais.ais_log_partition(model, n_runs=a.ais_runs, betas=betas, data=x, generator=g)
    bound = float(dbm_ais.variational_bound(model, x_test, 0.0).mean())
    return est, lambda log_z: bound - log_z


def likelihoods(models: dict, x: torch.Tensor, x_test: torch.Tensor, a) -> list[dict]:
    """AIS log Z and the test log-likelihood (or its bound) of the RBM, the DBN and the DBM.

    The DBM is also annealed with ``--dbm-ais-steps`` temperatures (the paper's 20 000): the
    estimate's move between the two counts shows how far AIS is from converged.
    """
    rows = []
    for name, steps in [("rbm", a.ais_steps), ("dbn", a.ais_steps), ("dbm", a.ais_steps), ("dbm", a.dbm_ais_steps)]:
        if name == "dbm" and steps == a.ais_steps and rows and rows[-1]["model"] == "dbm":
            continue
        model, seconds = models[name]
        t = time.perf_counter()
        est, ll_at = _score(name, model, x, x_test, steps, a)
        rows.append({"model": name, "ais_steps": steps, "test_log_likelihood": ll_at(est.log_z),
                     "test_log_likelihood_low": ll_at(est.upper),  # log Z at +3 sigma
                     "kind": "exact given log Z" if name == "rbm" else "lower bound",
                     "log_z": est.log_z, "log_z_std": est.std, "train_seconds": round(seconds, 1),
                     "ais_seconds": round(time.perf_counter() - t, 1)})
        r = rows[-1]
        print(f"{name}: test log-lik {r['test_log_likelihood']:.2f} nats ({r['kind']}; {steps} temperatures), "
              f"log Z {est.log_z:.2f} ± {est.std:.3f}, train {seconds:.0f} s, AIS {r['ais_seconds']:.0f} s", flush=True)
    return rows


def mlp_for(start: str, model, ds, seed: int) -> torch.nn.Module:
    if start == "default":
        return nets.mlp([ds.n_features, *ARCH, ds.n_classes], "sigmoid", init="default",
                        generator=torch.Generator().manual_seed(seed))
    if start == "dbm-aug":
        return model.to_mlp(ds.n_classes, augment=True, mean_field_iters=10)
    return model.to_mlp(ds.n_classes)


def classification(ds, models_by_seed: dict, a) -> list[dict]:
    """Fine-tune every start on every seed with one budget; one row per (start, seed)."""
    rows = []
    for seed, models in models_by_seed.items():
        for start in a.starts.split(","):
            base = start.split("-")[0]
            mlp = mlp_for(start, models.get(base, (None, 0.0))[0], ds, seed)
            r = finetune(mlp, ds, epochs=a.finetune_epochs, lr=0.1, momentum=0.9, batch_size=50,
                         generator=torch.Generator().manual_seed(seed), progress=a.progress).metrics
            rows.append({"start": start, "seed": seed, "test_accuracy": 100 - r["test_error"],
                         "best_epoch": r["best_epoch"], "pretrain_seconds": round(models.get(base, (None, 0.0))[1], 1),
                         "finetune_seconds": round(r["seconds"], 1)})
            print(f"seed {seed} {start:8s} test acc {rows[-1]['test_accuracy']:.2f}%  "
                  f"fine-tune {r['seconds']:.0f} s", flush=True)
    return rows


def medians(rows: list[dict]) -> list[dict]:
    out = []
    for start in dict.fromkeys(r["start"] for r in rows):
        mine = [r for r in rows if r["start"] == start]
        out.append({"start": start, "median_test_accuracy": statistics.median(r["test_accuracy"] for r in mine),
                    "accuracies": [round(r["test_accuracy"], 2) for r in mine],
                    "median_pretrain_seconds": statistics.median(r["pretrain_seconds"] for r in mine),
                    "median_finetune_seconds": statistics.median(r["finetune_seconds"] for r in mine)})
    return out


def markdown(result: dict) -> str:
    a = result["args"]
    lines = [f"# DBM on binarized Fashion-MNIST ({a['subset']} training images, arch 784-{'-'.join(map(str, a['arch']))})",
             "", f"`{result['command']}`; total {result['total_seconds']:.0f} s.", "",
             "| model | test log-likelihood (nats) | at log Z + 3 sigma | kind | AIS temperatures | log Z ± std | train s | AIS s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['test_log_likelihood']:.2f} | {r['test_log_likelihood_low']:.2f} | {r['kind']} "
              f"| {r['ais_steps']} | {r['log_z']:.2f} ± {r['log_z_std']:.3f} | {r['train_seconds']} | {r['ais_seconds']} |"
              for r in result["likelihood"]]
    lines += ["", f"Fine-tuned 784-{'-'.join(map(str, a['arch']))}-10 MLPs, {a['finetune_epochs']} epochs, seeds {a['seeds']}:", "",
              "| start | median test accuracy (%) | per seed | pre-train s | fine-tune s |", "|---|---|---|---|---|"]
    lines += [f"| {r['start']} | {r['median_test_accuracy']:.2f} | {r['accuracies']} | {r['median_pretrain_seconds']} "
              f"| {r['median_finetune_seconds']} |" for r in result["classification"]]
    return "\n".join(lines) + "\n"


ARCH: list[int] = []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="250,250")
    p.add_argument("--subset", type=int, default=10000, help="training images (binarized)")
    p.add_argument("--pretrain-epochs", type=int, default=5, help="P: greedy epochs per DBM layer")
    p.add_argument("--joint-epochs", type=int, default=5, help="J: DBM joint epochs (others get P + J)")
    p.add_argument("--ais-runs", type=int, default=100)
    p.add_argument("--ais-steps", type=int, default=5000)
    p.add_argument("--dbm-ais-steps", type=int, default=20000, help="the DBM annealed again with this many")
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--starts", default="default,dbn,sda,dbm,dbm-aug")
    p.add_argument("--threads", type=int, default=1, help="1: on a shared machine two threads wait on each other")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "dbm_fashion.json")
    a = p.parse_args()
    a.arch = [int(t) for t in a.arch.split(",")]
    ARCH[:] = a.arch
    torch.set_num_threads(a.threads)
    start = time.perf_counter()
    full = data.load("fashion-mnist", binarize="threshold")
    ds = data.split_validation(replace(full, x_train=full.x_train[:a.subset], y_train=full.y_train[:a.subset]),
                               1000 / a.subset, 0)
    needed = {s.split("-")[0] for s in a.starts.split(",")} - {"default"}
    models_by_seed = {}
    for seed in range(a.seeds):
        models_by_seed[seed] = {name: pretrain(name, ds.x_train, a, seed)
                                for name in sorted(needed | ({"rbm", "dbn", "dbm"} if seed == 0 else set()))}
    like = likelihoods(models_by_seed[0], ds.x_train, ds.x_test, a)
    cls = classification(ds, models_by_seed, a)
    result = {"command": "python benchmarks/dbm_fashion.py " + " ".join(sys.argv[1:]),
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
              "likelihood": like, "classification": medians(cls), "runs": cls,
              "total_seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    a.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
