r"""Deep linear networks: how learning time grows with depth for each start (Saxe et al. 2013).

A deep linear network computes :math:`\hat y = W_D \cdots W_2 W_1 x` (no biases, no
nonlinearity): its function is linear, but gradient descent on its D weight matrices is not,
and it shows the plateaus and the depth dependence of real networks. Saxe, McClelland & Ganguli
solve those dynamics and find that with *decoupled* starts (random orthogonal, or greedy
layer-wise pre-training when the data allow it) the epochs needed to learn stay finite as D grows,
while scaled Gaussian starts slow down with depth.

:func:`learning_time` counts the epochs a net needs to bring the training loss of one fixed
regression task (:func:`linear_task`) under a threshold. The sweep over (depth, start) behind
``neuralsmith linear-depth`` is :mod:`neuralsmith.experiments.linear_depth`: it trains at
``lr / D`` (Saxe et al., section 4: with decoupled starts the usable rate falls as 1 / depth,
and the learning time *at that rate* is what stays depth-independent). Training goes through the
shared :func:`neuralsmith.train.train_epoch`.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> ds = linear_task(width=4, n_train=64, n_test=8, generator=g)
    >>> net = start(deep_linear(4, 3), "orthogonal", ds.x_train, generator=g)
    >>> product = net[2].weight @ net[1].weight @ net[0].weight
    >>> torch.allclose(product @ product.T, torch.eye(4), atol=1e-5)
    True
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Generator, Tensor, nn

from neuralsmith import init as init_lib
from neuralsmith.data import Dataset
from neuralsmith.train import evaluate, train_epoch

__all__ = ["LR_SCALINGS", "PLAIN_STARTS", "deep_linear", "learning_time", "linear_task", "pretrain_", "start"]

logger = logging.getLogger(__name__)

LR_SCALINGS = ("depth", "none")
#: the starts of :func:`start` besides the schemes of :data:`neuralsmith.init.SCHEMES`
PLAIN_STARTS = ("normal", "pretrained")


def _spread(n: int, high: float, low: float) -> Tensor:
    return torch.linspace(high, low, n) if n > 1 else torch.tensor([high])


def linear_task(width: int = 32, n_train: int = 512, n_test: int = 256, *,
                generator: Generator | None = None) -> Dataset:
    r"""A fixed linear regression y = M x whose input principal axes are M's input singular vectors.

    .. math::
        x = V\,\mathrm{diag}(\sigma)\,z,\ z \sim \mathcal{N}(0, I),\qquad
        y = M x,\ M = U\,\mathrm{diag}(s)\,V^\top

    U and V are random orthogonal; sigma runs from 1 down to 0.5 and s from 2 down to 0.5. The
    shared V is Saxe et al.'s condition under which greedy pre-training finds decoupled starts
    (the input correlations and the input-output correlations share their input singular
    vectors). The targets have no noise, so the least-squares loss is 0.

    Args:
        width: input and output size, >= 1.
        n_train, n_test: samples, >= 1.
        generator: the source of randomness.

    Returns:
        A :class:`~neuralsmith.data.Dataset`, float32 ``x`` (n, width) and ``y`` (n, width).

    Example:
        >>> ds = linear_task(3, n_train=5, n_test=2, generator=torch.Generator().manual_seed(0))
        >>> ds.x_train.shape, ds.y_train.shape, ds.y_train.dtype
        (torch.Size([5, 3]), torch.Size([5, 3]), torch.float32)

    References:
        Saxe, McClelland & Ganguli (2013). Exact solutions to the nonlinear dynamics of learning in deep linear neural networks. ICLR 2014.
    """
    if min(width, n_train, n_test) < 1:
        raise ValueError(f"width, n_train and n_test must be >= 1; got {width}, {n_train}, {n_test}")
    u = init_lib.svd_orthogonal_(torch.empty(width, width), generator=generator)
    v = init_lib.svd_orthogonal_(torch.empty(width, width), generator=generator)
    teacher = u @ torch.diag(_spread(width, 2.0, 0.5)) @ v.T
    z = torch.randn(n_train + n_test, width, generator=generator)
    x = (z * _spread(width, 1.0, 0.5)) @ v.T  # (n, width): principal axes along V's columns
    y = x @ teacher.T
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], image_shape=(1, width),
                   n_classes=0, name=f"linear-{width}", source="generated: neuralsmith.linear_depth.linear_task",
                   y_valid=torch.empty(0))


def deep_linear(width: int, depth: int) -> nn.Sequential:
    """``depth`` bias-free ``nn.Linear(width, width)`` layers in a row, at zero until :func:`start` fills them.

    Example:
        >>> deep_linear(3, 2)
        Sequential(
          (0): Linear(in_features=3, out_features=3, bias=False)
          (1): Linear(in_features=3, out_features=3, bias=False)
        )
    """
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth (weight layers) must be >= 1; got {width} and {depth}")
    net = nn.Sequential(*(nn.utils.skip_init(nn.Linear, width, width, bias=False) for _ in range(depth)))
    with torch.no_grad():  # no draws from torch's global generator
        for layer in net:
            layer.weight.zero_()
    return net


def _principal_axes(h: Tensor) -> Tensor:
    """Eigenvectors of the covariance of rows ``h`` as columns, largest variance first, signs fixed."""
    centered = (h - h.mean(dim=0)).double()
    _, vectors = torch.linalg.eigh(centered.T @ centered / max(h.shape[0] - 1, 1))  # ascending
    vectors = vectors.flip(dims=[1])
    signs = torch.sign(vectors[vectors.abs().argmax(dim=0), torch.arange(vectors.shape[1])])
    return (vectors * signs).to(h.dtype)  # the largest entry of each axis positive: deterministic


@torch.no_grad()
def pretrain_(net: nn.Sequential, x: Tensor) -> nn.Sequential:
    r"""Saxe et al.'s greedy unsupervised pre-training of a deep linear net, layer by layer, in closed form.

    .. math::
        W_l = E_l^\top,\quad C_l = \operatorname{Cov}[h_{l-1}] = E_l \Lambda_l E_l^\top,\quad
        h_l = W_l h_{l-1};\qquad W_D = E_1

    Each hidden layer is the encoder of a linear autoencoder trained on its own input, taken at
    its solution: the projection onto the top principal directions of that input (Baldi &
    Hornik 1989). Layers are full width, so each W_l is the rotation onto the principal axes;
    after the first, a layer's input is already decorrelated and its W_l is the identity (up to
    signs). The top layer has no unsupervised target: it is the first autoencoder's decoder E_1,
    so the pre-trained net starts as the identity map and every mode is decoupled in the input's
    principal basis.

    Args:
        net: bias-free square Linear layers (see :func:`deep_linear`), at least 2.
        x: training inputs ``(n, width)``.

    Raises:
        ValueError: for a net of fewer than 2 layers or layers that are not square and bias-free.

    Example:
        >>> x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([3.0, 1.0, 0.3])
        >>> net = pretrain_(deep_linear(3, 3), x)
        >>> torch.allclose(net(x), x, atol=1e-4)  # starts as the identity map
        True

    References:
        Saxe, McClelland & Ganguli (2013). Exact solutions to the nonlinear dynamics of learning in deep linear neural networks. ICLR 2014.
    """
    layers = list(net)
    if len(layers) < 2 or any(not isinstance(m, nn.Linear) or m.bias is not None
                              or m.in_features != m.out_features for m in layers):
        raise ValueError("pretrain_ needs 2 or more square, bias-free nn.Linear layers "
                         "(deep_linear(width, depth)); "
                         f"got {net}")
    h = x
    for layer in layers[:-1]:
        axes = _principal_axes(h)  # (width, width), columns = principal directions
        layer.weight.copy_(axes.T)
        h = layer(h)
    layers[-1].weight.copy_(layers[0].weight.T)  # the first autoencoder's decoder
    return net


def start(net: nn.Sequential, name: str, x: Tensor, *, generator: Generator | None = None) -> nn.Sequential:
    r"""Start a deep linear net: ``normal`` (scaled Gaussian), ``pretrained``, or any init scheme.

    .. math::
        \text{normal: } W_{ij} \sim \mathcal{N}(0, 1 / \text{width}); \quad
        \text{orthogonal: } W^\top W = I; \quad \text{pretrained: see } \texttt{pretrain\_}

    ``normal`` is Saxe et al.'s scaled Gaussian: variance 1 / width keeps a random vector's
    norm on average, but the product of many such matrices is badly conditioned. Any other
    name is a scheme of :data:`neuralsmith.init.SCHEMES` without required options.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> net = start(deep_linear(50, 1), "normal", torch.zeros(1, 50), generator=g)
        >>> round(net[0].weight.std().item() * 50 ** 0.5, 1)
        1.0

    References:
        Saxe, McClelland & Ganguli (2013). Exact solutions to the nonlinear dynamics of learning in deep linear neural networks. ICLR 2014.
    """
    if name == "pretrained":
        return pretrain_(net, x)
    if name == "normal":
        return init_lib.apply(net, "normal", std=net[0].in_features ** -0.5, generator=generator)
    return init_lib.apply(net, name, generator=generator)


def learning_time(net: nn.Module, ds: Dataset, *, lr: float, threshold: float = 0.01,
                  max_epochs: int = 300, batch_size: int = 32,
                  generator: Generator | None = None) -> tuple[int | None, list[float]]:
    r"""Epochs of plain SGD until the training loss falls under ``threshold`` times its scale.

    .. math::
        t^* = \min\{\,t : L_t \le \epsilon \cdot \tfrac{1}{n\,d}\lVert Y \rVert_F^2\,\}

    i.e. until all but a fraction epsilon of the targets' mean square is explained. Each epoch is
    :func:`neuralsmith.train.train_epoch` (SGD without momentum, a seeded order).

    Returns:
        (t* or None if not reached within ``max_epochs`` or diverged, the loss after each epoch
        with the starting loss first).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> ds = linear_task(4, n_train=64, n_test=8, generator=g)
        >>> epochs, losses = learning_time(start(deep_linear(4, 2), "orthogonal", ds.x_train, generator=g),
        ...                                ds, lr=0.5, threshold=0.1, max_epochs=100, generator=g)
        >>> epochs is not None and losses[-1] < losses[0]
        True
    """
    if not lr > 0 or not threshold > 0 or max_epochs < 1:
        raise ValueError(f"lr and threshold must be > 0 and max_epochs >= 1; got {lr}, {threshold}, {max_epochs}")
    target = threshold * float(ds.y_train.pow(2).mean())
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = [evaluate(net, ds.x_train, ds.y_train)[0]]
    for epoch in range(1, max_epochs + 1):
        train_epoch(net, optimizer, ds.x_train, ds.y_train, batch_size, generator)
        losses.append(evaluate(net, ds.x_train, ds.y_train)[0])
        if losses[-1] <= target:
            return epoch, losses
        if not math.isfinite(losses[-1]):
            logger.warning("deep linear net diverged at epoch %d (lr %.3g); lower --lr", epoch, lr)
            break
    return None, losses
