"""Hand-written backward passes of the batched models, and the SGD step that applies them.

A batched step of a small network (10 seeds of a 64-100-100-100-10 MLP, 32 rows each) costs a
few hundred microseconds of arithmetic and about as much again of autograd's graph building
and ``torch.optim.SGD``'s per-step bookkeeping. These functions skip both: they call the very
ATen kernels that autograd's formulas (``derivatives.yaml``) call, in the same order, on the
same layouts, so every gradient equals autograd's bit for bit, and :class:`MomentumSGD` applies
the update of ``torch.optim.SGD(foreach=True)`` with the same ``_foreach`` kernels. A run on this
path therefore ends on exactly the weights the autograd path ends on
(``tests/test_backprop.py`` checks both, steps and whole runs, with ``torch.equal``).

Shapes: S members, B rows, stacked weights (S, in, out) as in
:class:`neuralsmith.ensemble.EnsembleMLP`.

Example:
    >>> import torch
    >>> w = [torch.randn(3, 4, 5), torch.randn(3, 5, 2)]
    >>> b = [torch.zeros(3, 1, 5), torch.zeros(3, 1, 2)]
    >>> losses, grads = mlp_losses_and_grads(w, b, "sigmoid", torch.rand(3, 8, 4), torch.randint(0, 2, (3, 8)))
    >>> losses.shape, [g.shape for g in grads]
    (torch.Size([3]), [torch.Size([3, 4, 5]), torch.Size([3, 1, 5]), torch.Size([3, 5, 2]), torch.Size([3, 1, 2])])
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from neuralsmith.autoencoder import reconstruction_loss

aten = torch.ops.aten

_IN_PLACE = {"sigmoid": torch.sigmoid_, "tanh": torch.tanh_, "relu": torch.relu_}


def activation_(a: torch.Tensor, activation: str) -> torch.Tensor:
    """f(a) written over ``a`` (``sigmoid``, ``tanh`` or ``relu``), for pre-activations not needed
    again: no new tensor, the same values."""
    return _IN_PLACE[activation](a)


def activation_backward(grad: torch.Tensor, out: torch.Tensor, activation: str) -> torch.Tensor:
    """:math:`\\partial L / \\partial a` from :math:`\\partial L / \\partial f(a)` and ``out`` = f(a),
    by autograd's kernel for f: :math:`g\\,y(1-y)`, :math:`g(1-y^2)`, or g where y > 0."""
    if activation == "sigmoid":
        return aten.sigmoid_backward(grad, out)
    if activation == "tanh":
        return aten.tanh_backward(grad, out)
    return aten.threshold_backward(grad, out, 0)


def _mean_rows_grad(S: int, B: int, like: torch.Tensor) -> torch.Tensor:
    """The gradient autograd feeds a per-member mean over B rows whose S means are summed: 1/B, (S, B)."""
    return torch.ones(S, 1, dtype=like.dtype, device=like.device).expand(S, B) / B


def cross_entropy_losses_and_grad(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean cross-entropy (S,) of logits (S, B, C), and its gradient (S, B, C).

    :math:`L_s = \\frac1B \\sum_b -\\log \\mathrm{softmax}(z_{sb})_{y_{sb}}`; the gradient of
    :math:`\\sum_s L_s` is :math:`(\\mathrm{softmax}(z) - \\mathrm{onehot}(y)) / B`, formed as
    autograd forms it (``nll_loss_backward``, then ``_log_softmax_backward_data``).
    """
    S, B, _ = logits.shape
    log_p = torch.log_softmax(logits.flatten(0, 1), 1)
    target = targets.flatten()
    losses = F.nll_loss(log_p, target, reduction="none").view(S, B).mean(1)
    total_weight = torch.zeros((), dtype=logits.dtype, device=logits.device)
    grad = aten.nll_loss_backward(_mean_rows_grad(S, B, logits).reshape(-1), log_p, target, None, 0, -100,
                                  total_weight)
    grad = aten._log_softmax_backward_data(grad, log_p, 1, logits.dtype)
    return losses, grad.view(S, B, -1)


def mlp_losses_and_grads(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], activation: str,
                         x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-member losses (S,) of the batched MLP and the gradients of their sum.

    Forward: :math:`a_l = h_{l-1} W_l + b_l`, :math:`h_l = f(a_l)`, logits :math:`a_L`; backward:
    :math:`\\nabla W_l = h_{l-1}^\\top \\delta_l`, :math:`\\nabla b_l = \\sum_{rows} \\delta_l`,
    :math:`\\delta_{l-1} = f'(a_{l-1}) \\odot \\delta_l W_l^\\top` (Rumelhart et al. 1986).

    Args:
        weights: per layer (S, in, out); biases: per layer (S, 1, out).
        x: inputs (S, B, in); targets: class indices (S, B).

    Returns:
        The losses and ``[grad W_1, grad b_1, ..., grad W_L, grad b_L]``.
    """
    last = len(weights) - 1
    hs = [x]
    for l, (w, b) in enumerate(zip(weights, biases)):
        a = torch.baddbmm(b, hs[-1], w)  # (S, B, out)
        hs.append(activation_(a, activation) if l < last else a)
    losses, delta = cross_entropy_losses_and_grad(hs[-1], targets)
    grads: list[torch.Tensor] = []
    for l in range(last, -1, -1):
        grads[:0] = [hs[l].transpose(1, 2).bmm(delta), delta.sum(1, keepdim=True)]
        if l:
            delta = activation_backward(delta.bmm(weights[l].transpose(1, 2)), hs[l], activation)
    return losses, grads


def reconstruction_grad(z: torch.Tensor, clean: torch.Tensor, inputs: str) -> torch.Tensor:
    r""":math:`\partial / \partial z` of the summed per-member losses of
    :func:`neuralsmith.autoencoder.reconstruction_loss`: :math:`(\sigma(z) - x) / B` for
    ``binary`` inputs and :math:`(z - x) / B` for ``real`` ones, each as autograd's formula forms
    it (``binary_cross_entropy_with_logits_backward``; :math:`\frac12 \cdot 2 (z - x)`, the same bits)."""
    S, B, d = z.shape
    g = _mean_rows_grad(S, B, z).unsqueeze(-1).expand(S, B, d)
    if inputs == "binary":
        return (z.sigmoid() - clean) * g
    return g * (z - clean)


def tied_dae_losses_and_grads(w: torch.Tensor, hb: torch.Tensor, vb: torch.Tensor, clean: torch.Tensor,
                              noisy: torch.Tensor, inputs: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    r"""Per-member denoising losses (S,) of tied DAEs and the gradients of their sum.

    :math:`h = \sigma(\tilde x W^\top + b)`, :math:`z = h W + c`, the loss of
    :func:`neuralsmith.autoencoder.reconstruction_loss` (Vincent et al. 2010); the tied weight
    gathers both paths, :math:`\nabla W = h^\top \delta_z + \delta_h^\top \tilde x` with
    :math:`\delta_z` from :func:`reconstruction_grad` and
    :math:`\delta_h = h(1-h) \odot \delta_z W^\top`.

    Args:
        w: (S, h, d); hb: (S, h); vb: (S, d); clean, noisy: (S, B, d); inputs: ``binary`` or ``real``.

    Returns:
        The losses and ``[grad w, grad hb, grad vb]``.
    """
    h = torch.sigmoid(torch.baddbmm(hb.unsqueeze(1), noisy, w.transpose(1, 2)))  # (S, B, h)
    z = torch.baddbmm(vb.unsqueeze(1), h, w)  # (S, B, d)
    delta_z = reconstruction_grad(z, clean, inputs)
    delta_h = aten.sigmoid_backward(delta_z.bmm(w.transpose(1, 2)), h)
    grad_w = h.transpose(1, 2).bmm(delta_z) + noisy.transpose(1, 2).bmm(delta_h).transpose(1, 2)
    grads = [grad_w, delta_h.sum(1, keepdim=True).squeeze(1), delta_z.sum(1, keepdim=True).squeeze(1)]
    return reconstruction_loss(z, clean, inputs), grads


def tied_dae_losses_and_grads_bf16(w: torch.Tensor, hb: torch.Tensor, vb: torch.Tensor, clean: torch.Tensor,
                                   noisy: torch.Tensor, inputs: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    r""":func:`tied_dae_losses_and_grads` with its products in bfloat16 (fp32 accumulation).

    The parameters (fp32) are cast once per step, and the corrupted inputs (exact in bf16 when
    binary); the loss and :math:`\delta_z` are formed in fp32 from the bf16 reconstruction
    logits. The tied weight's two terms are one GEMM of depth 2B,
    :math:`
abla W = [h, \delta_h]^	op [\delta_z, 	ilde x]`, rounded once; the gradients
    return in the parameters' dtype.
    """
    w16, hb16, vb16, x16 = (t.to(torch.bfloat16) for t in (w, hb, vb, noisy))
    h = torch.sigmoid(torch.baddbmm(hb16.unsqueeze(1), x16, w16.transpose(1, 2)))  # (S, B, h)
    z = torch.baddbmm(vb16.unsqueeze(1), h, w16).to(w.dtype)  # (S, B, d)
    delta_z = reconstruction_grad(z, clean, inputs)
    dz16 = delta_z.to(torch.bfloat16)
    delta_h = aten.sigmoid_backward(dz16.bmm(w16.transpose(1, 2)), h)
    grad_w = torch.cat([h, delta_h], 1).transpose(1, 2).bmm(torch.cat([dz16, x16], 1))
    grads = [grad_w.to(w.dtype), delta_h.sum(1, dtype=w.dtype), delta_z.sum(1)]
    return reconstruction_loss(z, clean, inputs), grads


class MomentumSGD:
    """The update of ``torch.optim.SGD(params, lr, momentum, weight_decay=..., foreach=True)``.

    :math:`g \\leftarrow g + \\lambda\\theta`; :math:`v \\leftarrow \\mu v + g` (v = g on the
    first step); :math:`\\theta \\leftarrow \\theta - \\epsilon v`, by the same ``_foreach``
    kernels, on a fixed list of tensors and without the optimizer's per-step bookkeeping.
    ``lr`` may be changed between steps (a schedule).
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.buffers: list[torch.Tensor] | None = None

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        """Apply one update from ``grads`` (one per parameter, in order)."""
        if self.weight_decay != 0:
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        if self.momentum != 0:
            if self.buffers is None:
                self.buffers = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads, alpha=1)
            grads = self.buffers
        torch._foreach_add_(self.params, grads, alpha=-self.lr)
