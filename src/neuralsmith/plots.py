"""Matplotlib figures, drawn off-screen (Agg) and saved as PNG.

Every function takes data and returns a ``Figure``; :func:`save` writes it atomically.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from neuralsmith.runfolder import atomic_write_bytes  # noqa: E402


def save(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def tile(images: torch.Tensor, image_shape: tuple[int, int], n_cols: int | None = None,
         normalize: bool = True) -> np.ndarray:
    """Tile rows of ``images`` (n, h*w) into one 2-D array with 1-pixel gaps.

    With ``normalize`` each image is scaled to [0, 1] on its own (for filters).
    """
    x = images.detach().float().cpu().reshape(-1, *image_shape)
    if normalize:
        lo = x.amin(dim=(1, 2), keepdim=True)
        hi = x.amax(dim=(1, 2), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
    n, (h, w) = x.shape[0], image_shape
    n_cols = n_cols or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_cols)
    canvas = np.ones(((h + 1) * n_rows - 1, (w + 1) * n_cols - 1), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, n_cols)
        canvas[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = x[i].numpy()
    return canvas


def image_grid(images: torch.Tensor, image_shape: tuple[int, int], title: str = "",
               normalize: bool = True) -> Figure:
    """A grid of images (model samples, or filters with ``normalize``) in grey."""
    canvas = tile(images, image_shape, normalize=normalize)
    fig, ax = plt.subplots(figsize=(6, 6 * canvas.shape[0] / max(canvas.shape[1], 1)))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


# --- study figures -------------------------------------------------------------------------

def error_boxplots(errors: dict[int, dict[str, list[float]]], title: str = "") -> Figure:
    """Test error (%) by start, one panel per depth: Erhan et al. (2010), figure 2."""
    depths = sorted(errors)
    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 4.2), sharey=True, squeeze=False)
    for ax, depth in zip(axes[0], depths):
        names = list(errors[depth])
        ax.boxplot([errors[depth][n] for n in names], showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=60, ha="right")
        ax.set_title(f"{depth} hidden layer{'s' if depth > 1 else ''}")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("test error (%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def learning_curves(curves: dict[str, list[float]], ylabel: str = "test error (%)",
                    title: str = "") -> Figure:
    """One line per start: the mean over seeds of a per-epoch quantity."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return fig


def layer_lines(values: dict[str, list[float]], ylabel: str = "weight-gradient norm",
                title: str = "", log: bool = True, notes: dict[str, str] | None = None) -> Figure:
    """One line per start of a per-layer quantity (layer 1 = nearest the input).

    On a log axis a value <= 0 cannot be drawn: it is left out of its line (never drawn as a
    drop off the axis), and ``notes`` (start -> words, e.g. "zero output layer: no gradient
    below it") labels such a line in the legend.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for name, ys in values.items():
        y = np.array(ys, dtype=float)
        if log:
            y[~(y > 0)] = np.nan
        label = f"{name} ({notes[name]})" if notes and name in notes else name
        ax.plot(range(1, len(ys) + 1), y, marker="o", label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return fig


def function_space(panels: list[tuple[np.ndarray, str]], family: np.ndarray, epoch: np.ndarray,
                   names: tuple[str, str], title: str = "") -> Figure:
    """Network trajectories embedded in 2-D, one panel per method (Erhan et al. 2010, figure 5).

    Each point is one network at one epoch; colour darkens with training time, from epoch 0
    (the start, light) to the last (dark), one colour map per family, each with its colour bar.

    Args:
        panels: ``(points (n, 2), panel title)`` per embedding method, e.g. t-SNE and ISOMAP.
        family: 0 or 1 per point; epoch: the epoch of each point.
        names: the two families' names.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels) + 2.2, 5.4), squeeze=False,
                             layout="constrained")  # makes room for both colour bars and their labels
    last = max(int(epoch.max()), 1)
    for ax, (points, label) in zip(axes[0], panels):
        for f, (name, cmap) in enumerate(zip(names, ("Blues", "Oranges"))):
            sel = family == f
            dots = ax.scatter(points[sel, 0], points[sel, 1], c=epoch[sel], cmap=cmap, s=9,
                              vmin=-0.3 * last, vmax=last, label=name)
            if ax is axes[0][-1]:
                bar = fig.colorbar(dots, ax=list(axes[0]), fraction=0.03, pad=0.02)
                bar.set_label(f"epoch, {name} (0 = start)")
                bar.ax.set_ylim(0, last)
                bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(markerscale=2, loc="best")
    if title:
        fig.suptitle(title)
    return fig


# --- initializers and gradient flow (neuralsmith.init, neuralsmith.diagnostics) --------------


def sigmoid_derivative(max_depth: int = 12) -> Figure:
    """The logistic sigmoid and its derivative (at most 1/4), and what k such factors do to a gradient.

    Left: sigma(z) and sigma'(z) = sigma(z)(1 - sigma(z)). Right, on a log scale: the bound
    (1/4)^k and E[sigma'(z)]^k for z ~ N(0, 1), the factor a gradient picks up through k
    sigmoid layers before the weights are counted.
    """
    z = np.linspace(-6.0, 6.0, 601)
    s = 1.0 / (1.0 + np.exp(-z))
    ds = s * (1.0 - s)
    mean_ds = float(np.sum(ds * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)) * (z[1] - z[0]))  # E[sigma'(z)]
    k = np.arange(1, max_depth + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(z, s, label="σ(z)")
    left.plot(z, ds, label="σ'(z) = σ(z)(1 − σ(z))")
    left.axhline(0.25, color="grey", ls=":", lw=1)
    left.annotate("max σ' = 1/4 at z = 0", (0, 0.25), (1.2, 0.4), arrowprops={"arrowstyle": "->"})
    left.set(xlabel="z", title="logistic sigmoid and its derivative")
    left.legend(fontsize=8)
    right.semilogy(k, 0.25**k, "o-", ms=3, label="bound (1/4)^k")
    right.semilogy(k, mean_ds**k, "s-", ms=3, label=f"E[σ'(z)]^k = {mean_ds:.3f}^k, z ~ N(0, 1)")
    right.set(xlabel="k (sigmoid layers)", ylabel="gradient factor", title="product of k derivatives")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=8)
    return fig


def gradient_norms(panels: dict[str, dict[str, list[float]]], ylabel: str = "gradient norm",
                   n_cols: int | None = None) -> Figure:
    """Gradient norm by layer on a log scale: one panel per net or quantity, one line per curve.

    ``panels`` maps a panel title (e.g. "sigmoid: ||dL/dW||") to ``{label: norms by layer}``
    (a label is typically an init scheme); panels fill rows of ``n_cols`` (default: one row).
    """
    n_cols = n_cols or len(panels)
    n_rows = math.ceil(len(panels) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.4 * n_cols, 3.4 * n_rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels.items()):
        for label, norms in curves.items():
            y = np.asarray(norms, dtype=float)
            ax.semilogy(np.arange(1, len(y) + 1), np.where(y > 0, y, np.nan), "o-", ms=2.5, label=label)
        ax.set(title=title, xlabel="layer (input → output)", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def spectrum_density(panels: dict[str, dict[str, tuple]], n_cols: int | None = None,
                     shared_legend: bool = False) -> Figure:
    """Density of log10 singular values of a Jacobian: one panel per title, one line per label.

    ``panels`` maps a title to ``{label: (bin edges, density)}`` as
    :meth:`neuralsmith.spectrum.Spectrum.density` returns them; a dotted line marks s = 1
    (dynamical isometry: every singular value there). With ``shared_legend`` (the same labels
    in every panel, in one order) one legend below the panels names them all.
    """
    n_cols = n_cols or len(panels)
    n_rows = math.ceil(len(panels) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.8 * n_cols, 3.6 * n_rows + (0.9 if shared_legend else 0)),
                             squeeze=False, layout="constrained")
    for ax, (title, curves) in zip(axes.flat, panels.items()):
        for label, (edges, density) in curves.items():
            edges, density = np.asarray(edges, dtype=float), np.asarray(density, dtype=float)
            ax.stairs(density, edges, label=label, lw=1.4)
        ax.axvline(0.0, color="grey", ls=":", lw=1, label="s = 1 (isometry)")
        ax.set(title=title, xlabel="log10 singular value of dy/dx", ylabel="density")
        ax.grid(alpha=0.3)
        if not shared_legend:
            ax.legend(fontsize=7)
    if shared_legend:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(6, len(labels)), fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    return fig


def accuracy_by_depth(panels: dict[str, dict[str, dict[int, float]]], chance: float | None = None,
                      ylabel: str = "test accuracy (%)") -> Figure:
    """Accuracy against depth (log 2 axis), one line per start, one panel per network family.

    ``panels`` maps a title to ``{start: {depth: accuracy}}``; ``chance`` draws a dotted level.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False, sharey=True)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for name, by_depth in curves.items():
            depths = sorted(by_depth)
            ax.plot(depths, [by_depth[d] for d in depths], "o-", ms=4, label=name)
        if chance is not None:
            ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:g}%)")
        all_depths = sorted({d for by_depth in curves.values() for d in by_depth})
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_depths, [str(d) for d in all_depths])
        ax.set(title=title, xlabel="depth (hidden or conv layers)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    return fig


# --- recurrent and deep linear starts (neuralsmith.rnn, neuralsmith.linear_depth) -------------


def curves_by_step(curves: dict[str, tuple[list[float], list[float]]], ylabel: str = "test MSE",
                   title: str = "", log: bool = False, reference: float | None = None,
                   reference_label: str = "", xlabel: str = "step") -> Figure:
    """One line per label of ``(steps, values)``; an optional dotted reference level (e.g. a baseline)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name)
    if reference is not None:
        ax.axhline(reference, color="grey", ls=":", lw=1, label=reference_label or None)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def learning_time_by_depth(panels: dict[str, dict[str, dict[int, int | None]]],
                           cap: int | None = None) -> Figure:
    """Epochs to reach a loss level against depth, one line per start, one panel per level (Saxe et al. 2013).

    ``panels`` maps a title to ``{start: {depth: epochs or None}}``; a depth that never reached
    the level is drawn as an open marker at ``cap``.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False, sharey=True)
    for ax, (title, times) in zip(axes[0], panels.items()):
        for name, by_depth in times.items():
            depths = sorted(by_depth)
            line, = ax.plot(depths, [np.nan if by_depth[d] is None else by_depth[d] for d in depths],
                            "o-", ms=4, label=name)
            missed = [d for d in depths if by_depth[d] is None]
            if missed and cap is not None:
                ax.plot(missed, [cap] * len(missed), "o", mfc="none", color=line.get_color())
        if cap is not None:
            ax.axhline(cap, color="grey", ls=":", lw=1, label=f"budget ({cap} epochs)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        all_depths = sorted({d for by_depth in times.values() for d in by_depth})
        ax.set_xticks(all_depths, [str(d) for d in all_depths])
        ax.set(xlabel="depth (weight layers)", title=title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("epochs to reach the level")
    fig.tight_layout()
    return fig
