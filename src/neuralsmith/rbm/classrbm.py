r"""The classification RBM: one model of inputs and labels, trained generatively, discriminatively,
as a hybrid of both, or semi-supervised.

Larochelle & Bengio (2008); Larochelle, Mandel, Pascanu & Bengio (2012, JMLR 13, "Learning
algorithms for the classification restricted Boltzmann machine"). With a one-hot label
:math:`e_y` wired to the hidden layer by label weights :math:`U`,

.. math::
    E(y, x, h) = E_v(x; b) - h^\top W t(x) - c^\top h - d^\top e_y - h^\top U e_y, \qquad
    F(x, y) = E_v(x) - d_y + F_h(c + W t(x) + U_{:,y})

where :math:`F_h(a) = -\sum_j \log(1 + e^{a_j})` for Bernoulli hidden units (unit types as in
:mod:`neuralsmith.rbm.units`). Summing the C classes out exactly gives

.. math::
    p(y \mid x) = \frac{e^{-F(x, y)}}{\sum_{y'} e^{-F(x, y')}}
    = \operatorname{softmax}_y\Big(d_y + \sum_j \log\big(1 + e^{o_{yj}(x)}\big)\Big),
    \quad o_{yj}(x) = c_j + U_{jy} + W_j t(x),

a softmax over classes (computed with logsumexp). The training objectives of Larochelle et al.
(2012) are

* ``generative``: :math:`-\sum \log p(x, y)`, its gradient estimated by CD-k or PCD-k on the
  joint (x, y), the label a softmax unit group;
* ``discriminative``: :math:`-\sum \log p(y \mid x)` with its exact gradient
  (:func:`discriminative_gradients`);
* ``hybrid``: :math:`L_{\text{disc}} + \alpha L_{\text{gen}}`;
* ``semisupervised``: a supervised one (``supervised``, default the hybrid) plus
  :math:`\beta` times an unsupervised term on the unlabeled rows (``unsupervised``): the
  ``likelihood`` :math:`-\sum_{x \in \text{unlabeled}} \log p(x)`, estimated by CD where the
  positive phase draws :math:`y \sim p(y \mid x)` (their section on semi-supervised learning),
  or the ``entropy`` :math:`\sum_{x \in \text{unlabeled}} H(p(y \mid x))` of the class
  posterior (entropy minimization, Grandvalet & Bengio 2005), with its exact gradient
  (:func:`entropy_gradients`).

Every objective trains through the one training loop, :func:`neuralsmith.loop.fit` (epochs,
divergence roll-back, checkpoints, keep-best and patience, progress), driving a
:class:`ClassUpdater` whose update composes the statistics of the objective with the shared
:class:`~neuralsmith.rbm.learning.Momentum`.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.bernoulli(torch.full((60, 6), 0.5), generator=g)
    >>> y = (x[:, 0] + x[:, 1] > 0.5).long()
    >>> model = ClassRBM.from_data(x, y, 8, generator=g)
    >>> hist = train_classrbm(model, x, y, epochs=20, batch_size=10, lr=0.2, generator=g,
    ...                       progress=False)
    >>> float((model.predict(x) == y).float().mean()) > 0.8
    True
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Generator, Tensor, nn

from neuralsmith import checkpoint, precision as precision_mod
from neuralsmith.rbm import draws, units as units_mod
from neuralsmith.loop import BEST, History, check_patience, fit  # noqa: F401 (BEST re-exported)
from neuralsmith.rbm.learning import Momentum, Settings, check_data
from neuralsmith.rbm.model import CLIP, check_layer, check_size
from neuralsmith.seeds import resolve_generator
from neuralsmith.settings import default_of

log = logging.getLogger(__name__)

OBJECTIVES = ("generative", "discriminative", "hybrid", "semisupervised")
SUPERVISED = ("generative", "discriminative", "hybrid")
BATCHINGS = ("paired", "stream")
UNSUPERVISED = ("likelihood", "entropy")
CLASS_METHODS = ("cd", "pcd")
CHUNK = 1000  # rows scored at once: (CHUNK, n_classes, n_hidden) floats


class ClassRBM(nn.Module):
    """A classification RBM over inputs x and one of ``n_classes`` labels.

    Args:
        n_visible: input units.
        n_hidden: hidden units.
        n_classes: label values (at least 2).
        visible: ``"bernoulli"`` (inputs in [0, 1]) or ``"gaussian"`` (standardized inputs,
            unit standard deviation).
        hidden: ``"bernoulli"`` or ``"relu"``.
        generator: draws the initial weights, :math:`W \\sim U(-a, a)` with
            :math:`a = 1/\\sqrt{\\max(n_{hidden}, n_{visible})}` and :math:`U \\sim U(-u, u)`
            with :math:`u = 1/\\sqrt{C}` (our choice). The discriminative gradient of W is
            proportional to the differences between U's columns, so a small U starts training
            on a saddle (every hidden unit the same for every class); a larger U makes hidden
            units class-selective from the start and shortens that plateau. None: a fresh,
            logged seed (:func:`neuralsmith.seeds.resolve_generator`).
        dtype, device: where the parameters live.

    Raises:
        ValueError: for non-positive sizes, fewer than 2 classes, or unknown unit types.

    Example:
        >>> m = ClassRBM(6, 4, 3, generator=torch.Generator().manual_seed(0))
        >>> m.predict_proba(torch.ones(2, 6)).shape
        torch.Size([2, 3])
    """

    def __init__(self, n_visible: int, n_hidden: int, n_classes: int, *,
                 visible: str = "bernoulli", hidden: str = "bernoulli",
                 generator: Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        check_size("n_visible", n_visible)
        check_size("n_hidden", n_hidden)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2 (label values); got {n_classes!r}")
        self.visible_units = units_mod.get(visible, "visible")
        self.hidden_units = units_mod.get(hidden, "hidden")
        self.label_units = units_mod.Softmax()
        kw = {"dtype": dtype, "device": device}
        generator = resolve_generator(generator, "cpu" if device is None else device)
        a = 1.0 / math.sqrt(max(n_hidden, n_visible))
        w = torch.empty(n_hidden, n_visible, **kw).uniform_(-a, a, generator=generator)
        self.weight = nn.Parameter(w)
        u = 1.0 / math.sqrt(n_classes)
        w = torch.empty(n_hidden, n_classes, **kw).uniform_(-u, u, generator=generator)
        self.label_weight = nn.Parameter(w)
        self.visible_bias = nn.Parameter(torch.zeros(n_visible, **kw))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden, **kw))
        self.label_bias = nn.Parameter(torch.zeros(n_classes, **kw))

    @classmethod
    def from_data(cls, x: Tensor, y: Tensor, n_hidden: int, *, n_classes: int | None = None,
                  **kwargs: Any) -> "ClassRBM":
        r"""A ClassRBM sized for ``x`` (n, n_visible) and labels ``y``, biases set from the data.

        Visible biases :math:`\log(p_i / (1 - p_i))` (Bernoulli, :math:`p_i` clipped to
        [0.001, 0.999]) or the mean (Gaussian), as Hinton (2010) advises; label biases the log
        class frequencies, so that :math:`p(y \mid x)` starts near the class prior.

        Example:
            >>> m = ClassRBM.from_data(torch.ones(4, 3), torch.tensor([0, 0, 0, 1]), 2)
            >>> m.n_classes, [round(v, 2) for v in m.label_bias.tolist()]
            (2, [-0.29, -1.39])
        """
        n_classes = int(y.max()) + 1 if n_classes is None else n_classes
        kwargs.setdefault("dtype", x.dtype if x.is_floating_point() else torch.float32)
        kwargs.setdefault("device", x.device)
        return cls(int(x.shape[-1]), n_hidden, n_classes, **kwargs).init_biases_(x, y)

    @torch.no_grad()
    def init_biases_(self, x: Tensor, y: Tensor) -> "ClassRBM":
        """Set the visible and label biases from data, as :meth:`from_data` describes."""
        x = check_data(self, x, "x")
        y = _check_labels(self, y, len(x), "y")
        p = x.mean(0)
        if self.visible_units.binary:
            p = p.clamp(CLIP, 1 - CLIP)
            p = torch.log(p) - torch.log1p(-p)
        self.visible_bias.copy_(p)
        freq = torch.bincount(y, minlength=self.n_classes).to(x.dtype) / len(y)
        self.label_bias.copy_(torch.log(freq.clamp(min=1.0 / len(y))))
        return self

    @property
    def n_visible(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_hidden(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.label_weight.shape[1])

    @property
    def visible_std(self) -> None:
        """Gaussian visibles have unit standard deviation here (standardize the inputs)."""
        return None

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-ready (for checkpoints)."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden,
                "n_classes": self.n_classes, "visible": self.visible_units.name,
                "hidden": self.hidden_units.name}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    # --- the math -------------------------------------------------------------------------

    def hidden_input(self, x: Tensor) -> Tensor:
        r"""The label-free part of the hidden input, :math:`c + W t(x)`, shape (batch, n_hidden)."""
        t = self.visible_units.stat(x, None)
        return torch.addmm(self.hidden_bias, t, self.weight.t())

    def class_inputs(self, x: Tensor) -> Tensor:
        r""":math:`o_{yj}(x) = c_j + U_{jy} + W_j t(x)` for every class, shape (batch, C, n_hidden)."""
        return self.hidden_input(x).unsqueeze(1) + self.label_weight.t().unsqueeze(0)

    def label_logits(self, x: Tensor) -> Tensor:
        r""":math:`d_y - F_h(o_y(x)) = -F(x, y) + E_v(x)`, shape (batch, C): the logits of p(y|x)."""
        o = self.class_inputs(check_layer(x, self.n_visible, "x", "visible"))
        return self.label_bias - self.hidden_units.free_energy(o, self.hidden_bias)

    def free_energy(self, x: Tensor, y: Tensor) -> Tensor:
        r""":math:`F(x, y) = E_v(x) - d_y + F_h(c + W t(x) + U_{:,y})`, shape (batch,).

        Example:
            >>> m = ClassRBM(3, 2, 2)
            >>> m.free_energy(torch.zeros(1, 3), torch.tensor([1])).shape
            torch.Size([1])
        """
        x = check_layer(x, self.n_visible, "x", "visible")
        y = _check_labels(self, y, len(x), "y")
        a = self.hidden_input(x) + self.label_weight.t()[y]  # (batch, n_hidden)
        return (self.visible_units.energy(x, self.visible_bias, None) - self.label_bias[y]
                + self.hidden_units.free_energy(a, self.hidden_bias))

    @torch.no_grad()
    def log_proba(self, x: Tensor) -> Tensor:
        r""":math:`\log p(y \mid x)` for every class, shape (batch, C), by logsumexp, in chunks."""
        x = check_layer(x, self.n_visible, "x", "visible")
        if len(x) == 0:
            return x.new_zeros(0, self.n_classes)
        return torch.cat([torch.log_softmax(self.label_logits(x[i:i + CHUNK]), dim=-1)
                          for i in range(0, len(x), CHUNK)])

    def predict_proba(self, x: Tensor) -> Tensor:
        r""":math:`p(y \mid x)`, shape (batch, C); rows sum to 1."""
        return self.log_proba(x).exp()

    def predict(self, x: Tensor) -> Tensor:
        r""":math:`\arg\max_y p(y \mid x)`, int64, shape (batch,)."""
        return self.log_proba(x).argmax(-1)

    def hidden_probs(self, x: Tensor, y: Tensor) -> Tensor:
        r""":math:`E[h \mid x, y]`: :math:`\sigma(c + W t(x) + U_{:,y})` for Bernoulli hidden units."""
        x = check_layer(x, self.n_visible, "x", "visible")
        y = _check_labels(self, y, len(x), "y")
        return self.hidden_units.mean(self.hidden_input(x) + self.label_weight.t()[y])

    def label_input(self, h: Tensor) -> Tensor:
        r"""Input to the label group, :math:`d + U^\top h`, shape (batch, C)."""
        return torch.addmm(self.label_bias, h, self.label_weight)

    def visible_input(self, h: Tensor) -> Tensor:
        r"""Input to the visible units, :math:`b + W^\top h`, shape (batch, n_visible)."""
        return torch.addmm(self.visible_bias, h, self.weight)

    @torch.no_grad()
    def gibbs(self, x: Tensor, y: Tensor, k: int = 1,
              generator: Generator | None = None) -> tuple[Tensor, Tensor]:
        """``k`` steps of block Gibbs sampling (x, y) -> h -> (x, y); returns (x_k, y_k labels).

        Example:
            >>> m = ClassRBM(4, 3, 2)
            >>> xk, yk = m.gibbs(torch.zeros(5, 4), torch.zeros(5, dtype=torch.long), k=2,
            ...                  generator=torch.Generator())
            >>> xk.shape, yk.shape
            (torch.Size([5, 4]), torch.Size([5]))
        """
        e = F.one_hot(_check_labels(self, y, len(x), "y"), self.n_classes).to(x.dtype)
        for _ in range(k):
            a = self.hidden_input(x) + e @ self.label_weight.t()
            h = self.hidden_units.sample(a, None, generator)
            e = self.label_units.sample(self.label_input(h), None, generator)
            x = self.visible_units.sample(self.visible_input(h), None, generator)
        return x, e.argmax(-1)


def _check_labels(model: ClassRBM, y: Tensor, n: int, name: str) -> Tensor:
    """``y`` as int64 labels in [0, n_classes), one per row."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices; got {type(y).__name__}")
    if y.dim() != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({n},), one class index per row; got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, not {y.dtype}; use y.long()")
    if n and (int(y.min()) < 0 or int(y.max()) >= model.n_classes):
        raise ValueError(f"{name} must lie in [0, {model.n_classes}) for this model's "
                         f"{model.n_classes} classes; got values in [{int(y.min())}, {int(y.max())}]")
    return y.to(device=model.weight.device, dtype=torch.int64)


# --- the statistics -------------------------------------------------------------------------

def discriminative_gradients(model: ClassRBM, x: Tensor, y: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    r"""The exact gradient of :math:`\frac1n\sum \log p(y \mid x)` (Larochelle & Bengio, 2008).

    With :math:`s_{yj} = -\partial F_h / \partial o_{yj}` (:math:`\sigma(o_{yj})` for Bernoulli
    units) and :math:`r_{y'} = 1_{y' = y} - p(y' \mid x)`,

    .. math::
        \frac{\partial \log p(y \mid x)}{\partial \theta}
        = \sum_{y'} r_{y'} \sum_j s_{y'j} \frac{\partial o_{y'j}}{\partial \theta}
        + \sum_{y'} r_{y'} \frac{\partial d_{y'}}{\partial \theta},

    (:func:`conditional_gradients` with :math:`r = \partial \log p(y \mid x) / \partial z`), so
    :math:`\nabla_W = q\, t(x)^\top`, :math:`\nabla_c = q`, :math:`\nabla_{U_{:,y'}} = r_{y'} s_{y'}`,
    :math:`\nabla_d = r`, with :math:`q = \sum_{y'} r_{y'} s_{y'}`; the visible biases cancel.

    Returns:
        The gradients by parameter name (ascent directions, batch means), and the label-free
        hidden input :math:`c + W t(x)` (batch, n_hidden), which a generative term can reuse.
    """
    return conditional_gradients(model, x, lambda z: F.one_hot(y, model.n_classes).to(z.dtype)
                                 - torch.softmax(z, -1))


def entropy_gradients(model: ClassRBM, x: Tensor) -> dict[str, Tensor]:
    r"""The exact gradient of :math:`-\frac1n\sum H(p(y \mid x))`: entropy minimization on
    unlabeled rows (Grandvalet & Bengio, 2005, "Semi-supervised learning by entropy
    minimization"), which moves the class boundaries away from dense regions of x.

    With :math:`H = -\sum_y p_y \log p_y` and class logits z,
    :math:`\partial (-H) / \partial z_y = p_y(\log p_y + H)`; the rest is
    :func:`conditional_gradients`.
    """
    def direction(z: Tensor) -> Tensor:
        logp = torch.log_softmax(z, -1)
        p = logp.exp()
        return p * (logp - (p * logp).sum(-1, keepdim=True))
    return conditional_gradients(model, x, direction)[0]


def conditional_gradients(model: ClassRBM, x: Tensor, direction: Callable[[Tensor], Tensor]
                          ) -> tuple[dict[str, Tensor], Tensor]:
    r"""The gradient of a batch mean of :math:`f(z(x))`, a function of the class logits
    :math:`z_y = d_y - F_h(o_y)`, given ``direction(z)`` = :math:`r = \partial f / \partial z`
    (batch, C).

    Returns:
        The gradients by parameter name, and the hidden input :math:`c + W t(x)`.
    """
    a = model.hidden_input(x)  # (batch, n_hidden)
    o = a.unsqueeze(1) + model.label_weight.t().unsqueeze(0)  # (batch, C, n_hidden)
    logits = model.label_bias - model.hidden_units.free_energy(o, model.hidden_bias)
    s = model.hidden_units.mean(o)  # (batch, C, n_hidden)
    r = direction(logits)  # (batch, C)
    q = torch.bmm(r.unsqueeze(1), s).squeeze(1)  # (batch, n_hidden)
    n = len(x)
    t = model.visible_units.stat(x, None)
    grads = {"weight": torch.mm(q.t(), t).div_(n), "hidden_bias": q.mean(0),
             "label_weight": torch.einsum("nc,nch->hc", r, s).div_(n), "label_bias": r.mean(0)}
    return grads, a


def sample_labels(model: ClassRBM, x: Tensor, generator: Generator | None) -> Tensor:
    r"""One-hot draws :math:`y \sim p(y \mid x)`, shape (batch, C)."""
    return model.label_units.sample(model.label_logits(x), None, generator)


def cd_gradients(model: ClassRBM, x: Tensor, e: Tensor | None, k: int,
                 generator: Generator | None, chain_h: Tensor | None = None,
                 hidden_in: Tensor | None = None) -> tuple[dict[str, Tensor], Tensor]:
    r"""CD-k (or PCD-k) statistics of :math:`\log p(x, y)`.

    The estimate is :math:`\langle -\partial E\rangle_0 - \langle -\partial E\rangle_k`.
    The positive phase is :math:`E[h \mid x, y]` at the data; the negative phase runs k block
    Gibbs steps h -> (x, y) -> h, from :math:`h_0 \sim p(h \mid x, y)` (CD) or from the
    persistent hidden states ``chain_h`` (PCD; Tieleman, 2008). With ``e=None`` the labels are
    missing and drawn, :math:`y \sim p(y \mid x)`: the CD estimate of
    :math:`\nabla \log p(x)` of Larochelle et al. (2012) for unlabeled inputs.

    Args:
        model: the ClassRBM.
        x: inputs (batch, n_visible).
        e: one-hot labels (batch, C), or None to draw them from :math:`p(y \mid x)`.
        k: Gibbs steps.
        generator: every draw.
        chain_h: persistent hidden states (chains, n_hidden), or None for CD.
        hidden_in: :math:`c + W t(x)` if already computed.

    Returns:
        The gradients by parameter name, and the last hidden sample (the chains' next state).
    """
    if e is None:
        e = sample_labels(model, x, generator)
    a0 = (model.hidden_input(x) if hidden_in is None else hidden_in) + e @ model.label_weight.t()
    ph0 = model.hidden_units.mean(a0)  # (batch, n_hidden)
    h = chain_h if chain_h is not None else model.hidden_units.sample(a0, None, generator, ph0)
    xk, ek, phk, h = _negative_phase(model, h, k, generator)
    vis, b = model.visible_units, model.visible_bias
    t0, tk = vis.stat(x, None), vis.stat(xk, None)
    grads = {"weight": _product_difference(ph0, t0, phk, tk),
             "visible_bias": _mean_difference(vis.bias_stat(x, b), vis.bias_stat(xk, b)),
             "hidden_bias": _mean_difference(ph0, phk),
             "label_weight": _product_difference(ph0, e, phk, ek),
             "label_bias": _mean_difference(e, ek)}
    return grads, h


def _product_difference(p0: Tensor, t0: Tensor, pk: Tensor, tk: Tensor) -> Tensor:
    r""":math:`p_0^\top t_0 / n_0 - p_k^\top t_k / n_k`, the CD weight statistic.

    In bf16 the two phases nearly cancel, so they are one GEMM of the stacked rows, weighted
    :math:`\pm 1/n`, accumulated in fp32 and rounded once (then returned as fp32); in fp32, two
    products into one buffer.
    """
    n0, nk = len(p0), len(pk)
    if p0.dtype != torch.bfloat16:
        return torch.mm(p0.t(), t0).div_(n0).addmm_(pk.t(), tk, alpha=-1.0 / nk)
    rows = torch.cat([p0 * (1.0 / n0), pk * (-1.0 / nk)])
    return torch.mm(rows.t(), torch.cat([t0, tk])).float()


def _mean_difference(a: Tensor, b: Tensor) -> Tensor:
    """``a.mean(0) - b.mean(0)``, summed in fp32 for bf16 rows."""
    if a.dtype != torch.bfloat16:
        return a.mean(0) - b.mean(0)
    return a.sum(0, dtype=torch.float32) / len(a) - b.sum(0, dtype=torch.float32) / len(b)


def _negative_phase(model: ClassRBM, h: Tensor, k: int, generator: Generator | None
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """k Gibbs steps from hidden states h: returns (x_k, e_k, E[h | x_k, y_k], h_k sample)."""
    for _ in range(k):
        ek = model.label_units.sample(model.label_input(h), None, generator)  # (chains, C)
        xk = model.visible_units.sample(model.visible_input(h), None, generator)
        ak = model.hidden_input(xk) + ek @ model.label_weight.t()  # (chains, n_hidden)
        phk = model.hidden_units.mean(ak)
        h = model.hidden_units.sample(ak, None, generator, phk)
    return xk, ek, phk, h


Generative = Callable[[nn.Module, Tensor, "Tensor | None", "Tensor | None"], dict[str, Tensor]]


def objective_gradients(model: ClassRBM, xl: Tensor, yl: Tensor, xu: Tensor | None,
                        weights: tuple[float, float, float], generative: Generative,
                        unsupervised: str = "likelihood") -> dict[str, Tensor]:
    r"""The ascent direction of :math:`-(w_d L_{\text{disc}} + w_g L_{\text{gen}} + w_u L_{\text{unsup}})`.

    ``weights`` is :math:`(w_d, w_g, w_u)` (see :meth:`ClassSettings.weights`);
    ``generative(model, x, e, hidden_in)`` returns the statistics of the generative term on
    labeled rows (one-hot ``e``) or unlabeled rows (``e=None``): CD here, a denoising
    reconstruction in :mod:`neuralsmith.hybrid`. The unlabeled rows' term is that statistic
    (``unsupervised="likelihood"``) or :func:`entropy_gradients` (``"entropy"``). An empty part
    of the batch adds nothing.
    """
    w_disc, w_gen, w_unsup = weights
    grads: dict[str, Tensor] = {}
    if len(xl):
        hidden_in = None
        if w_disc:
            g, hidden_in = discriminative_gradients(model, xl, yl)
            _accumulate(grads, g, w_disc)
        if w_gen:
            e = F.one_hot(yl, model.n_classes).to(xl.dtype)
            _accumulate(grads, generative(model, xl, e, hidden_in), w_gen)
    if w_unsup and xu is not None and len(xu):
        g = entropy_gradients(model, xu) if unsupervised == "entropy" else generative(model, xu, None, None)
        _accumulate(grads, g, w_unsup)
    return grads


def _accumulate(total: dict[str, Tensor], grads: dict[str, Tensor], weight: float) -> None:
    for name, g in grads.items():
        total[name] = g.mul_(weight) if name not in total else total[name].add_(g, alpha=weight)


@torch.no_grad()
def class_scores(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float | None, float | None]:
    r"""Mean :math:`-\log p(y \mid x)` and error rate (percent) of any model with ``log_proba``."""
    if len(x) == 0:
        return None, None
    logp = model.log_proba(x)
    nll = -logp.gather(1, y.view(-1, 1)).mean()
    return float(nll), 100.0 * float((logp.argmax(-1) != y).float().mean())


# --- training -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassSettings(Settings):
    r""":class:`~neuralsmith.rbm.Settings` plus the objective; checked on creation.

    Attributes:
        objective: one of ``OBJECTIVES``.
        alpha: weight of the generative term in the hybrid objective (Larochelle et al. 2012
            found 0.01 to 0.1 best on MNIST).
        beta: weight of the unsupervised term of the semi-supervised objective.
        unsupervised: that term, ``entropy`` (of :math:`p(y \mid x)`; Grandvalet & Bengio
            2005; the default: it beat supervised-only training in all six comparisons of the
            README's semi-supervised table on Fashion-MNIST, where ``likelihood`` won three) or
            ``likelihood`` (:math:`-\log p(x)` by CD; Larochelle et al. 2012).
        schedule: as in :class:`~neuralsmith.rbm.Settings`, but ``linear`` decay by default:
            with it the hybrid objective beat both others on Fashion-MNIST (median test error
            10.65% against 11.04% discriminative); at a constant rate the discriminative one
            won (11.47% against 11.60%). :meth:`larochelle2012` gives the paper's constant rate and likelihood term.
        supervised: the supervised part of ``semisupervised``: ``generative``,
            ``discriminative`` or ``hybrid``.
        batching: ``paired`` (an epoch is a pass over the labeled rows; each batch of them
            comes with ``unlabeled_ratio`` times as many unlabeled rows) or ``stream`` (an
            epoch is one pass over all rows in random order, labeled and unlabeled mixed in
            each batch: online learning).
        unlabeled_ratio: unlabeled rows per labeled row in each ``paired`` update. The
            unsupervised term is a batch mean, so a larger ratio keeps its weight and lowers
            its variance, and sweeps the unlabeled rows that many times faster.

    Example:
        >>> ClassSettings(epochs=1, objective="semisupervised", alpha=0.1, beta=0.5).weights()
        (1.0, 0.1, 0.5)
    """

    objective: str = "hybrid"
    alpha: float = 0.01
    beta: float = 0.1
    supervised: str = "hybrid"
    unsupervised: str = "entropy"
    batching: str = "paired"
    unlabeled_ratio: int = 1
    schedule: str = "linear"  # Settings' is constant; decay is what lets the hybrid win

    @classmethod
    def larochelle2012(cls, **overrides: Any) -> "ClassSettings":
        """Larochelle et al.'s (2012) settings: a constant learning rate, the likelihood term.

        Example:
            >>> s = ClassSettings.larochelle2012(epochs=5)
            >>> (s.schedule, s.unsupervised, s.epochs)
            ('constant', 'likelihood', 5)
        """
        return cls(**{"schedule": "constant", "unsupervised": "likelihood", **overrides})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("supervised", self.supervised, SUPERVISED)
        _check_choice("batching", self.batching, BATCHINGS)
        _check_choice("unsupervised", self.unsupervised, UNSUPERVISED)
        if self.method not in CLASS_METHODS:
            raise ValueError(f"method must be one of {', '.join(CLASS_METHODS)} for a ClassRBM; "
                             f"got {self.method!r}")
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (a term's weight); got {value!r}")
        r = self.unlabeled_ratio
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"unlabeled_ratio must be an int >= 1 (unlabeled rows per labeled row); "
                             f"got {r!r}")
        if r != 1 and self.batching != "paired":
            raise ValueError("unlabeled_ratio applies to paired batching; stream batching mixes rows "
                             "in their natural proportion, so leave it 1")
        if self.sparsity_target is not None:
            raise ValueError("sparsity_target is not offered for a ClassRBM; leave it None")
        self._check_precision()

    def _check_precision(self) -> None:
        """bf16 runs the generative (CD) term's products: refused where the objective has none."""
        _, w_gen, w_unsup = self.weights()
        if self.precision != "fp32" and not (w_gen or (w_unsup and self.unsupervised == "likelihood")):
            raise ValueError(f"precision={self.precision!r} runs the products of the generative "
                             "term in bf16, and this objective has none; use precision='fp32', or "
                             "a hybrid, generative or likelihood semi-supervised objective")

    def weights(self) -> tuple[float, float, float]:
        """(discriminative, generative, unsupervised) weights of the objective."""
        part = self.supervised if self.objective == "semisupervised" else self.objective
        w = {"generative": (0.0, 1.0), "discriminative": (1.0, 0.0), "hybrid": (1.0, float(self.alpha))}[part]
        return (*w, float(self.beta) if self.objective == "semisupervised" else 0.0)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


ClassHistory = History  # the one history shape of neuralsmith.loop (kept name)


def _as_input(x: Tensor) -> list[Tensor]:
    """A single model's one input: the batch itself."""
    return [x]


class ClassUpdater:
    """The updater of the ClassRBM objectives, run by :func:`neuralsmith.loop.fit`.

    Each update moves every *expert* (a ClassRBM: the model itself, or each layer of a stack)
    along its objective's gradient (:func:`objective_gradients`) on its own input, with
    momentum and weight decay on :math:`W, U`.

    Args:
        model: the model trained (its ``state_dict`` is checkpointed; ``log_proba`` scores it).
        x, y, x_unlabeled, x_valid, y_valid: data checked by :func:`check_class_data`.
        settings: the :class:`ClassSettings`.
        generator: every random draw (batches, Gibbs samples, corruption).
        experts: (parameter-name prefix, ClassRBM) of each expert; default the model itself.
        represent: each expert's input for a batch of rows; default the rows themselves.
        generative: the statistics of the generative term, ``(expert, x, e, hidden_in) ->
            gradients``; default CD-k, or PCD-k with chains this updater keeps.
        name: what the progress bar calls the run.

    Raises:
        ValueError: persistent chains asked for more than one expert.
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, x_unlabeled: Tensor | None,
                 x_valid: Tensor | None, y_valid: Tensor | None, settings: ClassSettings,
                 generator: Generator, *, experts: list[tuple[str, ClassRBM]] | None = None,
                 represent: Callable[[Tensor], list[Tensor]] = _as_input,
                 generative: Generative | None = None, name: str | None = None):
        self.model, self.settings, self.generator, self.epoch = model, settings, generator, 0
        self.x, self.y, self.x_valid, self.y_valid = x, y, x_valid, y_valid
        used = settings.objective == "semisupervised" and x_unlabeled is not None
        self.x_unlabeled = x_unlabeled if used else x[:0]
        self.experts = [("", model)] if experts is None else experts
        self.represent, self.generative = represent, generative or self._cd
        self.name = name or f"{type(model).__name__} {settings.objective}"
        self.params = dict(model.named_parameters())
        self.momentum = Momentum(self.params, settings.momentum)
        w = next(iter(self.params.values()))
        self.dtype = precision_mod.compute_dtype(settings.precision, w.device, w.dtype)
        self.shadow = precision_mod.Shadow(self.dtype)  # the experts' bf16 parameters
        self.twins: dict[int, nn.Module] = {}  # modules holding them, see _in_bf16
        self.draws = draws.for_dtype(generator, self.dtype)  # the default CD term's draws
        if self.dtype != w.dtype:
            self.generative = self._in_bf16(self.generative)
        self.chain_h = self._chains()

    def _in_bf16(self, term: Generative) -> Generative:
        """``term`` run on bf16 copies of the expert and its inputs; its statistics come back fp32.

        The discriminative gradient stays fp32: its free energies sum hundreds of softplus
        terms, which bf16 would round to whole units. The copies are refreshed once per update.
        """
        def in_bf16(expert: nn.Module, x: Tensor, e: Tensor | None,
                    hidden_in: Tensor | None) -> dict[str, Tensor]:
            low = [None if t is None else t.to(self.dtype) for t in (x, e, hidden_in)]
            return {name: g.float() for name, g in term(self._copy(expert), *low).items()}
        return in_bf16

    def _copy(self, expert: nn.Module) -> nn.Module:
        """``expert`` with the bf16 copies of its parameters (:class:`~neuralsmith.precision.Shadow`)."""
        twin = self.twins.get(id(expert))
        if twin is None:
            twin = self.twins[id(expert)] = copy.deepcopy(expert).to(self.dtype)
        for (name, mine), master in zip(twin.named_parameters(), expert.parameters()):
            mine.data = self.shadow.get(f"{id(expert)}.{name}", master)
        return twin

    def _chains(self) -> Tensor | None:
        """PCD's persistent hidden states, zero to start (their first x comes from the biases)."""
        s = self.settings
        if not s.persistent:
            return None
        if len(self.experts) != 1:
            raise ValueError("persistent chains (method='pcd') train a single ClassRBM; use method='cd'")
        expert = self.experts[0][1]
        w = expert.weight
        n = s.n_chains_for(min(s.batch_size, len(self.x)))
        return torch.zeros(n, expert.n_hidden, dtype=self.dtype, device=w.device)

    def step(self, xl: Tensor, yl: Tensor, xu: Tensor | None) -> None:
        """One update from labeled rows (xl, yl) and unlabeled rows xu, every expert in turn."""
        s = self.settings
        self.shadow.expire()  # the bf16 copies (if any) follow the last update
        inputs_l = self.represent(xl)
        inputs_u = [None] * len(self.experts) if xu is None else self.represent(xu)
        for (prefix, expert), rl, ru in zip(self.experts, inputs_l, inputs_u):
            grads = objective_gradients(expert, rl, yl, ru, s.weights(), self.generative, s.unsupervised)
            self._apply_grads(grads, prefix)

    def _apply_grads(self, grads: dict[str, Tensor], prefix: str) -> None:
        """Momentum ascent on each parameter; weight decay on the weight matrices."""
        decay, lr = self.settings.weight_decay, self.settings.lr_at(self.epoch)
        for name, g in grads.items():
            if decay and name in ("weight", "label_weight"):
                g = g.add_(self.params[prefix + name], alpha=-decay)
            self.momentum.step(prefix + name, g, lr)

    def _cd(self, model: nn.Module, x: Tensor, e: Tensor | None,
            hidden_in: Tensor | None) -> dict[str, Tensor]:
        """The default generative term: CD-k, or PCD-k on this updater's chains."""
        s = self.settings
        grads, h = cd_gradients(model, x, e, s.k, self.draws, self.chain_h, hidden_in)
        if s.persistent:
            self.chain_h = h
        return grads

    # --- epochs and the updater protocol of neuralsmith.loop -------------------------------

    def batches(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        """Index pairs (labeled rows, unlabeled rows or None) of one epoch, as ``batching`` says."""
        s, g, bs = self.settings, self.generator, self.settings.batch_size
        n_l, n_u = len(self.x), len(self.x_unlabeled)
        if s.batching == "stream":
            perm = torch.randperm(n_l + n_u, generator=g, device=g.device)
            for lo in range(0, n_l + n_u, bs):
                idx = perm[lo:lo + bs]
                labeled = idx < n_l
                yield idx[labeled], (idx[~labeled] - n_l) if n_u else None
            return
        perm = torch.randperm(n_l, generator=g, device=g.device)
        u_perm = torch.randperm(n_u, generator=g, device=g.device) if n_u else None
        r = s.unlabeled_ratio
        for lo in range(0, n_l, bs):
            li = perm[lo:lo + bs]
            if u_perm is None:
                yield li, None
            else:  # r unlabeled rows per labeled row, cycling through a fresh permutation
                yield li, u_perm[torch.arange(lo * r, (lo + len(li)) * r, device=g.device) % n_u]

    def n_batches(self) -> int:
        """Updates per epoch."""
        n = len(self.x) + (len(self.x_unlabeled) if self.settings.batching == "stream" else 0)
        return math.ceil(n / self.settings.batch_size)

    def run_epoch(self, on_batch: Callable[[], None] = lambda: None) -> None:
        """One epoch of updates."""
        dev = self.x.device
        for li, ui in self.batches():
            li = li.to(dev)
            self.step(self.x[li], self.y[li], None if ui is None else self.x_unlabeled[ui.to(dev)])
            on_batch()

    def monitor(self) -> dict[str, Any]:
        """Negative log-likelihood of the labels and error (%) on training and validation rows."""
        m = self.settings.monitor_size
        row: dict[str, Any] = {}
        row["train_nll"], row["train_error"] = class_scores(self.model, self.x[:m], self.y[:m])
        valid = self.x_valid if self.x_valid is not None else self.x[:0]
        row["valid_nll"], row["valid_error"] = class_scores(
            self.model, valid, self.y_valid if self.y_valid is not None else self.y[:0])
        return row

    def finite(self) -> bool:
        """Whether every parameter (and chain state) is still finite."""
        tensors = list(self.params.values()) + ([] if self.chain_h is None else [self.chain_h])
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def tensors(self) -> dict[str, Tensor]:
        """Everything a resumed run needs, flat, for safetensors."""
        out = {f"rbm.{k}": v for k, v in self.model.state_dict().items()}
        out.update(self.momentum.tensors())
        if self.chain_h is not None:
            out["chain_h"] = self.chain_h
        out["generator"] = checkpoint.generator_state(self.generator)
        return {k: v.detach().clone() for k, v in out.items()}

    @torch.no_grad()
    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Put a state from :meth:`tensors` back, in place."""
        self.model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rbm.")})
        self.momentum.load_tensors(tensors)
        if self.chain_h is not None:
            self.chain_h = tensors["chain_h"].to(self.chain_h).clone()
        checkpoint.restore_generator(self.generator, tensors["generator"])

    def meta(self) -> dict[str, Any]:
        """What a resumed run must share: the settings (all but epochs) and the model."""
        return {"settings": self.settings.resume_key(), "rbm": self.model.config()}

    def label(self) -> str:
        return self.name

    def summary(self, row: dict[str, Any]) -> str:
        text = f"train err {row['train_error']:.2f}%"
        if row.get("valid_error") is not None:
            text += f" valid err {row['valid_error']:.2f}%"
        return text


def train_classrbm(model: ClassRBM, x: Tensor, y: Tensor, *, epochs: int,
                   objective: str = "hybrid", alpha: float = 0.01, beta: float = 0.1,
                   supervised: str = "hybrid",
                   unsupervised: str = default_of(ClassSettings, "unsupervised"),
                   x_unlabeled: Tensor | None = None,
                   batching: str = "paired", unlabeled_ratio: int = 1, batch_size: int = 20,
                   lr: float = 0.05, k: int = 1,
                   method: str = "cd", n_chains: int | None = None, momentum: float = 0.9,
                   weight_decay: float = 0.0,
                   schedule: str = default_of(ClassSettings, "schedule"), precision: str = "fp32",
                   x_valid: Tensor | None = None, y_valid: Tensor | None = None,
                   patience: int | None = None,
                   generator: Generator | None = None,
                   callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
                   checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                   monitor_size: int = 1000) -> ClassHistory:
    r"""Train ``model`` in place on labeled rows (x, y) (and unlabeled ``x_unlabeled``).

    Each update ascends the objective's gradient (see the module docstring) with momentum and
    weight decay :math:`\lambda` on :math:`W, U`, as :func:`neuralsmith.rbm.train` does:

    .. math::
        \Delta\theta \leftarrow \mu\,\Delta\theta + \epsilon\,\big(w_d \nabla\log p(y \mid x)
        + w_g \widehat\nabla\log p(x, y) + w_u \widehat\nabla\log p(x_u) - \lambda\theta\big)

    Given validation rows, the parameters of the epoch with the lowest validation error are
    kept (and training stops after ``patience`` epochs without improvement); with
    ``checkpoint_dir`` the run checkpoints every epoch and resumes.

    Args:
        model: the ClassRBM; trained in place.
        x, y: labeled rows (n, n_visible) and their int64 classes (n,).
        epochs: passes (see ``batching``), including any already checkpointed.
        objective, alpha, beta, supervised, unsupervised, batching, unlabeled_ratio: see
            :class:`ClassSettings`.
        x_unlabeled: unlabeled rows; used only by ``objective="semisupervised"`` (required there).
        batch_size, lr, k, method, n_chains, momentum, weight_decay, schedule: as in
            :func:`neuralsmith.rbm.train` (``method`` ``cd`` or ``pcd``).
        precision: ``"fp32"``, or ``"bf16"``: the generative (CD) term's products on bf16
            copies of the parameters, its weight statistics one GEMM of both phases rounded
            once; the discriminative gradient, the parameters and momentum stay fp32
            (:mod:`neuralsmith.precision`; fp32 with a warning without fast bf16).
        x_valid, y_valid: validation rows for model selection.
        patience: early stopping, in epochs.
        generator: every random draw; a fresh seed if None.
        callbacks: called with each epoch's record; one returning True stops training.
        checkpoint_dir: where to save and resume the training state.
        progress: show a rich progress bar.
        monitor_size: labeled training rows scored each epoch.

    Returns:
        A :class:`ClassHistory`.

    Raises:
        ValueError: for a bad setting, data that do not fit the model, or a semi-supervised
            objective without unlabeled rows.
    """
    settings = ClassSettings(epochs=epochs, batch_size=batch_size, lr=lr, k=k, method=method,
                             n_chains=n_chains, momentum=momentum, weight_decay=weight_decay,
                             schedule=schedule, monitor_size=monitor_size, objective=objective,
                             alpha=alpha, beta=beta, supervised=supervised, unsupervised=unsupervised,
                             batching=batching, unlabeled_ratio=unlabeled_ratio,
                             precision=precision)
    check_patience(patience)
    data = check_class_data(model, x, y, x_unlabeled, x_valid, y_valid, settings)
    updater = ClassUpdater(model, *data, settings, resolve_generator(generator, data[0].device))
    return fit(updater, epochs=settings.epochs, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
               patience=patience, progress=progress)


def check_class_data(model: Any, x: Tensor, y: Tensor, x_unlabeled: Tensor | None,
                     x_valid: Tensor | None, y_valid: Tensor | None, settings: ClassSettings
                     ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """Every array checked against ``model`` (a ClassRBM, or the bottom layer of a stack)."""
    x = check_data(model, x, "x")
    y = _check_labels(model, y, len(x), "y")
    if settings.objective == "semisupervised":
        if x_unlabeled is None or len(x_unlabeled) == 0:
            raise ValueError("objective='semisupervised' needs unlabeled rows: pass x_unlabeled "
                             "(or keep fewer labels, e.g. --labeled 0.1)")
        x_unlabeled = check_data(model, x_unlabeled, "x_unlabeled")
    if (x_valid is None) != (y_valid is None):
        raise ValueError("give both x_valid and y_valid, or neither")
    if x_valid is not None and len(x_valid):
        x_valid = check_data(model, x_valid, "x_valid")
        y_valid = _check_labels(model, y_valid, len(x_valid), "y_valid")
    else:
        x_valid = y_valid = None
    return x, y, x_unlabeled, x_valid, y_valid


def save(model: ClassRBM, folder: str | os.PathLike, name: str = "model",
         meta: dict[str, Any] | None = None) -> None:
    """Write ``model`` as checkpoint ``name`` in ``folder`` (safetensors + JSON, atomic)."""
    checkpoint.save_module(model, folder, name, {"classrbm": model.config(), **(meta or {})})


def load(folder: str | os.PathLike, name: str = "model",
         device: torch.device | str | None = None) -> ClassRBM:
    """Read a ClassRBM written by :func:`save`.

    Raises:
        FileNotFoundError: if the checkpoint is missing.
        ValueError: if it holds no ClassRBM, or is damaged.
    """
    def build(meta: dict[str, Any], tensors: dict[str, Tensor]) -> ClassRBM:
        return ClassRBM(**meta["classrbm"], dtype=tensors["weight"].dtype, device=device,
                        generator=torch.Generator())  # overwritten; leaves the global RNG alone

    return checkpoint.load_module(folder, name, "classrbm", build, what="ClassRBM",
                                  origin="`neuralsmith classrbm --out RUN` or classrbm.save")[0]
