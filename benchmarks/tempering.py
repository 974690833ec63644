"""Parallel tempering against PCD on binarized Fashion-MNIST: in training and in sampling.

    python benchmarks/tempering.py                  # the recorded run (about 15 minutes, 2 cores)
    python benchmarks/tempering.py --budget 10 --ais-steps 1000 --steps 200   # a smoke run

Training: RBMs of ``--hidden`` units start from the same initialization (Hinton, 2010) and
see the same seeded batches of the first ``--n`` training images; each method trains for the
same wall time (``--budget`` seconds: epochs run until the budget is spent, the last one
finishing), then its test log-likelihood on all 10 000 test images is estimated by AIS
(Salakhutdinov & Murray, 2008: ``--ais-runs`` runs, ``--ais-steps`` temperatures, base rates of
the training images). The methods: PCD-1 with 100 chains; PT-1 with ``--temperatures``
replicas of 100 chains (10x the Gibbs work of PCD per update); PT-1 with 10 chains per
temperature (the Gibbs work of PCD). The learning rate is 0.01 for all (PCD's chains need a
rate that small; rbm_loglik.py). PT's ladder: 10 inverse temperatures linear from 0.3 to 1,
tempered towards the training images' base rates (``tempering_base="data"``): with the
uniform base from beta = 0, the hottest pairs of a 784-pixel RBM never exchange (measured
acceptance 0.000 on a 10-epoch PCD model, against >= 0.09 with this ladder).

Sampling: from each trained model, 100 chains of ``--steps`` sweeps from the biases-only start,
by plain Gibbs and by PT (``--temperatures`` replicas); reported are the effective sample size
and autocorrelation time of the chains' energies, PT's swap acceptance per pair, and class
mixing: a logistic regression fitted on 10 000 training images labels the chains' states every
10 sweeps (class switches per 1000 sweeps, classes visited, entropy of the visited classes).
The sample images are E[v | h] after the last sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _fashion  # noqa: E402

from neuralsmith import data, plots  # noqa: E402
from neuralsmith.rbm import RBM, ais_log_partition, default_betas, log_likelihood, train  # noqa: E402
from neuralsmith.rbm import mixing, tempering  # noqa: E402
from neuralsmith.rbm.partition import base_rate_bias  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def methods(args) -> dict[str, dict]:
    """name -> training keywords."""
    pt = dict(method="pt", n_temperatures=args.temperatures, temperature_spacing=args.spacing,
              beta_min=args.beta_min, tempering_base=args.base)
    return {"PCD-1 (100 chains)": dict(method="pcd", n_chains=100),
            f"PT-1 (K={args.temperatures}, 100 chains)": dict(**pt, n_chains=100),
            f"PT-1 (K={args.temperatures}, 10 chains)": dict(**pt, n_chains=10)}


def stop_after(seconds: float):
    """A training callback that stops once ``seconds`` of wall time have passed."""
    start = time.perf_counter()
    return lambda row: time.perf_counter() - start >= seconds


def fit_and_score(name: str, options: dict, x: torch.Tensor, x_test: torch.Tensor, args):
    g = torch.Generator().manual_seed(args.seed)
    rbm = RBM.from_data(x, args.hidden, generator=g)
    t = time.perf_counter()
    hist = train(rbm, x, epochs=10000, lr=args.lr, momentum=0.5, weight_decay=1e-4, batch_size=100,
                 generator=g, progress=False, callbacks=[stop_after(args.budget)], **options)
    t_train, t = time.perf_counter() - t, time.perf_counter()
    est = ais_log_partition(rbm, n_runs=args.ais_runs, betas=default_betas(args.ais_steps), data=x,
                            generator=torch.Generator().manual_seed(args.seed + 1))
    row = {"method": name, "epochs": len(hist), "test_log_likelihood": log_likelihood(rbm, x_test, est.log_z),
           "test_ll_range_3sigma": [log_likelihood(rbm, x_test, est.upper),
                                    log_likelihood(rbm, x_test, est.lower)],
           "train_log_likelihood": log_likelihood(rbm, x[:10000], est.log_z),
           "log_z": est.log_z, "log_z_std": est.std,
           "swap_acceptance_min_in_training": hist[-1].get("swap_acceptance_min"),
           "seconds": {"train": round(t_train, 1), "ais": round(time.perf_counter() - t, 1)}}
    print(f"{name}: {len(hist)} epochs in {t_train:.0f} s, test LL {row['test_log_likelihood']:.2f} "
          f"(log Z {est.log_z:.2f} +- {est.std:.3f})", flush=True)
    return rbm, row


def sample_quality(rbm: RBM, method: str, clf, base: torch.Tensor | None, args) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(args.seed + 2)
    chains = tempering.sample(rbm, 100, steps=args.steps, method=method, n_temperatures=args.temperatures,
                              spacing=args.spacing, beta_min=args.beta_min, base_bias=base, thin=10,
                              generator=g)
    with torch.no_grad():
        images = rbm.visible_probs(rbm.sample_hidden(chains.state[0], g))
    report = mixing.chain_report(chains.energies, chains.acceptance if method == "pt" else None,
                                 mixing.label(clf, chains.trace), 10, thin=10)
    report["seconds"] = round(chains.seconds, 1)
    return images, report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20000, help="training images")
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--budget", type=float, default=150.0, help="training seconds per method")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--temperatures", type=int, default=10)
    p.add_argument("--spacing", default="linear")
    p.add_argument("--beta-min", type=float, default=0.3)
    p.add_argument("--base", default="data", help="PT's beta = 0 distribution: uniform or data")
    p.add_argument("--ais-runs", type=int, default=100)
    p.add_argument("--ais-steps", type=int, default=14500)
    p.add_argument("--steps", type=int, default=2000, help="sampling sweeps")
    p.add_argument("--threads", type=int, default=1, help="1: steadier on a shared machine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="tempering")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    x_train, x_test = _fashion.load(binarize=True)
    y_train = data.load("fashion-mnist").y_train
    x = x_train[: args.n].contiguous()
    print(f"{args.hidden} hidden, {len(x)} training images, {args.budget:g} s per method, lr {args.lr}; "
          f"PT {args.temperatures} temperatures ({args.spacing} from beta {args.beta_min}, base {args.base}); "
          f"AIS {args.ais_runs} x {args.ais_steps}", flush=True)
    t = time.perf_counter()
    clf = mixing.fit_classifier(x_train[:10000], y_train[:10000], 10, max_iter=300)
    clf_seconds = time.perf_counter() - t
    y_test = data.load("fashion-mnist").y_test
    clf_acc = float((mixing.label(clf, x_test) == y_test).double().mean())
    print(f"classifier: test accuracy {clf_acc:.3f} ({clf_seconds:.0f} s)", flush=True)
    base = base_rate_bias(x, x.shape[1]) if args.base == "data" else None
    training, sampling, panels = [], [], {}
    for name, options in methods(args).items():
        rbm, row = fit_and_score(name, options, x, x_test, args)
        training.append(row)
        if "10 chains" in name:
            continue  # sampling is compared on the two models of 100 chains
        for method in ("gibbs", "pt"):
            images, report = sample_quality(rbm, method, clf, base, args)
            sampling.append({"model": name, "sampler": method, **report})
            panels[f"{name}, sampled by {method}"] = images
            print(f"  {method}: ESS {report['energy_ess']:.0f}, class switches/1000 "
                  f"{report['class_mixing']['switches_per_1000']:.1f}, visited "
                  f"{report['class_mixing']['visited_per_chain']:.2f}, swap min "
                  f"{report.get('swap_acceptance_min')}, {report['seconds']} s", flush=True)
    result = {"params": vars(args), "classifier_test_accuracy": clf_acc, "training": training,
              "sampling": sampling, "total_seconds": round(time.perf_counter() - start, 1),
              "torch": torch.__version__}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    write_figure(panels, RESULTS / f"{args.name}.png")
    (RESULTS / f"{args.name}.md").write_text(markdown(result))
    print(f"total {result['total_seconds']} s; wrote {RESULTS}/{args.name}.{{json,png,md}}")


def write_figure(panels: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 5))
    for ax, (title, images) in zip(axes, panels.items()):
        ax.imshow(plots.tile(images[:49], (28, 28), n_cols=7, normalize=False), cmap="gray",
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    plots.save(fig, path)


def markdown(result: dict) -> str:
    a = result["params"]
    lines = [f"# PT against PCD on binarized Fashion-MNIST ({a['hidden']} hidden, {a['n']} images, "
             f"{a['budget']:g} s of training each)", "",
             "| method | epochs | test LL (nats) | 3-sigma range | train LL | train s | AIS s |",
             "|---|---|---|---|---|---|---|"]
    for r in result["training"]:
        low, high = r["test_ll_range_3sigma"]  # log Z's upper bound gives the lower LL
        lines.append(f"| {r['method']} | {r['epochs']} | {r['test_log_likelihood']:.2f} | "
                     f"[{low:.2f}, {high:.2f}] | {r['train_log_likelihood']:.2f} | "
                     f"{r['seconds']['train']} | {r['seconds']['ais']} |")
    lines += ["", f"Sampling: 100 chains x {a['steps']} sweeps; classifier test accuracy "
              f"{result['classifier_test_accuracy']:.3f}.", "",
              "| model | sampler | energy ESS | tau | switches / 1000 | classes visited per chain | "
              "visited | entropy ratio | min swap acceptance | s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["sampling"]:
        m = r["class_mixing"]
        swap = r.get("swap_acceptance_min")
        lines.append(f"| {r['model']} | {r['sampler']} | {r['energy_ess']:.0f} | {r['energy_tau']:.1f} | "
                     f"{m['switches_per_1000']:.1f} | {m['visited_per_chain']:.2f} | {m['visited']:.2f} | "
                     f"{m['entropy_ratio']:.2f} | {'-' if swap is None else f'{swap:.3f}'} | {r['seconds']} |")
    lines += ["", f"Total wall time {result['total_seconds']} s (torch {result['torch']}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
