r"""The Deep Boltzmann Machine (Salakhutdinov & Hinton, 2009): the model and its exact math.

An undirected stack of layers :math:`s_0 = v, s_1 = h^1, \dots, s_L = h^L`, each connected only
to its neighbours:

.. math::
    E(v, h^1, \dots, h^L) = E_0(v; b_0) - \sum_{l=1}^{L} \big(b_l^\top h^l + h^{l\top} W_l\, s_{l-1}\big),

:math:`E_0(v) = -b_0^\top v` (Bernoulli visibles) or :math:`\tfrac12\lVert v - b_0\rVert^2`
(Gaussian visibles of unit variance, for standardized data); the hidden units are Bernoulli.
``weights[l-1]`` is :math:`W_l` in the nn.Linear layout (size of layer l, size of layer l-1).
A *state* is a tuple ``(v, h1, ..., hL)`` of (n, size) tensors.

Layers of the same parity are conditionally independent given the others, so a Gibbs sweep
updates the odd layers, then the even ones; summing the odd layers out analytically leaves
the even layers to enumerate (:func:`exact_log_partition`) or to anneal
(:mod:`neuralsmith.rbm.dbm_ais`).

Example:
    >>> dbm = DBM([6, 4, 3], generator=torch.Generator().manual_seed(0))
    >>> state = dbm.init_state(5, torch.Generator().manual_seed(1))
    >>> dbm.energy(dbm.gibbs_sweep(state, generator=torch.Generator())).shape
    torch.Size([5])
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any, Sequence

import torch
from torch import Generator, Tensor, nn

from neuralsmith import checkpoint, seeds
from neuralsmith.rbm import units as units_mod
from neuralsmith.rbm.partition import binary_states

State = tuple[Tensor, ...]
Params = tuple[Sequence[Tensor], Sequence[Tensor]]  # (weights W_1..W_L, biases b_0..b_L)
MAX_ENUMERATED = 24  # binary units enumerated by the exact log Z; beyond, use AIS
CHUNK_ELEMENTS = 2**22  # enumerated states x units per batch of the exact sums
INPUT_FLOOR = -87.0  # sigmoid(-87) = 1.6e-38: probabilities stay above float32's subnormals


def sigmoid(x: Tensor) -> Tensor:
    r""":math:`\sigma(x)`, its input floored at -87 so no probability is a float32 subnormal.

    CPUs compute on subnormals about 100 times slower, and the Bernoulli draws and GEMMs of
    a trained model meet many of them; the floor moves a probability by under 2e-38.
    """
    return torch.sigmoid(x.clamp(min=INPUT_FLOOR))


class DBM(nn.Module):
    """A Deep Boltzmann Machine of Bernoulli hidden layers over Bernoulli or Gaussian visibles.

    Args:
        sizes: ``[n_visible, h1, ..., hL]``, ``L >= 1`` (``L = 1`` is an RBM).
        visible: ``"bernoulli"``, or ``"gaussian"`` (unit variance: standardize the data).
        generator: draws the initial weights, N(0, 0.01^2) (Hinton, 2010); biases start at 0.
        dtype, device: where the parameters live.

    Raises:
        ValueError: for fewer than two sizes, a size < 1, or an unknown visible unit type.

    Example:
        >>> dbm = DBM([784, 500, 1000])
        >>> dbm.n_layers, [tuple(w.shape) for w in dbm.weights]
        (2, [(500, 784), (1000, 500)])
    """

    def __init__(self, sizes: Sequence[int], *, visible: str = "bernoulli",
                 generator: Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        self.sizes = check_sizes(sizes)
        self.units = [units_mod.get(visible, "visible")] + [units_mod.Bernoulli()] * self.n_layers
        kw = {"dtype": dtype, "device": device}
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(b, a, **kw))
                                        for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n, **kw)) for n in self.sizes)
        g = seeds.resolve_generator(generator, self.weights[0].device)
        with torch.no_grad():
            for w in self.weights:
                w.normal_(0.0, 0.01, generator=g)

    @property
    def n_layers(self) -> int:
        """Hidden layers L."""
        return len(self.sizes) - 1

    @property
    def visible(self) -> str:
        return self.units[0].name

    def config(self) -> dict[str, Any]:
        """What :func:`load` (and :func:`neuralsmith.stack.load_stack`) needs, JSON-ready."""
        return {"kind": "dbm", "sizes": list(self.sizes), "visible": self.visible}

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, visible={self.visible!r}"

    def params(self, beta: float = 1.0, base_bias: Tensor | None = None) -> Params:
        r"""The parameters of :math:`p_\beta \propto p_A^{1-\beta} p^\beta`: :math:`\beta W_l` and
        :math:`(1-\beta) b^A_l + \beta b_l`, with base model A of visible biases ``base_bias``
        (else 0) and no weights; ``beta = 1`` gives the model's own tensors."""
        if beta == 1.0:  # plain tensors where no gradient is wanted: Parameters slow small GEMMs
            ws, bs = list(self.weights), list(self.biases)
            return ([w.detach() for w in ws], [b.detach() for b in bs]) if not torch.is_grad_enabled() else (ws, bs)
        ws = [beta * w for w in self.weights]
        bs = [beta * b for b in self.biases]
        if base_bias is not None:
            bs[0] = bs[0] + (1.0 - beta) * base_bias.to(bs[0])
        return ws, bs

    # --- energies -------------------------------------------------------------------------

    def energy(self, state: State) -> Tensor:
        r""":math:`E(v, h^1, \dots, h^L)` of each row of ``state``, shape (n,).

        Multilinear in the hidden layers, so a state of mean-field probabilities gives
        :math:`E_q[E]` under the factorized :math:`q` with those means.
        """
        state = self._check_state(state)
        e = self.units[0].energy(state[0], self.biases[0])
        for l in range(1, len(state)):
            e = e - state[l] @ self.biases[l] - ((state[l - 1] @ self.weights[l - 1].t()) * state[l]).sum(-1)
        return e

    def layer_input(self, state: Sequence[Tensor | None], l: int, params: Params | None = None) -> Tensor:
        r"""Total input to layer l: :math:`b_l + W_l s_{l-1} + W_{l+1}^\top s_{l+1}`, (n, size_l).

        A neighbour given as None sends nothing (as if it were 0).
        """
        ws, bs = params or self.params()
        x = None
        if l > 0 and state[l - 1] is not None:
            x = torch.addmm(bs[l], state[l - 1], ws[l - 1].t())
        if l < self.n_layers and state[l + 1] is not None:
            x = torch.addmm(bs[l] if x is None else x, state[l + 1], ws[l])
        if x is None:  # no neighbour given: the bias alone
            x = bs[l].expand(len(next(s for s in state if s is not None)), -1)
        return x

    def conditional(self, state: Sequence[Tensor | None], l: int) -> Tensor:
        r""":math:`E[s_l \mid s_{l-1}, s_{l+1}]`: :math:`\sigma(x_l)`, or :math:`x_l` for Gaussian visibles."""
        return self.units[l].mean(self.layer_input(state, l))

    def sample_layer(self, state: Sequence[Tensor | None], l: int, beta: float = 1.0,
                     generator: Generator | None = None, params: Params | None = None) -> Tensor:
        r"""Draw layer l from :math:`p(s_l \mid \text{neighbours})^\beta` (normalized).

        Bernoulli units take input :math:`\beta x_l`; Gaussian visibles are
        :math:`\mathcal{N}(x_l, 1/\beta)`.
        """
        x = self.layer_input(state, l, params)
        if self.units[l].binary:
            return units_mod.bernoulli(sigmoid(x if beta == 1.0 else beta * x), generator)
        std = None if beta == 1.0 else torch.full_like(x[0], beta ** -0.5)
        return self.units[l].sample(x, std, generator)

    def gibbs_sweep(self, state: State, beta: float = 1.0, generator: Generator | None = None,
                    params: Params | None = None) -> State:
        r"""One Gibbs sweep of :math:`p(\text{state})^\beta`: the odd layers given the even, then the even.

        Args:
            state: ``(v, h1, ..., hL)``, (n, size) each.
            beta: inverse temperature (> 0; 1 samples the model).
            generator: every random draw.
            params: other parameters to sweep under (:meth:`params`, as AIS does).

        Returns:
            The new state (a new tuple; the old tensors are not changed).
        """
        if not beta > 0:
            raise ValueError(f"beta must be > 0 (inverse temperature); got {beta}")
        s = list(self._check_state(state))
        for parity in (1, 0):
            for l in range(parity, len(s), 2):
                s[l] = self.sample_layer(s, l, beta, generator, params)
        return tuple(s)

    def init_state(self, n: int, generator: Generator | None = None) -> State:
        """``n`` random states: fair-coin hidden layers, visibles drawn given h1.

        Example:
            >>> [tuple(s.shape) for s in DBM([3, 2, 2]).init_state(4, torch.Generator())]
            [(4, 3), (4, 2), (4, 2)]
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1 (chains); got {n!r}")
        w = self.weights[0]
        hidden = [units_mod.bernoulli(torch.full((n, k), 0.5, dtype=w.dtype, device=w.device), generator)
                  for k in self.sizes[1:]]
        return (self.sample_layer([None, *hidden], 0, generator=generator), *hidden)

    # --- mean-field inference -------------------------------------------------------------

    @torch.no_grad()
    def recognition(self, v: Tensor) -> list[Tensor]:
        r"""The paper's starting point of mean field: one bottom-up pass with doubled weights,

        .. math::
            \mu_l = \sigma(b_l + 2 W_l \mu_{l-1}) \;(l < L), \qquad \mu_L = \sigma(b_L + W_L \mu_{L-1}),

        doubled because each layer below the top also hears from the layer above (which the
        pre-training of :mod:`neuralsmith.rbm.dbm_learning` stands in for).
        """
        v = self._check_layer(v, 0, "v")
        mu, below = [], self.units[0].stat(v)
        for l in range(1, self.n_layers + 1):
            scale = 2.0 if l < self.n_layers else 1.0
            below = sigmoid(torch.addmm(self.biases[l], below, self.weights[l - 1].t(), alpha=scale))
            mu.append(below)
        return mu

    @torch.no_grad()
    def mean_field(self, v: Tensor, n_iter: int = 50, tol: float = 1e-6) -> list[Tensor]:
        r"""The fixed point of the factorized posterior :math:`q(h \mid v) = \prod_{l,j} \mu_{lj}^{h_{lj}}(1-\mu_{lj})^{1-h_{lj}}`.

        Salakhutdinov & Hinton (2009), section 3: starting from :meth:`recognition`, iterate

        .. math::
            \mu_l \leftarrow \sigma\big(b_l + W_l \mu_{l-1} + W_{l+1}^\top \mu_{l+1}\big),
            \qquad \mu_0 = v,

        the odd layers then the even ones (each half-step maximizes the variational bound
        exactly in its layers, so the bound never decreases), until no mean moves by more than
        ``tol`` or after ``n_iter`` sweeps.

        Returns:
            ``[mu_1, ..., mu_L]``, (n, size_l) each.
        """
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
            raise ValueError(f"n_iter must be an int >= 0 (mean-field sweeps; 10 to 50 are usual); got {n_iter!r}")
        s: list[Tensor] = [self.units[0].stat(self._check_layer(v, 0, "v")), *self.recognition(v)]
        for _ in range(n_iter):
            change = 0.0
            for parity in (1, 0):
                for l in range(2 - parity, len(s), 2):  # 1, 3, ... then 2, 4, ...
                    new = sigmoid(self.layer_input(s, l))
                    change = max(change, float((new - s[l]).abs().max()))
                    s[l] = new
            if change <= tol:
                break
        return s[1:]

    # --- to a feed-forward network ------------------------------------------------------------

    def to_mlp(self, n_classes: int, activation: str = "sigmoid", *, augment: bool = False,
               mean_field_iters: int = 50) -> nn.Sequential:
        r"""The DBM's weights as a feed-forward net with a fresh output layer (paper, section 4).

        Plain (the default, ``augment=False``): ``Linear(W_l, b_l)`` layers as they are, no
        rescaling, so :math:`h^1 = \sigma(b_1 + W_1 v)` lacks the top-down half of its input
        that the DBM had (the output layer and fine-tuning make up for it).

        ``augment=True`` is the paper's network: the input is :math:`[v, q(h^2 \mid v)]`, the
        mean-field posterior of the second layer (the top one of a two-layer DBM;
        :meth:`mean_field` of a frozen copy of this DBM, run in the forward pass), and the
        first layer is :math:`h^1 = \sigma(b_1 + W_1 v + W_2^\top q(h^2))`.
        """
        from neuralsmith.stack import stack_to_mlp

        pairs = [(w.detach().clone(), b.detach().clone()) for w, b in zip(self.weights, self.biases[1:])]
        if not augment:
            return stack_to_mlp(pairs, n_classes, activation)
        if self.n_layers < 2:
            raise ValueError("augment needs a DBM of at least 2 hidden layers (q(h2) feeds h1)")
        return _augmented_mlp(self, pairs, n_classes, activation, mean_field_iters)

    # --- checks ---------------------------------------------------------------------------

    def _check_layer(self, s: Tensor, l: int, name: str) -> Tensor:
        if not isinstance(s, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(s).__name__}")
        if s.dim() != 2 or s.shape[1] != self.sizes[l]:
            raise ValueError(f"{name} must have shape (n, {self.sizes[l]}) for layer {l} of this DBM; "
                             f"got {tuple(s.shape)}")
        return s

    def _check_state(self, state: Sequence[Tensor]) -> State:
        if len(state) != len(self.sizes):
            raise ValueError(f"a state of this DBM is a tuple of {len(self.sizes)} tensors "
                             f"(v, h1, ..., h{self.n_layers}); got {len(state)}")
        return tuple(self._check_layer(s, l, f"state[{l}]") for l, s in enumerate(state))


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """``[n_visible, h1, ..., hL]`` checked: at least one hidden layer, every size an int >= 1."""
    sizes = list(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError("sizes must be [n_visible, h1, ..., hL]: at least one hidden layer, "
                         f"every size an int >= 1; got {sizes}")
    return sizes


class MeanFieldInput(nn.Module):
    """Appends the mean-field posterior of one DBM layer to the input: ``x -> [x, q(h^l | x)]``.

    The DBM inside is a frozen copy (no gradient reaches it): the features are fixed, as in
    Salakhutdinov & Hinton (2009), section 4.
    """

    def __init__(self, dbm: DBM, layer: int, n_iter: int):
        super().__init__()
        self.dbm, self.layer, self.n_iter = copy.deepcopy(dbm).requires_grad_(False), layer, n_iter

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            q = self.dbm.mean_field(x, self.n_iter)[self.layer - 1]  # (n, size of the layer)
        return torch.cat([x, q], 1)


def _augmented_mlp(dbm: DBM, pairs: list[tuple[Tensor, Tensor]], n_classes: int, activation: str,
                   n_iter: int) -> nn.Sequential:
    r"""The paper's MLP: input :math:`[v, q(h^2 \mid v)]`, the first layer ``[W_1, W_2^T]``.

    So :math:`h^1 = \sigma(b_1 + W_1 v + W_2^\top q(h^2))`, the input h1 has in the DBM's own
    mean field; the layers above are plain. For a two-layer DBM :math:`h^2` is the top layer.
    """
    from neuralsmith.stack import stack_to_mlp

    (w1, b1), (w2, _) = pairs[0], pairs[1]
    first = (torch.cat([w1, w2.t()], 1), b1)  # (n_1, n_visible + n_2)
    mlp = stack_to_mlp([first, *pairs[1:]], n_classes, activation)
    return nn.Sequential(MeanFieldInput(dbm, 2, n_iter), *mlp)


# --- exact sums for tiny models ---------------------------------------------------------------


def parity_free_energy(dbm: DBM, state: Sequence[Tensor | None], parity: int,
                       params: Params | None = None) -> Tensor:
    r"""The layers of the other parity summed out: :math:`-\log \sum_{s_{\text{other}}} e^{-E}`, (n,).

    ``state`` gives the layers of ``parity`` (0: v, h2, ...; 1: h1, h3, ...), the others None.
    Since no two layers of one parity touch,

    .. math::
        F(s_{\text{parity}}) = \sum_{l \equiv \text{parity}} E_l(s_l)
        + \sum_{l \not\equiv \text{parity}} F_l\big(b_l + W_l s_{l-1} + W_{l+1}^\top s_{l+1}\big),

    :math:`F_l(x) = -\sum_j \log(1 + e^{x_j})` for Bernoulli units (a Gaussian visible layer is
    integrated out instead).
    """
    ws, bs = params or dbm.params()
    f = 0.0
    for l in range(len(dbm.sizes)):
        if l % 2 == parity:
            f = f + dbm.units[l].energy(state[l], bs[l])
        else:
            f = f + dbm.units[l].free_energy(dbm.layer_input(state, l, (ws, bs)), bs[l])
    return f


def _float64(dbm: DBM) -> DBM:
    return copy.deepcopy(dbm).to(torch.float64)


def _enumerated_parity(dbm: DBM, max_units: int) -> int:
    """The parity with fewer units to enumerate (it must be all binary)."""
    counts = {p: sum(dbm.sizes[p::2]) for p in (0, 1)}
    fits = [p for p in (0, 1) if counts[p] <= max_units and all(u.binary for u in dbm.units[p::2])]
    if not fits:
        raise ValueError(f"exact log Z needs the odd or the even layers to hold at most {max_units} "
                         f"binary units in all; this DBM has sizes {dbm.sizes}; use "
                         "neuralsmith.rbm.dbm_ais.ais_log_partition")
    return min(fits, key=counts.__getitem__)


def _logsumexp_states(dbm: DBM, parity: int, fixed: dict[int, Tensor]) -> Tensor:
    """:math:`\\log\\sum e^{-F}` over every binary state of the ``parity`` layers not in ``fixed``.

    ``fixed`` maps layer -> one row (1, size), shared by every enumerated state.
    """
    free = [l for l in range(parity, len(dbm.sizes), 2) if l not in fixed]
    n = sum(dbm.sizes[l] for l in free)
    chunk = 2 ** max(0, int(math.log2(max(1, CHUNK_ELEMENTS // max(1, sum(dbm.sizes))))))
    parts = []
    for start in range(0, 2**n, chunk):
        bits = binary_states(start, min(chunk, 2**n - start), n, device=dbm.weights[0].device)
        state: list[Tensor | None] = [None] * len(dbm.sizes)
        for l, piece in zip(free, bits.split([dbm.sizes[l] for l in free], 1)):
            state[l] = piece
        for l, row in fixed.items():
            state[l] = row.expand(len(bits), -1)
        parts.append(torch.logsumexp(-parity_free_energy(dbm, state, parity), 0))
    return torch.logsumexp(torch.stack(parts), 0)


@torch.no_grad()
def exact_log_partition(dbm: DBM, *, max_units: int = MAX_ENUMERATED) -> float:
    r"""Exact :math:`\log Z` in float64: enumerate one parity's layers, sum the other out.

    .. math::
        \log Z = \log \sum_{s_{\text{even}}} e^{-F(s_{\text{even}})}
        \quad\text{or}\quad \log \sum_{s_{\text{odd}}} e^{-F(s_{\text{odd}})}

    (:func:`parity_free_energy`), whichever has fewer units.

    Raises:
        ValueError: if neither parity has at most ``max_units`` binary units.

    Example:
        >>> dbm = DBM([3, 2, 2])
        >>> _ = [w.detach().zero_() for w in dbm.weights]
        >>> round(exact_log_partition(dbm), 4) == round(7 * math.log(2), 4)
        True
    """
    dbm = _float64(dbm)
    return float(_logsumexp_states(dbm, _enumerated_parity(dbm, max_units), {}))


@torch.no_grad()
def log_marginal(dbm: DBM, v: Tensor, *, max_units: int = MAX_ENUMERATED) -> Tensor:
    r"""Unnormalized :math:`\log p^*(v) = \log \sum_h e^{-E(v, h)}` per row, exactly (float64), (n,).

    The even hidden layers (h2, h4, ...) are enumerated, the odd ones summed out.

    Raises:
        ValueError: if the even hidden layers hold more than ``max_units`` units.
    """
    dbm = _float64(dbm)
    v = dbm._check_layer(v.to(torch.float64), 0, "v")
    if sum(dbm.sizes[2::2]) > max_units:
        raise ValueError(f"exact log p(v) enumerates the even hidden layers (h2, h4, ...), at most "
                         f"{max_units} units; this DBM has {sum(dbm.sizes[2::2])}")
    return torch.stack([_logsumexp_states(dbm, 0, {0: row[None]}) for row in v])


def log_likelihood(dbm: DBM, v: Tensor, log_z: float) -> float:
    r"""Average exact :math:`\log p(v) = \log p^*(v) - \log Z` over the rows of ``v``, in nats."""
    return float(log_marginal(dbm, v).mean()) - float(log_z)


# --- saving -------------------------------------------------------------------------------------


def save(dbm: DBM, folder: str | os.PathLike, name: str = "model",
         meta: dict[str, Any] | None = None) -> None:
    """Write ``dbm`` as checkpoint ``name`` in ``folder`` (safetensors + JSON, atomic; no pickle)."""
    checkpoint.save_module(dbm, folder, name, {**(meta or {}), "dbm": dbm.config()})


def load(folder: str | os.PathLike, name: str = "model",
         device: torch.device | str | None = None) -> DBM:
    """Read a DBM written by :func:`save` (or a joint-training checkpoint) from ``folder``.

    Raises:
        FileNotFoundError: if the checkpoint is missing.
        ValueError: if it holds no DBM, or is damaged.
    """
    def build(meta: dict[str, Any], tensors: dict[str, Tensor]) -> DBM:
        spec = meta["dbm"]
        return DBM(spec["sizes"], visible=spec["visible"], dtype=tensors["weights.0"].dtype,
                   device=device, generator=torch.Generator())

    return checkpoint.load_module(folder, name, "dbm", build, what="DBM",
                                  origin="`neuralsmith pretrain dbm --out RUN` or dbm.save")[0]


class Chains:
    r"""A DBM under the chain protocol of :mod:`neuralsmith.rbm.tempering` (parallel tempering).

    ``energy(*state)``, ``initial_state(n, generator)`` and ``gibbs_sweep(state, beta,
    generator)`` where ``beta`` may hold one inverse temperature per row (PT's replicas are
    rows): every layer is drawn from :math:`\sigma(\beta_r x_l)`, the conditional of
    :math:`p^{\beta}`; :math:`\beta = 0` gives fair coins (the uniform base distribution).
    Bernoulli visibles only (a Gaussian layer has no :math:`\beta = 0` limit).

    Example:
        >>> chains = Chains(DBM([4, 3, 2], generator=torch.Generator().manual_seed(0)))
        >>> g = torch.Generator().manual_seed(1)
        >>> state = chains.gibbs_sweep(chains.initial_state(6, g), torch.linspace(0, 1, 6), g)
        >>> chains.energy(*state).shape
        torch.Size([6])
    """

    def __init__(self, dbm: DBM):
        if dbm.visible != "bernoulli":
            raise ValueError("parallel tempering of a DBM needs Bernoulli visibles; sample a "
                             f"{dbm.visible}-visible DBM with method='gibbs'")
        self.dbm = dbm

    def energy(self, *state: Tensor) -> Tensor:
        return self.dbm.energy(state)

    def initial_state(self, n: int, generator: Generator | None = None) -> State:
        return self.dbm.init_state(n, generator)

    def gibbs_sweep(self, state: State, beta: float | Tensor = 1.0, generator: Generator | None = None) -> State:
        b = beta.unsqueeze(1) if isinstance(beta, Tensor) else beta  # (rows, 1): one beta per row
        s = list(state)
        with torch.no_grad():
            for parity in (1, 0):
                for l in range(parity, len(s), 2):
                    s[l] = units_mod.bernoulli(sigmoid(b * self.dbm.layer_input(s, l)), generator)
        return tuple(s)
