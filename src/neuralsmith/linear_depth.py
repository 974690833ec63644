r"""Deep linear networks: how learning time grows with depth for each start (Saxe et al. 2013).

A deep linear network computes :math:`\hat y = W_D \cdots W_2 W_1 x` (no biases, no
nonlinearity): its function is linear, but gradient descent on its D weight matrices is not,
and it shows the plateaus and the depth dependence of real networks. Saxe, McClelland & Ganguli
solve those dynamics and find that with *decoupled* starts (random orthogonal, or greedy
layer-wise pre-training when the data allow it) the epochs needed to learn stay finite as D grows,
while scaled Gaussian starts slow down with depth.

:func:`sweep` trains one fixed regression task (:func:`linear_task`) at every (depth, start) and
records the epochs each needs to bring the training loss under a threshold; the learning rate is
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

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Generator, Tensor, nn

from neuralsmith import init as init_lib
from neuralsmith.data import Dataset
from neuralsmith.progress import progress_bar
from neuralsmith.runfolder import RunFolder, dumps_toml, read_json, write_json
from neuralsmith.train import evaluate, train_epoch

__all__ = ["LinearDepthConfig", "deep_linear", "learning_time", "linear_task", "pretrain_", "start",
           "sweep"]

logger = logging.getLogger(__name__)

LR_SCALINGS = ("depth", "none")


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
    u = init_lib.orthogonal_(torch.empty(width, width), generator=generator)
    v = init_lib.orthogonal_(torch.empty(width, width), generator=generator)
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


@dataclass(frozen=True)
class LinearDepthConfig:
    """The settings of a depth sweep (what ``neuralsmith linear-depth`` takes; written to config.toml).

    Attributes:
        depths: numbers of weight layers (Saxe et al. count layers of units: depth + 1).
        inits: starts, each ``normal``, ``pretrained`` or a scheme name (see :func:`start`).
        width: input, hidden and output size.
        n_train: training samples of :func:`linear_task`.
        lr: the learning rate of a depth-1 net; depth D trains at ``lr / D`` with ``lr_scaling="depth"``.
        lr_scaling: ``"depth"`` (Saxe et al.) or ``"none"`` (every depth at ``lr``).
        thresholds: loss levels (fractions of the targets' mean square); training stops at the
            lowest, and the epochs to reach each are recorded.
        max_epochs, batch_size: see :func:`learning_time`.
        seed: seeds the task, the starts and the data order (the same for every cell).
    """

    depths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    inits: tuple[str, ...] = ("normal", "orthogonal", "pretrained")
    width: int = 32
    n_train: int = 512
    lr: float = 1.0
    lr_scaling: str = "depth"
    thresholds: tuple[float, ...] = (0.05, 0.01)
    max_epochs: int = 300
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.depths or min(self.depths) < 1:
            raise ValueError(f"depths must be weight-layer counts >= 1, as in 2,4,8; got {self.depths}")
        if "pretrained" in self.inits and min(self.depths) < 2:
            raise ValueError("the pretrained start needs depth >= 2 (hidden layers to pre-train); drop depth 1")
        if not self.thresholds or min(self.thresholds) <= 0:
            raise ValueError(f"thresholds must be loss fractions > 0, as in 0.05,0.01; got {self.thresholds}")
        if self.lr_scaling not in LR_SCALINGS:
            raise ValueError(f"lr_scaling must be one of {', '.join(LR_SCALINGS)}; got {self.lr_scaling!r}")
        for name in self.inits:
            if name not in ("normal", "pretrained") and (name not in init_lib.SCHEMES
                                                         or init_lib.SCHEMES[name].required()):
                plain = ", ".join(s for s, v in init_lib.SCHEMES.items() if not v.required())
                raise ValueError(f"unknown start {name!r}: use normal, pretrained or a scheme without "
                                 f"required options ({plain})")

    def layer_lr(self, depth: int) -> float:
        """The SGD rate at ``depth``: lr / depth (Saxe et al.'s 1 / N_l scaling) or lr."""
        return self.lr / depth if self.lr_scaling == "depth" else self.lr


def _cell(config: LinearDepthConfig, ds: Dataset, depth: int, name: str) -> dict[str, Any]:
    """Train one (depth, start) and return its record, the loss curve included."""
    generator = torch.Generator().manual_seed(config.seed)
    net = start(deep_linear(config.width, depth), name, ds.x_train, generator=generator)
    _, losses = learning_time(net, ds, lr=config.layer_lr(depth), threshold=min(config.thresholds),
                              max_epochs=config.max_epochs, batch_size=config.batch_size, generator=generator)
    scale = float(ds.y_train.pow(2).mean())
    epochs = {str(t): _first_below(losses, t * scale) for t in config.thresholds}
    return {"depth": depth, "init": name, "lr": config.layer_lr(depth), "epochs": epochs,
            "start_loss": losses[0], "final_loss": losses[-1], "losses": losses}


def _first_below(losses: list[float], level: float) -> int | None:
    """The first epoch whose loss is <= level (losses[0] is the start, epoch 0), or None."""
    return next((epoch for epoch, loss in enumerate(losses) if loss <= level), None)


def _cached_cell(folder: RunFolder | None, config: LinearDepthConfig, ds: Dataset, depth: int,
                 name: str) -> dict[str, Any]:
    """A cell's record from the run folder if an earlier run finished it, else trained and stored."""
    path = folder.checkpoints / f"{name}-depth{depth}.json" if folder else None
    if path is not None and path.is_file():
        return read_json(path)
    record = _cell(config, ds, depth, name)
    if path is not None:
        write_json(path, record)
    return record


def _depth_ratios(records: list[dict[str, Any]], config: LinearDepthConfig) -> dict[str, dict[str, float | None]]:
    """Per threshold and start: epochs at the deepest depth over those at the shallowest (None: one missed)."""
    ratios: dict[str, dict[str, float | None]] = {}
    for t in map(str, config.thresholds):
        ratios[t] = {}
        for name in config.inits:
            mine = sorted((r for r in records if r["init"] == name), key=lambda r: r["depth"])
            first, last = mine[0]["epochs"][t], mine[-1]["epochs"][t]
            ratios[t][name] = last / first if first and last else None
    return ratios


def sweep(config: LinearDepthConfig, out: str | Path | None = None, *,
          progress: bool = True) -> dict[str, Any]:
    """Learning time against depth for every start; with ``out``, a run folder that resumes by cell.

    Writes config.toml, results.json (one record per (depth, start): ``epochs`` to each
    threshold or null, the losses at start and end; and ``depth_ratio``, per threshold and start
    the epochs at the deepest depth over those at the shallowest), metrics.csv (the loss after
    every epoch of every cell) and
    ``figures/learning_time.png``. Finished cells are kept in ``checkpoints/`` and not rerun.

    Example:
        >>> config = LinearDepthConfig(depths=(2, 4), inits=("orthogonal",), width=4, n_train=64,
        ...                            thresholds=(0.1,), max_epochs=50)
        >>> [(r["depth"], r["epochs"]["0.1"] is not None) for r in sweep(config, progress=False)["records"]]
        [(2, True), (4, True)]
    """
    folder = RunFolder(out) if out is not None else None
    if folder is not None:
        folder.claim({k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()})
    ds = linear_task(config.width, config.n_train, generator=torch.Generator().manual_seed(config.seed))
    cells = [(d, name) for d in config.depths for name in config.inits]
    records = []
    with progress_bar("depth sweep", total=len(cells), enabled=progress) as bar:
        for depth, name in cells:
            bar.describe(f"{name}, depth {depth}")
            records.append(_cached_cell(folder, config, ds, depth, name))
            bar.advance()
    results = {"records": [{k: v for k, v in r.items() if k != "losses"} for r in records],
               "depth_ratio": _depth_ratios(records, config)}
    if folder is not None:
        _write_outputs(folder, config, records, results)
    return results


def _write_outputs(folder: RunFolder, config: LinearDepthConfig, records: list[dict[str, Any]],
                   results: dict[str, Any]) -> None:
    from neuralsmith import plots  # matplotlib only when a figure is drawn

    folder.write_metrics({"init": r["init"], "depth": r["depth"], "epoch": epoch, "loss": loss}
                         for r in records for epoch, loss in enumerate(r["losses"]))
    scaling = "lr / depth" if config.lr_scaling == "depth" else "lr"
    panels = {f"loss < {t:g} of E[y²], SGD at {scaling}": {
        name: {r["depth"]: r["epochs"][str(t)] for r in records if r["init"] == name} for name in config.inits}
        for t in config.thresholds}
    figure = plots.learning_time_by_depth(panels, cap=config.max_epochs)
    results["figure"] = str(plots.save(figure, folder.figures / "learning_time.png"))
    folder.write_results(results, seed=config.seed)
