r"""Recurrent starts where they matter: identity (IRNN) and orthogonal recurrent weights on long lags.

An Elman network reads a sequence one step at a time and is read out from its last state:

.. math::
    h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad h_0 = 0, \qquad
    \hat y = W_o h_T + b_o, \qquad f \in \{\mathrm{relu}, \tanh\}

Its recurrent and input weights take any scheme of :mod:`neuralsmith.init` (``identity`` puts
W_hh = I: the IRNN of Le, Jaitly & Hinton 2015), optionally held near the identity while it
trains: *hard* (``||W_hh - I||_F <= radius``, a parametrization) or *soft* (the penalty
``lambda ||W_hh - I||_F^2`` added to the loss).

Sequences travel as flat float32 rows, step-major (``x_t`` is ``row[t*F:(t+1)*F]``), so a task is a
plain :class:`~neuralsmith.data.Dataset` and the shared loop :func:`neuralsmith.train.finetune`
trains it: the adding problem (:func:`adding_problem`) and images read pixel by pixel or row by
row (:func:`reading_shape`). The experiment behind ``neuralsmith rnn`` (its settings, the run
folder) is :mod:`neuralsmith.experiments.rnn`.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> ds = adding_problem(10, n_train=64, n_test=16, generator=g)
    >>> net = start(ElmanRNN(2, 8, 1), "identity", input_std=0.001, generator=g)
    >>> net(ds.x_test).shape, torch.equal(net.rnn.weight_hh_l0, torch.eye(8))
    (torch.Size([16, 1]), True)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Generator, Tensor, nn

from neuralsmith import data as data_lib  # noqa: F401 (used by the doctests)
from neuralsmith import init as init_lib
from neuralsmith.data import Dataset
from neuralsmith.train import loss_and_error, supervised_loss

__all__ = ["CELLS", "CONSTRAINTS", "READINGS", "ElmanRNN", "adding_problem", "check_choice", "elman_scan",
           "identity_objective", "reading_shape", "start", "state_gradient_norms"]

CELLS = ("relu", "tanh")
CONSTRAINTS = ("none", "hard", "soft")
READINGS = ("pixel", "row")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


# --- the network ---------------------------------------------------------------------------


class ElmanRNN(nn.Module):
    r"""An Elman network (one nn.RNN layer, batch-first) read out linearly from its last state.

    .. math::
        h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),\quad h_0 = 0,\quad \hat y = W_o h_T + b_o

    ``rnn`` is a plain ``nn.RNN``, so :func:`neuralsmith.init.apply`, the identity constraint
    and penalty, LSUV and the diagnostics treat it as any recurrent layer, and an ``nn.RNN``'s
    state dict loads into it (see :meth:`from_rnn`). Every weight starts at zero, drawn from
    nothing: give it a scheme with :func:`start`. The input is a batch of flat rows
    ``(batch, steps * input_size)``, step-major, or already ``(batch, steps, input_size)``.

    Args:
        input_size: features per step (2 for the adding problem, 1 for pixel-by-pixel images).
        hidden_size: recurrent units.
        output_size: outputs of the readout (1 for regression, the classes for classification).
        nonlinearity: ``"relu"`` or ``"tanh"``.

    Example:
        >>> ElmanRNN(2, 5, 1)(torch.zeros(3, 20)).shape  # 3 sequences of 10 steps
        torch.Size([3, 1])

    References:
        Elman (1990). Finding structure in time. Cognitive Science 14(2).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, nonlinearity: str = "relu"):
        super().__init__()
        check_choice("nonlinearity", nonlinearity, CELLS)
        if min(input_size, hidden_size, output_size) < 1:
            raise ValueError("input_size, hidden_size and output_size must be >= 1; got "
                             f"{input_size}, {hidden_size}, {output_size}")
        # built on the meta device, so torch's own init draws nothing; start() fills the weights
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True, device="meta")
        self.readout = nn.Linear(hidden_size, output_size, device="meta")
        self.to_empty(device="cpu")
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()

    @classmethod
    def from_rnn(cls, rnn: nn.RNN, output_size: int) -> ElmanRNN:
        """A network whose recurrent layer holds a copy of ``rnn``'s weights (a fresh readout).

        Raises:
            ValueError: for an nn.GRU / nn.LSTM, or a stacked, bidirectional or bias-free nn.RNN.
        """
        if type(rnn) is not nn.RNN or rnn.num_layers != 1 or rnn.bidirectional or not rnn.bias:
            raise ValueError("from_rnn takes a one-layer, one-direction nn.RNN with biases; got "
                             f"{rnn!r}. Copy a stacked net layer by layer")
        net = cls(rnn.input_size, rnn.hidden_size, output_size, rnn.nonlinearity)
        net.rnn.load_state_dict(rnn.state_dict())
        return net

    def sequence(self, x: Tensor) -> Tensor:
        """``x`` as ``(batch, steps, input_size)``; flat rows are split step-major."""
        if x.dim() == 3:
            return x
        if x.dim() != 2 or x.shape[1] % self.rnn.input_size:
            raise ValueError(f"expected rows of steps * {self.rnn.input_size} features (or a 3-D "
                             f"batch); got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1, self.rnn.input_size)

    def states(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """Every hidden state h_1..h_T, shape ``(batch, steps, hidden)``; h0 is ``(batch, hidden)``."""
        hx = None if h0 is None else h0.unsqueeze(0)
        return self.rnn(self.sequence(x), hx)[0]

    def forward(self, x: Tensor) -> Tensor:
        _, h_last = self.rnn(self.sequence(x))  # (1, batch, hidden)
        return self.readout(h_last[0])


def _scan(x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None, f: Callable,
          h0: Tensor | None) -> list[Tensor]:
    """The states h_1..h_T one step at a time (a list, so each can be differentiated against)."""
    drive = F.linear(x, weight_ih, bias)  # (batch, steps, hidden): every step's input share
    h = drive.new_zeros(x.shape[0], weight_hh.shape[0]) if h0 is None else h0
    states = []
    for t in range(x.shape[1]):
        h = f(torch.addmm(drive[:, t], h, weight_hh.T))
        states.append(h)
    return states


def elman_scan(x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None = None,
               bias_hh: Tensor | None = None, nonlinearity: str = "relu",
               h0: Tensor | None = None) -> Tensor:
    r"""The Elman recurrence written out step by step; the reference for ``nn.RNN`` and :class:`ElmanRNN`.

    .. math::
        h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad t = 1..T

    Args:
        x: ``(batch, steps, input_size)``.
        weight_ih, weight_hh: ``(hidden, input_size)`` and ``(hidden, hidden)``, nn.RNN's layout.
        bias_ih, bias_hh: ``(hidden,)`` or None.
        nonlinearity: ``"relu"`` or ``"tanh"``.
        h0: ``(batch, hidden)``; zeros if None.

    Returns:
        The states h_1..h_T, ``(batch, steps, hidden)``.

    Example:
        >>> x = torch.ones(1, 3, 1)
        >>> elman_scan(x, torch.ones(1, 1), torch.eye(1)).flatten().tolist()  # an IRNN counts
        [1.0, 2.0, 3.0]

    References:
        Elman (1990). Finding structure in time. Cognitive Science 14(2).
    """
    check_choice("nonlinearity", nonlinearity, CELLS)
    biases = [b for b in (bias_ih, bias_hh) if b is not None]
    bias = sum(biases) if biases else None
    return torch.stack(_scan(x, weight_ih, weight_hh, bias, getattr(torch, nonlinearity), h0), dim=1)


def state_gradient_norms(model: ElmanRNN, x: Tensor, y: Tensor) -> Tensor:
    r"""How much of the loss's gradient reaches each step: the mean over the batch of ||dL/dh_t||.

    .. math::
        g_t = \frac{1}{B}\sum_b \Big\lVert \frac{\partial L}{\partial h_t^{(b)}} \Big\rVert_2,
        \qquad \frac{\partial L}{\partial h_{t-1}}
        = W_{hh}^\top \big(f'(a_t) \odot \frac{\partial L}{\partial h_t}\big)

    A start that keeps g_1 / g_T near 1 lets the first steps learn (identity, orthogonal); one
    whose g_t decays geometrically cannot (small Gaussian recurrent weights).

    Returns:
        ``(steps,)``, step 1 first.

    Example:
        >>> net = start(ElmanRNN(1, 4, 1), "identity", generator=torch.Generator().manual_seed(0))
        >>> g = state_gradient_norms(net, torch.rand(8, 5), torch.rand(8))
        >>> g.shape
        torch.Size([5])
    """
    rnn, seq = model.rnn, model.sequence(x)
    states = _scan(seq, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0,
                   getattr(torch, rnn.nonlinearity), None)
    loss, _ = loss_and_error(model.readout(states[-1]), y)
    grads = torch.autograd.grad(loss, states)
    return torch.stack([g.norm(dim=1).mean() for g in grads]).detach()


# --- starts and the identity constraint ------------------------------------------------------


def start(model: nn.Module, scheme: str, *, constraint: str = "none", radius: float = 0.1,
          generator: Generator | None = None, **options) -> nn.Module:
    r"""Initialize every weight of ``model`` with ``scheme``; with ``constraint="hard"`` hold W_hh near I.

    .. math::
        W \leftarrow \text{scheme}(W); \qquad \text{hard: } \lVert W_{hh} - I \rVert_F \le r

    ``identity`` puts W_hh = I and N(0, input_std^2) (default 1 / fan_in) in the input and
    readout weights; any other scheme fills them all. The hard constraint is an
    :class:`~neuralsmith.init.IdentityConstraint` on every ``weight_hh`` of every ``nn.RNN``:
    a start farther than r from I is projected onto the ball. The soft form is a loss term,
    :func:`identity_objective`.

    Args:
        model: any module with nn.RNN layers (an :class:`ElmanRNN`).
        scheme: a name in :data:`neuralsmith.init.SCHEMES`.
        constraint: ``"none"``, ``"hard"`` or ``"soft"`` (soft changes only the objective).
        radius: r of the hard constraint, > 0.
        generator: the source of randomness.
        **options: the scheme's options (``std=``, ``input_std=``, ``gain=``, ``batch=``...).

    Raises:
        ValueError: for an unknown constraint, scheme or scheme option.

    Example:
        >>> net = start(ElmanRNN(2, 3, 1), "normal", std=0.01, constraint="hard", radius=0.1)
        >>> float(torch.linalg.matrix_norm(net.rnn.weight_hh_l0.detach() - torch.eye(3))) <= 0.1 + 1e-6
        True

    References:
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """
    check_choice("constraint", constraint, CONSTRAINTS)
    init_lib.apply(model, scheme, generator=generator, **options)
    if constraint == "hard":
        for layer in (m for m in model.modules() if isinstance(m, nn.RNN)):
            for name in [n for n, _ in layer.named_parameters(recurse=False) if n.startswith("weight_hh")]:
                init_lib.constrain_identity(layer, name, radius=radius)
    return model


def identity_objective(strength: float = 1e-3) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    r"""The soft identity constraint as a training objective for :func:`neuralsmith.train.finetune`.

    .. math::
        J(\theta) = L(\theta) + \lambda \sum_{\text{recurrent } W} \lVert W - I \rVert_F^2

    Example:
        >>> net = start(ElmanRNN(1, 2, 1), "identity", generator=torch.Generator().manual_seed(0))
        >>> objective = identity_objective(0.5)
        >>> x, y = torch.zeros(4, 3), torch.zeros(4)
        >>> float(objective(net, x, y).detach())  # zero input, W_hh = I: no loss, no penalty
        0.0

    References:
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """
    if not strength >= 0:
        raise ValueError(f"strength (lambda of the identity penalty) must be >= 0; got {strength}")

    def objective(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return supervised_loss(model, x, y) + init_lib.identity_penalty(model, strength)

    return objective


# --- tasks -----------------------------------------------------------------------------------


def _adding_split(n: int, length: int, generator: Generator | None) -> tuple[Tensor, Tensor]:
    """n sequences (n, length * 2) step-major [value, marker], and their targets (n,)."""
    values = torch.rand(n, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (n, 1), generator=generator)  # one marker in each half
    second = torch.randint(half, length, (n, 1), generator=generator)
    markers = torch.zeros(n, length).scatter_(1, first, 1.0).scatter_(1, second, 1.0)
    x = torch.stack([values, markers], dim=2).reshape(n, 2 * length)  # (n, T * 2), step-major
    return x, (values * markers).sum(dim=1)


def adding_problem(length: int, n_train: int = 10_000, n_test: int = 1_000, *,
                   generator: Generator | None = None) -> Dataset:
    r"""The adding problem: remember two marked numbers across ``length`` steps and add them.

    .. math::
        x_t = (v_t, m_t),\quad v_t \sim \mathcal{U}(0, 1),\quad \textstyle\sum_t m_t = 2,\quad
        y = \sum_t m_t v_t

    One marker falls uniformly in the first half of the sequence and one in the second. Always
    answering 1 (the mean) scores MSE = Var(v_i + v_j) = 2 / 12 = 0.167; Le et al. call a
    net that goes well below that "solving" it. Rows are ``(length * 2,)`` float32 in [0, 1],
    step-major; targets are float32, so :func:`neuralsmith.train.finetune` uses squared error.

    Args:
        length: T, the number of steps, >= 2.
        n_train, n_test: sequences in each split, >= 1 (Le et al.: 100 000 and 10 000).
        generator: the source of randomness (train is drawn first, then test).

    Returns:
        A :class:`~neuralsmith.data.Dataset` with ``image_shape = (length, 2)``, ``n_classes = 0``.

    Example:
        >>> ds = adding_problem(6, n_train=2, n_test=1, generator=torch.Generator().manual_seed(0))
        >>> x = ds.x_train.reshape(2, 6, 2)
        >>> torch.allclose((x[..., 0] * x[..., 1]).sum(1), ds.y_train), x[..., 1].sum(1).tolist()
        (True, [2.0, 2.0])

    References:
        Hochreiter & Schmidhuber (1997). Long short-term memory. Neural Computation 9(8).
        Le, Jaitly & Hinton (2015). A simple way to initialize recurrent networks of rectified linear units. arXiv:1504.00941.
    """
    if length < 2:
        raise ValueError(f"length (steps T) must be >= 2 so that each half holds a marker; got {length}")
    if min(n_train, n_test) < 1:
        raise ValueError(f"n_train and n_test must be >= 1; got {n_train} and {n_test}")
    x_train, y_train = _adding_split(n_train, length, generator)
    x_test, y_test = _adding_split(n_test, length, generator)
    return Dataset(x_train, y_train, x_test, y_test, image_shape=(length, 2), n_classes=0,
                   name=f"adding-{length}", source="generated: neuralsmith.rnn.adding_problem",
                   y_valid=torch.empty(0))


def reading_shape(ds: Dataset, reading: str = "pixel") -> tuple[int, int]:
    """(steps, features per step) to read ``ds``'s images pixel by pixel or row by row.

    Rows of a Dataset are images flattened row-major, so reading them row by row is the same
    row cut into ``width`` features per step; pixel by pixel is one feature per step.

    Raises:
        ValueError: for an unknown reading or a Dataset whose image_shape does not match its rows.

    Example:
        >>> ds = data_lib.load("digits")
        >>> reading_shape(ds, "pixel"), reading_shape(ds, "row")
        ((64, 1), (8, 8))
    """
    check_choice("reading", reading, READINGS)
    height, width = ds.image_shape
    if height * width != ds.n_features:
        raise ValueError(f"{ds.name}: image_shape {ds.image_shape} does not cover its "
                         f"{ds.n_features} features; a sequential reading needs real images")
    return (height * width, 1) if reading == "pixel" else (height, width)
