r"""The restricted Boltzmann machine: parameters and the math on them, no training loop.

.. math::
    E(v, h) = E_v(v; b, \sigma) + E_h(h; c) - h^\top W\, t(v), \qquad
    p(v) = \frac{e^{-F(v)}}{Z}, \quad F(v) = -\log \sum_h e^{-E(v, h)}

Unit types (:mod:`neuralsmith.rbm.units`) supply :math:`E_v`, :math:`E_h`, :math:`t` and the
conditionals. ``weight`` has the nn.Linear layout (n_hidden, n_visible), so
``nn.Linear(n_visible, n_hidden).weight.data.copy_(rbm.weight)`` turns a trained layer into a
feed-forward one (bias: ``rbm.hidden_bias``).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import Generator, Tensor, nn

from neuralsmith import checkpoint, seeds
from neuralsmith.rbm import units as units_mod

CLIP = 1e-3  # visible base rates are clipped to [CLIP, 1 - CLIP] before the logit


class RBM(nn.Module):
    """A restricted Boltzmann machine with swappable visible and hidden unit types.

    Args:
        n_visible: number of visible units.
        n_hidden: number of hidden units.
        visible: ``"bernoulli"`` or ``"gaussian"``.
        hidden: ``"bernoulli"`` or ``"relu"`` (rectified Gaussian units).
        learn_std: learn the Gaussian visible standard deviations (else fixed at 1, which
            suits standardized data).
        generator: draws the initial weights, N(0, 0.01^2) (Hinton, 2010, section 8).
        dtype, device: where the parameters live.

    Raises:
        ValueError: for non-positive sizes, unknown unit types, or ``learn_std`` without
            Gaussian visible units.

    Example:
        >>> rbm = RBM(6, 3, generator=torch.Generator().manual_seed(0))
        >>> rbm.weight.shape, rbm.free_energy(torch.ones(2, 6)).shape
        (torch.Size([3, 6]), torch.Size([2]))
    """

    def __init__(self, n_visible: int, n_hidden: int, *, visible: str = "bernoulli",
                 hidden: str = "bernoulli", learn_std: bool = False,
                 generator: Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        check_size("n_visible", n_visible)
        check_size("n_hidden", n_hidden)
        self.visible_units = units_mod.get(visible, "visible")
        self.hidden_units = units_mod.get(hidden, "hidden")
        if learn_std and visible != "gaussian":
            raise ValueError("learn_std needs visible='gaussian' (Bernoulli units have no std)")
        kw = {"dtype": dtype, "device": device}
        self.weight = nn.Parameter(torch.empty(n_hidden, n_visible, **kw))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible, **kw))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden, **kw))
        self.learn_std = learn_std
        if visible == "gaussian":
            log_std = torch.zeros(n_visible, **kw)
            if learn_std:
                self.visible_log_std = nn.Parameter(log_std)
            else:
                self.register_buffer("visible_log_std", log_std)
        with torch.no_grad():
            self.weight.normal_(0.0, 0.01, generator=seeds.resolve_generator(generator, self.weight.device))

    @classmethod
    def from_data(cls, x: Tensor, n_hidden: int, *, sparsity_target: float | None = None,
                  **kwargs: Any) -> "RBM":
        """An RBM sized and initialized for data ``x`` (n, n_visible), as Hinton (2010) advises.

        Weights N(0, 0.01^2); visible biases from the data (see :meth:`init_biases_`);
        hidden biases 0, or logit(``sparsity_target``). Other keywords go to the constructor.

        Example:
            >>> x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
            >>> rbm = RBM.from_data(x, 3, generator=torch.Generator().manual_seed(0))
            >>> [round(b, 2) for b in rbm.visible_bias.tolist()]
            [6.91, 0.0]
        """
        kwargs.setdefault("dtype", x.dtype if x.is_floating_point() else torch.float32)
        kwargs.setdefault("device", x.device)
        rbm = cls(int(x.shape[-1]), n_hidden, **kwargs)
        return rbm.init_biases_(x, sparsity_target=sparsity_target)

    @torch.no_grad()
    def init_biases_(self, x: Tensor, *, sparsity_target: float | None = None) -> "RBM":
        r"""Set biases from data: :math:`b_i = \log(p_i / (1 - p_i))` for Bernoulli visibles.

        :math:`p_i` is the fraction of examples with unit i on, clipped to
        [0.001, 0.999]; Gaussian visibles get the data mean. Hidden biases become 0, or
        :math:`\log(q/(1-q))` for a sparsity target q (Hinton, 2010, sections 8 and 11).
        """
        self._check_visible(x, "x")
        p = x.to(self.weight.dtype).mean(0)
        if self.visible_units.binary:
            p = p.clamp(CLIP, 1 - CLIP)
            self.visible_bias.copy_(torch.log(p) - torch.log1p(-p))
        else:
            self.visible_bias.copy_(p)
        if sparsity_target is None:
            self.hidden_bias.zero_()
        else:
            _check_fraction("sparsity_target", sparsity_target)
            self.hidden_bias.fill_(math.log(sparsity_target / (1 - sparsity_target)))
        return self

    @property
    def n_visible(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_hidden(self) -> int:
        return int(self.weight.shape[0])

    @property
    def visible_std(self) -> Tensor | None:
        """The Gaussian visible standard deviations, or None for Bernoulli visibles."""
        log_std = getattr(self, "visible_log_std", None)
        return None if log_std is None else torch.exp(log_std)

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-ready (for checkpoints)."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden,
                "visible": self.visible_units.name, "hidden": self.hidden_units.name,
                "learn_std": self.learn_std}

    def extra_repr(self) -> str:
        c = self.config()
        return (f"n_visible={c['n_visible']}, n_hidden={c['n_hidden']}, "
                f"visible={c['visible']!r}, hidden={c['hidden']!r}")

    # --- the math -------------------------------------------------------------------------

    def hidden_input(self, v: Tensor) -> Tensor:
        r"""Total input to the hidden units, :math:`x_h = c + W t(v)`."""
        t = self.visible_units.stat(v, self.visible_std)
        return torch.addmm(self.hidden_bias, t, self.weight.t())  # (batch, n_hidden)

    def visible_input(self, h: Tensor) -> Tensor:
        r"""Total input to the visible units, :math:`x_v = b + W^\top h`."""
        return torch.addmm(self.visible_bias, h, self.weight)  # (batch, n_visible)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        r""":math:`E(v, h) = E_v(v) + E_h(h) - h^\top W t(v)`, shape (batch,).

        Example:
            >>> rbm = RBM(2, 1)
            >>> rbm.energy(torch.ones(1, 2), torch.zeros(1, 1)).tolist()  # zero biases
            [-0.0]
        """
        v, h = self._check_visible(v, "v"), self._check_hidden(h, "h")
        std = self.visible_std
        t = self.visible_units.stat(v, std)
        coupling = ((t @ self.weight.t()) * h).sum(-1)
        return (self.visible_units.energy(v, self.visible_bias, std)
                + self.hidden_units.energy(h, self.hidden_bias) - coupling)

    def free_energy(self, v: Tensor) -> Tensor:
        r""":math:`F(v) = -\log \sum_h e^{-E(v, h)} = E_v(v) + F_h(c + W t(v))`, shape (batch,).

        For Bernoulli units on both sides this is scikit-learn's
        ``BernoulliRBM._free_energy``: :math:`-b^\top v - \sum_j \log(1 + e^{x_j})`.
        """
        v = self._check_visible(v, "v")
        return (self.visible_units.energy(v, self.visible_bias, self.visible_std)
                + self.hidden_units.free_energy(self.hidden_input(v), self.hidden_bias))

    def hidden_probs(self, v: Tensor) -> Tensor:
        r""":math:`E[h \mid v]`: :math:`\sigma(c + Wv)` for Bernoulli hidden units."""
        return self.hidden_units.mean(self.hidden_input(self._check_visible(v, "v")))

    def sample_hidden(self, v: Tensor, generator: Generator | None = None) -> Tensor:
        """Draw :math:`h \\sim p(h \\mid v)`."""
        x = self.hidden_input(self._check_visible(v, "v"))
        return self.hidden_units.sample(x, None, generator)

    def visible_probs(self, h: Tensor) -> Tensor:
        r""":math:`E[v \mid h]`: :math:`\sigma(b + W^\top h)` (Bernoulli), :math:`b + W^\top h` (Gaussian)."""
        return self.visible_units.mean(self.visible_input(self._check_hidden(h, "h")))

    def sample_visible(self, h: Tensor, generator: Generator | None = None) -> Tensor:
        """Draw :math:`v \\sim p(v \\mid h)`."""
        x = self.visible_input(self._check_hidden(h, "h"))
        return self.visible_units.sample(x, self.visible_std, generator)

    def gibbs(self, v: Tensor, k: int = 1, generator: Generator | None = None) -> Tensor:
        """Run ``k`` steps of block Gibbs sampling v -> h -> v; return the last v.

        Example:
            >>> rbm = RBM(4, 2)
            >>> rbm.gibbs(torch.zeros(3, 4), k=2, generator=torch.Generator()).shape
            torch.Size([3, 4])
        """
        _check_count("k", k, minimum=0)
        for _ in range(k):
            v = self.sample_visible(self.sample_hidden(v, generator), generator)
        return v

    def sample(self, n: int, steps: int = 1000, generator: Generator | None = None) -> Tensor:
        """``n`` visible samples after ``steps`` Gibbs steps from the biases-only start.

        Chains start at :math:`v \\sim p(v \\mid h = 0)`, the base rates when the biases came
        from :meth:`init_biases_`.
        """
        _check_count("n", n, minimum=1)
        h0 = torch.zeros(n, self.n_hidden, dtype=self.weight.dtype, device=self.weight.device)
        return self.gibbs(self.sample_visible(h0, generator), steps, generator)

    # --- the chain protocol of neuralsmith.rbm.tempering ----------------------------------

    def initial_state(self, n: int, generator: Generator | None = None) -> tuple[Tensor, Tensor]:
        """A start for ``n`` chains, ``(v, h)``: :math:`h = 0`, :math:`v \\sim p(v \\mid h = 0)`.

        As :meth:`sample` starts (the base rates when the biases came from :meth:`init_biases_`).
        """
        _check_count("n", n, minimum=1)
        h = torch.zeros(n, self.n_hidden, dtype=self.weight.dtype, device=self.weight.device)
        return self.sample_visible(h, generator), h

    def gibbs_sweep(self, state: tuple[Tensor, Tensor], beta: float | Tensor = 1.0,
                    generator: Generator | None = None, *,
                    base_bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""One block-Gibbs sweep, h then v, of the tempered joint :math:`p_\beta(v, h) \propto e^{-\beta E(v, h)}`.

        .. math::
            h \sim p_\beta(h \mid v) = \sigma(\beta\,(c + W t(v))), \qquad
            v \sim p_\beta(v \mid h) = \sigma(\beta\,(b + W^\top h))

        (Gaussian visibles: :math:`\mathcal N(b + W^\top h, \sigma^2/\beta)`). Weights and
        biases are all scaled by :math:`\beta` (Desjardins et al., 2010), so at :math:`\beta = 0`
        every binary unit is a fair coin: that chain draws exact, independent uniform states.
        With ``base_bias`` :math:`b^A` (Bernoulli visibles) the tempered family is AIS's
        (Salakhutdinov & Murray, 2008), :math:`p_\beta \propto e^{-\beta E(v, h) + (1 - \beta)
        b^{A\top} v}`: the visible input becomes :math:`\beta(b + W^\top h) + (1-\beta) b^A`, and
        at :math:`\beta = 0` the visibles follow the base rates :math:`\sigma(b^A)`.

        Args:
            state: ``(v, h)``, (rows, n_visible) and (rows, n_hidden); ``h`` is redrawn first.
            beta: inverse temperature, one number or one per row (rows,); in [0, 1] (> 0 for
                Gaussian visibles). Values other than 1 need Bernoulli hidden units.
            generator: every draw.
            base_bias: visible biases of the base-rate model (n_visible,), or None (uniform).

        Returns:
            The new ``(v, h)``.

        Example:
            >>> rbm = RBM(4, 2)
            >>> v, h = rbm.gibbs_sweep(rbm.initial_state(3), torch.tensor([0.0, 0.5, 1.0]))
            >>> v.shape, h.shape
            (torch.Size([3, 4]), torch.Size([3, 2]))
        """
        v = self._check_visible(state[0], "v")
        b = self._tempering(beta, len(v))
        x_h = self.hidden_input(v)  # (rows, n_hidden)
        h = self.hidden_units.sample(x_h if b is None else x_h.mul_(b), None, generator)
        x_v = self.visible_input(h)  # (rows, n_visible)
        std = self.visible_std
        if b is None:
            return self.visible_units.sample(x_v, std, generator), h
        if not self.visible_units.binary:  # E scaled by beta: the variance grows by 1/beta
            if base_bias is not None:
                raise ValueError("a base-rate model (base_bias) needs Bernoulli visible units")
            return self.visible_units.sample(x_v, _one(std) / b.sqrt(), generator), h
        x_v.mul_(b)
        if base_bias is not None:
            x_v.addcmul_(1 - b, base_bias.to(x_v)[None, :])  # + (1 - beta) b_A
        return self.visible_units.sample(x_v, std, generator), h

    def _tempering(self, beta: float | Tensor, rows: int) -> Tensor | None:
        """``beta`` as a (rows, 1) column, or None when it is the number 1 (plain Gibbs)."""
        if not isinstance(beta, Tensor) and beta == 1.0:
            return None
        b = torch.as_tensor(beta, dtype=self.weight.dtype, device=self.weight.device)
        b = b.expand(rows).reshape(rows, 1) if b.dim() == 0 else b.reshape(-1, 1)
        if len(b) != rows or not bool(((b >= 0) & (b <= 1)).all()):
            raise ValueError(f"beta must be in [0, 1], one number or one per row ({rows}); got {beta!r}")
        if not self.hidden_units.binary:
            raise ValueError("tempered Gibbs sweeps (beta != 1) need Bernoulli hidden units; "
                             f"this RBM has {self.hidden_units.name} hidden units")
        if not self.visible_units.binary and not bool((b > 0).all()):
            raise ValueError("Gaussian visible units have no distribution at beta = 0; "
                             "use inverse temperatures > 0 (e.g. beta_min=0.01)")
        return b

    # --- checks at the public boundary ----------------------------------------------------

    def _check_visible(self, v: Tensor, name: str) -> Tensor:
        return check_layer(v, self.n_visible, name, "visible")

    def _check_hidden(self, h: Tensor, name: str) -> Tensor:
        return check_layer(h, self.n_hidden, name, "hidden")


def check_layer(s: Tensor, n: int, name: str, layer: str) -> Tensor:
    """``s`` checked as a (batch, n) tensor of the ``layer`` units; a TypeError/ValueError else."""
    if not isinstance(s, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(s).__name__}")
    if s.dim() != 2 or s.shape[1] != n:
        raise ValueError(f"{name} must have shape (batch, {n}) for this RBM's {n} {layer} "
                         f"units; got {tuple(s.shape)}")
    return s


def check_size(name: str, value: int) -> None:
    """Refuse a number of units that is not a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int (number of units); got {value!r}")


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")


def _one(std: Tensor | None) -> Tensor | float:
    return 1.0 if std is None else std


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1); got {value!r}")


def save(rbm: RBM, folder: str | os.PathLike, name: str = "model",
         meta: dict[str, Any] | None = None) -> None:
    """Write ``rbm`` as checkpoint ``name`` in ``folder`` (safetensors + JSON, atomic)."""
    checkpoint.save_module(rbm, folder, name, {"rbm": rbm.config(), **(meta or {})})


def load(folder: str | os.PathLike, name: str = "model",
         device: torch.device | str | None = None) -> RBM:
    """Read an RBM written by :func:`save` (or a training checkpoint) from ``folder``.

    Raises:
        FileNotFoundError: if the checkpoint is missing.
        ValueError: if it holds no RBM, or is damaged.
    """
    def build(meta: dict[str, Any], tensors: dict[str, Tensor]) -> RBM:
        return RBM(**meta["rbm"], dtype=tensors["weight"].dtype, device=device)

    return checkpoint.load_module(folder, name, "rbm", build, what="RBM",
                                  origin="`neuralsmith pretrain rbm --out RUN` or rbm.save")[0]
