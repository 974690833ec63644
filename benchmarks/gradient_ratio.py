"""First/last back-propagated gradient ratio at initialization, by depth and init scheme.

For MLPs 64-256xD-10 on a batch of the built-in digits (D hidden layers, D = 2..20), prints one
Markdown table of the ratio ||dL/dz_1|| / ||dL/dz_last|| (median over seeds) for each
activation and scheme, and writes docs/figures/gradient_flow.png (weight-gradient norm by
layer at the deepest depth) and docs/figures/sigmoid_derivative.png.

    python benchmarks/gradient_ratio.py            # modest: width 256, 3 seeds, ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from neuralsmith import data, diagnostics, nets, plots

SCHEMES = {  # label -> (scheme, options); each activation gets the ones that make sense for it
    "N(0, 0.01²)": ("normal", {"std": 0.01}),
    "default": ("default", {}),
    "glorot_uniform": ("glorot_uniform", {}),
    "lecun_normal": ("lecun_normal", {}),
    "he_normal": ("he_normal", {}),
    "orthogonal": ("orthogonal", {}),
    "lsuv": ("lsuv", {}),
}
PER_ACTIVATION = {
    "sigmoid": ["N(0, 0.01²)", "default", "glorot_uniform", "orthogonal", "lsuv"],
    "tanh": ["N(0, 0.01²)", "default", "glorot_uniform", "lecun_normal", "orthogonal", "lsuv"],
    "relu": ["N(0, 0.01²)", "default", "glorot_uniform", "he_normal", "orthogonal", "lsuv"],
}


def measure(activation: str, label: str, depth: int, width: int, x, y, seed: int):
    scheme, options = SCHEMES[label]
    options = {**options, "batch": x} if scheme == "lsuv" else options
    net = nets.mlp([64] + [width] * depth + [10], activation, init=scheme,
                   generator=torch.Generator().manual_seed(seed), **options)
    return diagnostics.gradient_flow(net, x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=list(range(2, 21, 2)))
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    ds = data.load("digits")
    x, y = ds.x_train[: args.batch], ds.y_train[: args.batch]
    start, deepest = time.perf_counter(), max(args.depths)
    weights: dict[str, dict[str, list[float]]] = {}
    signals: dict[str, dict[str, list[float]]] = {}
    print("| activation | scheme | " + " | ".join(f"D={d}" for d in args.depths) + " |")
    print("|---|---|" + "---:|" * len(args.depths))
    for activation, labels in PER_ACTIVATION.items():
        weights[f"{activation}, D={deepest}: ||dL/dW||"] = by_weight = {}
        signals[f"{activation}, D={deepest}: ||dL/dz||"] = by_signal = {}
        for label in labels:
            cells = []
            for depth in args.depths:
                reports = [measure(activation, label, depth, args.width, x, y, s) for s in range(args.seeds)]
                cells.append(f"{statistics.median(r.ratio for r in reports):.2g}")
                if depth == deepest:
                    by_weight[label], by_signal[label] = reports[0].grad_norms, reports[0].signal_norms
            print(f"| {activation} | {label} | " + " | ".join(cells) + " |", flush=True)
    figure = plots.gradient_norms({**weights, **signals}, n_cols=len(PER_ACTIVATION))
    plots.save(figure, args.figures / "gradient_flow.png", dpi=72)
    plots.save(plots.sigmoid_derivative(), args.figures / "sigmoid_derivative.png", dpi=80)
    print(f"\nratio < {diagnostics.VANISHING_BELOW:g}: vanishing, > {diagnostics.EXPLODING_ABOVE:g}: exploding; "
          f"width {args.width}, batch {args.batch} digits, median of {args.seeds} seeds, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
