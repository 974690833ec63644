"""Where networks land in function space (Erhan et al. 2010, section 6.3, figure 5).

A network is represented by the concatenation of its output probabilities on a fixed set of
test examples, at each epoch; trajectories of two families are embedded together in 2-D with
t-SNE (van der Maaten & Hinton 2008) or ISOMAP (Tenenbaum et al. 2000). The number beside the
picture: leave-one-out k-nearest-neighbour accuracy at telling the families apart from their
final points, in the full function space (0.5 is chance for equal families).
"""

from __future__ import annotations

import numpy as np
import torch

METHODS = ("tsne", "isomap")


def embed(points: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Embed ``points`` (n, d) in 2-D.

    Raises:
        ValueError: for an unknown method or fewer than 3 points.
    """
    if method not in METHODS:
        raise ValueError(f"embedding method must be one of {', '.join(METHODS)}; got {method!r}")
    if points.shape[0] < 3:
        raise ValueError(f"need at least 3 points to embed; got {points.shape[0]}")
    if method == "isomap":
        from sklearn.manifold import Isomap

        return Isomap(n_components=2, n_neighbors=min(10, points.shape[0] - 1)).fit_transform(points)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (points.shape[0] - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)


def separability(points: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Leave-one-out k-NN accuracy of predicting ``labels`` from ``points`` (Euclidean).

    Example:
        >>> pts = np.array([[0.0], [0.1], [5.0], [5.1]])
        >>> separability(pts, np.array([0, 0, 1, 1]))
        1.0
    """
    if len(points) != len(labels) or len(points) <= k:
        raise ValueError(f"need more than k={k} points with one label each; got {len(points)}, {len(labels)}")
    x = torch.as_tensor(points, dtype=torch.float64)
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, largest=False).indices.numpy()  # (n, k)
    votes = np.asarray(labels)[nearest]
    predicted = np.array([np.bincount(v).argmax() for v in votes])
    return float((predicted == np.asarray(labels)).mean())
