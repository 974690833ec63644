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

from neuralsmith.runs import atomic_write_bytes  # noqa: E402


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
