"""Dynamical isometry: Jacobian spectra by depth, and how deep tanh MLPs and plain CNNs train from each start.

Four parts (Saxe et al. 2013; Pennington, Schoenholz & Ganguli 2017; Xiao et al. 2018):

(a) spectra: the singular values of dy/dx (``neuralsmith.spectrum``, exact) of 8/32/128-layer
    tanh nets of width 256 at the critical point (q* = 1/64: sigma_w = 1.015, sigma_b = 0.0022)
    from a Gaussian and an orthogonal start, inputs scaled so the first pre-activations have
    q = q*; and of ReLU nets (He's Gaussian, and orthogonal with gain sqrt 2), which no start
    makes isometric.
(b) mlp: test accuracy on Fashion-MNIST after a fixed SGD budget of a 32-layer tanh MLP of
    width 256 from orthogonal-critical, Gaussian-critical, Glorot and PyTorch's default start.
(c) cnn: the same for a plain 32-layer tanh CNN (3x3 convolutions, no batch norm, no
    residuals, global average pooling, 16 channels, 14x14 images): delta-orthogonal at the
    critical point against Gaussian-critical, He and Glorot.
(d) ladder: the same starts at growing depth with a small budget (learning rate scaled by
    32 / depth, so the function moves as far per step at every depth): where each start stops
    training (test accuracy below ``--trains-above``), and the wall time per step that limits
    how deep a 30-minute run can go on this machine.

Every training run is a JSON file under ``--runs``: a killed benchmark resumes where it stopped.
Results: ``benchmarks/results/isometry.json``, ``isometry.md`` (tables), ``isometry_spectra.png``,
``isometry_ladder.png``.

    python benchmarks/isometry.py                     # the recorded run (see isometry.md)
    python benchmarks/isometry.py --parts spectra     # (a) only, about a minute
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from multiprocessing import Pool
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuralsmith import data, init, meanfield, nets, plots
from neuralsmith.runfolder import dumps_json
from neuralsmith.spectrum import jacobian_spectrum

RESULTS = Path(__file__).resolve().parent / "results"
Q_STAR = 1 / 64  # Pennington et al.'s small fixed point: the orthogonal tanh net is near isometric
CRITICAL = meanfield.critical_point("tanh", q_star=Q_STAR)
CRIT = {"nonlinearity": "tanh", "sigma_b": CRITICAL.sigma_b}
MLP_STARTS = {  # label -> (scheme, options)
    "orthogonal-critical": ("critical", {**CRIT, "distribution": "orthogonal"}),
    "Gaussian-critical": ("critical", {**CRIT, "distribution": "normal"}),
    "Glorot": ("glorot_uniform", {}),
    "default": ("default", {}),
}
CNN_STARTS = {
    "delta-orthogonal-critical": ("critical", {**CRIT, "distribution": "orthogonal"}),
    "Gaussian-critical": ("critical", {**CRIT, "distribution": "normal"}),
    "He": ("he_normal", {}),
    "Glorot": ("glorot_uniform", {}),
}


# --- (a) spectra --------------------------------------------------------------------------------


def _stack(depth: int, width: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), activation)]).double()


def spectra(depths: list[int], width: int, samples: int, seed: int) -> dict:
    """Exact spectra of tanh (critical) and ReLU stacks at each depth from each start."""
    g = torch.Generator().manual_seed(seed)
    starts = {  # net -> {label: (scheme, options, input std)}
        "tanh": {"Gaussian": ("critical", {**CRIT, "distribution": "normal"}),
                 "orthogonal": ("critical", {**CRIT, "distribution": "orthogonal"})},
        "relu": {"Gaussian (He)": ("he_normal", {}), "orthogonal, gain sqrt 2": ("orthogonal", {"gain": math.sqrt(2)})},
    }
    input_std = {"tanh": math.sqrt((Q_STAR - CRITICAL.sigma_b**2)) / CRITICAL.sigma_w, "relu": 1.0}
    out = {}
    for act, by_start in starts.items():
        for depth in depths:
            for label, (scheme, options) in by_start.items():
                net = init.apply(_stack(depth, width, nn.Tanh() if act == "tanh" else nn.ReLU()), scheme,
                                 generator=g, **options)
                x = input_std[act] * torch.randn(samples, width, dtype=torch.float64, generator=g)
                t0 = time.perf_counter()
                spec = jacobian_spectrum(net, x, method="exact")
                edges, density = spec.density()
                out[f"{act}|{depth}|{label}"] = {**spec.summary(), "seconds": time.perf_counter() - t0,
                                                 "edges": edges.tolist(), "density": density.tolist()}
                print(f"  {act:4s} depth {depth:4d} {label:24s} {spec.describe()}", flush=True)
    return out


# --- (b, c, d) training -------------------------------------------------------------------------


def fashion(side: int, n_train: int) -> tuple[torch.Tensor, ...]:
    """Fashion-MNIST standardized (train statistics), images average-pooled to side x side."""
    ds = data.load("fashion-mnist")
    x_train, x_test = ds.x_train[:n_train], ds.x_test
    mean, std = x_train.mean(), x_train.std()
    shrink = lambda x: F.adaptive_avg_pool2d(((x - mean) / std).reshape(-1, 1, 28, 28), side)  # noqa: E731
    return shrink(x_train), ds.y_train[:n_train], shrink(x_test), ds.y_test


def build(kind: str, depth: int, width: int, scheme: str, options: dict, g: torch.Generator) -> nn.Sequential:
    """A tanh MLP (depth hidden layers) or plain CNN (depth conv layers, global average pool, linear)."""
    if kind == "mlp":
        return nets.mlp([28 * 28] + [width] * depth + [10], "tanh", init=scheme, generator=g, **options)
    convs = [nn.Conv2d(1 if i == 0 else width, width, 3, padding=1) for i in range(depth)]
    net = nn.Sequential(*[m for conv in convs for m in (conv, nn.Tanh())], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(width, 10))
    return init.apply(net, scheme, generator=g, **options)


def train(job: dict) -> dict:
    """SGD with momentum 0.9 for ``steps`` minibatches; test accuracy at the end (and at the start)."""
    torch.set_num_threads(1)
    path = Path(job["file"])
    if path.is_file():
        return json.loads(path.read_text())
    os.nice(5)
    x_train, y_train, x_test, y_test = fashion(job["side"], job["n_train"])
    if job["kind"] == "mlp":
        x_train, x_test = x_train.flatten(1), x_test.flatten(1)
    g = torch.Generator().manual_seed(job["seed"])
    net = build(job["kind"], job["depth"], job["width"], job["scheme"], job["options"], g)
    opt = torch.optim.SGD(net.parameters(), lr=job["lr"], momentum=0.9)
    wall, cpu, losses = time.perf_counter(), time.process_time(), []
    for step in range(job["steps"]):
        idx = torch.randint(len(x_train), (job["batch"],), generator=g)
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
    result = {**{k: v for k, v in job.items() if k != "file"}, "test_accuracy": accuracy(net, x_test, y_test),
              "final_loss": statistics_tail(losses), "wall_s": time.perf_counter() - wall,
              "cpu_s": time.process_time() - cpu, "steps_done": len(losses)}
    result["s_per_step"] = result["wall_s"] / max(1, len(losses))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    print(f"  {job['kind']} depth {job['depth']:4d} {job['label']:26s} acc {result['test_accuracy']:.3f} "
          f"({result['wall_s']:.0f} s)", flush=True)
    return result


def statistics_tail(losses: list[float]) -> float:
    """Mean of the last 50 training losses (nan if training diverged)."""
    tail = losses[-50:]
    return sum(tail) / len(tail) if tail and all(math.isfinite(v) for v in tail) else math.nan


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = sum(int((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / len(x)


def jobs(args: argparse.Namespace) -> list[dict]:
    """Every training run of parts (b), (c) and (d)."""
    runs = []
    for part, kind, depths, steps in (("mlp", "mlp", [args.mlp_depth], args.steps),
                                      ("cnn", "cnn", [args.cnn_depth], args.cnn_steps),
                                      ("ladder", "mlp", args.mlp_ladder, args.ladder_steps),
                                      ("ladder", "cnn", args.cnn_ladder, args.ladder_steps)):
        if part not in args.parts:
            continue
        starts = MLP_STARTS if kind == "mlp" else CNN_STARTS
        for depth in depths:
            for label, (scheme, options) in starts.items():
                cnn = kind == "cnn"
                job = dict(part=part, kind=kind, depth=depth, label=label, scheme=scheme, options=options,
                           width=(args.cnn_width if cnn else (args.width if part == "mlp" else args.ladder_width)),
                           side=(args.cnn_side if part == "cnn" else args.ladder_side) if cnn else 28,
                           steps=steps, batch=64 if cnn else 128, n_train=args.n_train, seed=args.seed,
                           lr=(args.cnn_lr if cnn else args.lr) * min(1.0, 32 / depth))
                slug = f"{part}-{kind}-{depth}-{label}".replace(" ", "_")
                runs.append({**job, "file": str(args.runs / f"{slug}.json")})
    return runs


# --- tables and figures ---------------------------------------------------------------------------


def spectra_table(result: dict) -> str:
    lines = ["| net | depth | start | chi = mean s² | var s² | s_max | spread (decades, 5-95%) | condition | zero s | verdict |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for key, s in result.items():
        act, depth, label = key.split("|")
        lines.append(f"| {act} | {depth} | {label} | {s['chi']:.3g} | {s['s2_variance']:.3g} | {s['s_max']:.3g} | "
                     f"{s['spread']:.2f} | {s['condition']:.3g} | {100 * s['zero_fraction']:.0f}% | {s['verdict']} |")
    return "\n".join(lines)


def training_table(rows: list[dict], part: str) -> str:
    rows = [r for r in rows if r["part"] == part]
    depths = sorted({(r["kind"], r["depth"]) for r in rows})
    labels = list(dict.fromkeys((r["kind"], r["label"]) for r in rows))
    head = "| net | start | " + " | ".join(f"{k} depth {d}" for k, d in depths) + " |"
    lines = [head, "|---|---|" + "---:|" * len(depths)]
    for kind, label in labels:
        cells = []
        for k, d in depths:
            found = [r for r in rows if (r["kind"], r["label"], r["depth"]) == (k, label, d)]
            cells.append(_cell(found[0]) if found and k == kind else "")
        lines.append(f"| {kind} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(r: dict) -> str:
    if r["steps_done"] < r["steps"]:
        return f"diverged at step {r['steps_done']}"
    return f"{100 * r['test_accuracy']:.1f}% ({r['wall_s']:.0f} s)"


def deepest_table(rows: list[dict], trains_above: float, budget_s: float = 1800.0) -> str:
    """Per family and start: the deepest ladder net above ``trains_above``, and how deep a run of
    the same budget would fit in ``budget_s`` of one core (time per step grows linearly with depth;
    the CPU time per step and layer is the median over the family's completed deepest runs)."""
    lines = ["| net | start | deepest that trains (accuracy) | CPU s per step per layer | depth that fits 30 min at this budget |",
             "|---|---|---:|---:|---:|"]
    ladder = [r for r in rows if r["part"] == "ladder"]
    for kind, label in dict.fromkeys((r["kind"], r["label"]) for r in ladder):
        mine = sorted((r for r in ladder if (r["kind"], r["label"]) == (kind, label)), key=lambda r: r["depth"])
        good = [r for r in mine if r["test_accuracy"] >= trains_above]
        deepest = f"{good[-1]['depth']} ({100 * good[-1]['test_accuracy']:.1f}%)" if good else "none (not even the shallowest)"
        top = max(r["depth"] for r in ladder if r["kind"] == kind)
        per_layer = statistics.median(r["cpu_s"] / r["steps"] / r["depth"] for r in ladder
                                      if r["kind"] == kind and r["depth"] == top and r["steps_done"] == r["steps"])
        fits = int(budget_s / (mine[-1]["steps"] * per_layer))
        lines.append(f"| {kind} | {label} | {deepest} | {per_layer:.2e} | {fits} |")
    return "\n".join(lines)


def spectra_figure(result: dict, path: Path) -> None:
    panels: dict[str, dict] = {}
    for key, s in result.items():
        act, depth, label = key.split("|")
        panels.setdefault(f"{act}, depth {depth}", {})[f"{label}: spread {s['spread']:.2g}"] = (s["edges"], s["density"])
    plots.save(plots.spectrum_density(panels, n_cols=len(panels) // 2), path)


def ladder_figure(rows: list[dict], path: Path, chance: float = 0.1) -> None:
    panels: dict[str, dict] = {}
    for r in rows:
        if r["part"] == "ladder":
            panels.setdefault(f"plain tanh {r['kind'].upper()}", {}).setdefault(r["label"], {})[r["depth"]] = \
                100 * r["test_accuracy"]
    plots.save(plots.accuracy_by_depth(panels, chance=100 * chance), path)


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", default=["spectra", "mlp", "cnn", "ladder"])
    p.add_argument("--spectrum-depths", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--spectrum-width", type=int, default=256)
    p.add_argument("--width", type=int, default=256, help="MLP width of part (b)")
    p.add_argument("--mlp-depth", type=int, default=32)
    p.add_argument("--steps", type=int, default=1500, help="SGD steps of part (b), batch 128")
    p.add_argument("--lr", type=float, default=0.01, help="MLP learning rate at depth <= 32")
    p.add_argument("--cnn-depth", type=int, default=32)
    p.add_argument("--cnn-width", type=int, default=16, help="CNN channels")
    p.add_argument("--cnn-side", type=int, default=14, help="image side of part (c) (28: full size)")
    p.add_argument("--cnn-steps", type=int, default=500, help="SGD steps of part (c), batch 64")
    p.add_argument("--cnn-lr", type=float, default=0.01, help="CNN learning rate at depth <= 32")
    p.add_argument("--mlp-ladder", type=int, nargs="+", default=[32, 128, 512])
    p.add_argument("--cnn-ladder", type=int, nargs="+", default=[32, 128, 512])
    p.add_argument("--ladder-width", type=int, default=128)
    p.add_argument("--ladder-side", type=int, default=7)
    p.add_argument("--ladder-steps", type=int, default=200)
    p.add_argument("--n-train", type=int, default=60_000)
    p.add_argument("--trains-above", type=float, default=0.3,
                   help="test accuracy that counts as training (3 times chance)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--runs", type=Path, default=Path("runs/isometry"))
    return p.parse_args()


def main() -> None:
    args = _arguments()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    out = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "critical_point": CRITICAL._asdict()}
    if "spectra" in args.parts:
        print("(a) Jacobian spectra", flush=True)
        out["spectra"] = spectra(args.spectrum_depths, args.spectrum_width, 4, args.seed)
        spectra_figure(out["spectra"], RESULTS / "isometry_spectra.png")
    todo = jobs(args)
    with Pool(args.workers) as pool:
        out["training"] = pool.map(train, todo, chunksize=1)
    if any(r["part"] == "ladder" for r in out["training"]):
        ladder_figure(out["training"], RESULTS / "isometry_ladder.png")
    out["wall_s"] = time.perf_counter() - t0
    tables = [f"## (a) Jacobian spectra at initialization (exact, 4 inputs, width {args.spectrum_width})",
              spectra_table(out.get("spectra", {}))] + [
        f"## ({c}) {part}: Fashion-MNIST test accuracy (wall time)\n\n{training_table(out['training'], part)}"
        for c, part in (("b", "mlp"), ("c", "cnn"), ("d", "ladder")) if part in args.parts]
    if "ladder" in args.parts:
        tables.append(f"## (d) the deepest net that trains (test accuracy >= {100 * args.trains_above:.0f}%) "
                      f"after {args.ladder_steps} steps\n\n{deepest_table(out['training'], args.trains_above)}")
    cpu, wall = (sum(r[k] for r in out["training"]) for k in ("cpu_s", "wall_s"))
    spectra_s = sum(s["seconds"] for s in out.get("spectra", {}).values())
    tables.append(f"Training runs: {len(out['training'])}, {cpu / 60:.1f} CPU minutes, {wall / 60:.1f} minutes of "
                  f"wall time summed over runs ({args.workers} worker(s), one thread each); exact spectra: "
                  f"{spectra_s:.0f} s. Learning rate {args.lr:g} (MLP) and {args.cnn_lr:g} (CNN) times "
                  "min(1, 32 / depth), SGD with momentum 0.9, batch 128 (MLP) / 64 (CNN).")
    (RESULTS / "isometry.md").write_text("\n\n".join(tables) + "\n")
    (RESULTS / "isometry.json").write_text(dumps_json(out, indent=1) + "\n")
    print("\n\n".join(tables))
    print(f"\nwall time {out['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
