"""The hand-written backward passes give autograd's gradients bit for bit, and MomentumSGD
torch.optim.SGD's updates: a batched run on the fast path ends where the autograd path ends."""

import pytest
import torch

from neuralsmith import data
from neuralsmith.autoencoder import reconstruction_loss
from neuralsmith.backprop import MomentumSGD, mlp_losses_and_grads, tied_dae_losses_and_grads, \
    tied_dae_losses_and_grads_bf16
from neuralsmith.ensemble import EnsembleMLP, batched_epoch, finetune_ensemble, member_losses


def ensemble(activation="sigmoid", sizes=(12, 9, 7, 4), S=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(S, o, i, generator=g) for i, o in zip(sizes, sizes[1:])]
    biases = [torch.randn(S, o, generator=g) for o in sizes[1:]]
    return EnsembleMLP(weights, biases, activation)


def autograd_grads(ens, x, y):
    ens.zero_grad(set_to_none=True)
    losses = member_losses(ens(x), y)
    losses.sum().backward()
    return losses.detach(), [p.grad for pair in zip(ens.weights, ens.biases) for p in pair]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("rows", [8, 5])
def test_mlp_gradients_are_autograds_bit_for_bit(activation, rows):
    ens = ensemble(activation)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(3, rows, 12, generator=g), torch.randint(0, 4, (3, rows), generator=g)
    want_losses, want = autograd_grads(ens, x, y)
    with torch.no_grad():
        losses, grads = mlp_losses_and_grads(list(ens.weights), list(ens.biases), activation, x, y)
    assert torch.equal(losses, want_losses)
    assert len(grads) == len(want) and all(torch.equal(a, b) for a, b in zip(grads, want))


@pytest.mark.parametrize("inputs", ["binary", "real"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tied_dae_gradients_are_autograds_bit_for_bit(inputs, dtype):
    g = torch.Generator().manual_seed(2)
    w, hb, vb = (torch.randn(*shape, generator=g, dtype=dtype) for shape in ((4, 6, 10), (4, 6), (4, 10)))
    clean = torch.rand(4, 7, 10, generator=g, dtype=dtype)
    clean = clean.round() if inputs == "binary" else clean
    noisy = clean * (torch.rand(4, 7, 10, generator=g, dtype=dtype) > 0.3)
    params = [p.clone().requires_grad_() for p in (w, hb, vb)]
    h = torch.sigmoid(torch.baddbmm(params[1].unsqueeze(1), noisy, params[0].transpose(1, 2)))
    want = reconstruction_loss(torch.baddbmm(params[2].unsqueeze(1), h, params[0]), clean, inputs)
    want.sum().backward()
    losses, grads = tied_dae_losses_and_grads(w, hb, vb, clean, noisy, inputs)
    assert torch.equal(losses, want.detach())
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, params))


@pytest.mark.parametrize("inputs", ["binary", "real"])
def test_tied_dae_gradients_in_bf16_are_the_fp32_ones_to_bf16_rounding(inputs):
    """bf16 products (one rounding of each, 2^-9 relative): losses and gradients within a few
    percent of fp32's, as fp32 tensors; the joint weight GEMM holds both terms (a missing one
    would be off by about its whole size)."""
    g = torch.Generator().manual_seed(3)
    w, hb, vb = (0.3 * torch.randn(*shape, generator=g) for shape in ((4, 16, 40), (4, 16), (4, 40)))
    clean = torch.rand(4, 20, 40, generator=g)
    clean = clean.round() if inputs == "binary" else clean
    noisy = clean * (torch.rand(4, 20, 40, generator=g) > 0.3)
    want_losses, want = tied_dae_losses_and_grads(w, hb, vb, clean, noisy, inputs)
    losses, grads = tied_dae_losses_and_grads_bf16(w, hb, vb, clean, noisy, inputs)
    assert torch.allclose(losses, want_losses, rtol=1e-2)
    for a, b in zip(grads, want):
        assert a.dtype == torch.float32 and a.shape == b.shape
        assert (a - b).norm() < 0.02 * b.norm(), (a - b).norm() / b.norm()


@pytest.mark.parametrize("momentum,decay", [(0.9, 0.0), (0.5, 1e-3), (0.0, 0.0), (0.0, 1e-2)])
def test_momentum_sgd_is_torch_sgd_bit_for_bit(momentum, decay):
    g = torch.Generator().manual_seed(3)
    ours = [torch.randn(5, 4, generator=g), torch.randn(4, generator=g)]
    theirs = [torch.nn.Parameter(p.clone()) for p in ours]
    sgd = MomentumSGD(ours, 0.1, momentum, decay)
    opt = torch.optim.SGD(theirs, lr=0.1, momentum=momentum, weight_decay=decay, foreach=True)
    for step in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        sgd.lr = opt.param_groups[0]["lr"] = 0.1 / (1 + step)  # a schedule
        for p, q in zip(theirs, grads):
            p.grad = q.clone()
        sgd.step(grads)
        opt.step()
        assert all(torch.equal(a, b.detach()) for a, b in zip(ours, theirs))


def autograd_finetune(ens, ds, generators, epochs, lr, momentum, batch_size):
    """The batched fine-tuning loop by autograd and torch.optim.SGD, training losses per epoch."""
    opt = torch.optim.SGD(ens.parameters(), lr=lr, momentum=momentum, foreach=True)

    def step(idx):
        losses = member_losses(ens(ds.x_train[idx]), ds.y_train[idx])
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        return losses

    return [batched_epoch(ds.x_train.shape[0], batch_size, generators, step) for _ in range(epochs)]


def test_a_batched_fine_tuning_run_ends_on_autograds_weights():
    ds = data.load("digits", validation=0.2, seed=0)
    sizes = (64, 20, 20, 10)
    ours, theirs = ensemble(sizes=sizes), ensemble(sizes=sizes)
    gens = lambda: [torch.Generator().manual_seed(s) for s in range(3)]  # noqa: E731
    history = finetune_ensemble(ours, ds, gens(), epochs=2, lr=0.1, momentum=0.9, batch_size=50, progress=False)
    assert ds.x_train.shape[0] % 50  # every epoch ends on a short batch
    autograd_finetune(theirs, ds, gens(), epochs=2, lr=0.1, momentum=0.9, batch_size=50)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert len(history) == 2
