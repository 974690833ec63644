"""Gradient-flow diagnostics: the acceptance verdicts, the statistics, and hooks that never leak."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuralsmith import diagnostics, nets

DEPTH10 = [64] + [256] * 10 + [10]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def batch():
    g = gen(0)
    return torch.rand(128, 64, generator=g), torch.randint(10, (128,), generator=g)


def flow(activation, scheme, batch, seed=0, **options):
    net = nets.mlp(DEPTH10, activation, init=scheme, generator=gen(seed), **options)
    return diagnostics.gradient_flow(net, *batch)


def test_deep_sigmoid_with_small_gaussian_vanishes(batch):
    report = flow("sigmoid", "normal", batch, std=0.01)
    assert report.verdict == "vanishing" and report.ratio < 1e-8


def test_deep_linear_with_large_gaussian_explodes(batch):
    report = flow("linear", "normal", batch, std=4.0)
    assert report.verdict == "exploding" and report.ratio > 1e8


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("activation, scheme", [("relu", "he_normal"), ("tanh", "glorot_uniform")])
def test_well_started_nets_are_healthy(batch, activation, scheme, seed):
    report = flow(activation, scheme, batch, seed)
    assert report.verdict == "healthy" and 0.1 < report.ratio < 10


def test_report_has_a_record_per_layer_in_forward_order(batch):
    report = flow("tanh", "glorot_uniform", batch)
    assert [r.name for r in report.layers] == [str(2 * i) for i in range(11)]
    assert [r.nonlinearity for r in report.layers] == ["tanh"] * 10 + ["linear"]
    assert all(r.grad_norm > 0 and r.signal_norm > 0 for r in report.layers)
    assert report.ratio == pytest.approx(report.layers[0].signal_norm / report.layers[-1].signal_norm)


def test_signal_norm_is_the_gradient_at_the_pre_activation():
    net = nets.mlp([3, 4, 2], "tanh", init="glorot_uniform", generator=gen())
    x, y = torch.randn(5, 3, generator=gen()), torch.randint(2, (5,), generator=gen())
    z1 = net[0](x).detach().requires_grad_()
    loss = nn.functional.cross_entropy(net[2](torch.tanh(z1)), y)
    (dz1,) = torch.autograd.grad(loss, z1)
    report = diagnostics.gradient_flow(net, x, y)
    assert report.layers[0].signal_norm == pytest.approx(dz1.norm().item(), rel=1e-5)


def test_weight_grad_norm_matches_backward_and_leaves_grad_untouched():
    net = nets.mlp([3, 4, 2], "relu", init="he_normal", generator=gen())
    x, y = torch.randn(5, 3, generator=gen()), torch.randn(5, 2, generator=gen())
    report = diagnostics.gradient_flow(net, x, y)  # float targets: squared error
    assert net[0].weight.grad is None
    nn.functional.mse_loss(net(x), y).backward()
    assert report.layers[0].grad_norm == pytest.approx(net[0].weight.grad.norm().item(), rel=1e-5)


def test_activation_statistics_and_relu_saturation():
    net = nets.mlp([3, 50, 2], "relu", init="he_normal", generator=gen())
    x = torch.randn(64, 3, generator=gen())
    report = diagnostics.gradient_flow(net, x, torch.randint(2, (64,), generator=gen()))
    a = net[1](net[0](x))
    first = report.layers[0]
    assert first.activation_mean == pytest.approx(a.mean().item(), rel=1e-5)
    assert first.activation_std == pytest.approx(a.std().item(), rel=1e-5)
    assert first.saturation == pytest.approx((a == 0).float().mean().item())


def test_sigmoid_and_tanh_saturation_margins():
    assert diagnostics.saturation(torch.tensor([0.005, 0.5, 0.995, 0.98]), "sigmoid") == 0.5
    assert diagnostics.saturation(torch.tensor([-0.999, 0.0, 0.995, 0.9]), "tanh") == 0.5
    assert diagnostics.saturation(torch.tensor([0.0, 1.0]), "linear") == 0.0


def test_recurrent_layers_are_measured():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.out = nn.GRU(3, 8, batch_first=True), nn.Linear(8, 2)

        def forward(self, x):
            return self.out(self.rnn(x)[0][:, -1])

    report = diagnostics.gradient_flow(Net(), torch.randn(4, 6, 3), torch.tensor([0, 1, 0, 1]))
    assert [(r.name, r.kind, r.nonlinearity) for r in report.layers] == [("rnn", "GRU", "tanh"),
                                                                         ("out", "Linear", "linear")]
    assert report.layers[0].grad_norm > 0


def test_verdict_thresholds():
    below, above = diagnostics.VANISHING_BELOW, diagnostics.EXPLODING_ABOVE
    assert diagnostics.verdict(below / 2) == "vanishing"
    assert diagnostics.verdict(below * 2) == diagnostics.verdict(above / 2) == "healthy"
    assert diagnostics.verdict(above * 2) == diagnostics.verdict(math.inf) == "exploding"


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_hooks_removed_after_measuring(batch):
    net = nets.mlp([64, 16, 10], "sigmoid", generator=gen())
    diagnostics.gradient_flow(net, *batch)
    assert no_hooks(net)


def test_hooks_removed_when_forward_raises():
    net = nets.mlp([64, 16, 10], "sigmoid", generator=gen())
    with pytest.raises(RuntimeError):
        diagnostics.gradient_flow(net, torch.randn(4, 7), torch.zeros(4, dtype=torch.long))
    assert no_hooks(net)


def test_hooks_removed_when_loss_raises(batch):
    net = nets.mlp([64, 16, 10], "sigmoid", generator=gen())

    def bad_loss(output, target):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        diagnostics.gradient_flow(net, *batch, loss_fn=bad_loss)
    assert no_hooks(net)


def test_model_without_weight_layers_is_refused():
    with pytest.raises(ValueError, match="no Linear, Conv"):
        diagnostics.gradient_flow(nn.Sequential(nn.Tanh()), torch.randn(2, 3).requires_grad_(),
                                  torch.randn(2, 3))


def test_diagnose_measures_before_and_after_steps():
    x, y = torch.rand(300, 8, generator=gen()), torch.randint(3, (300,), generator=gen())
    reports = diagnostics.diagnose([8, 16, 16, 3], "tanh", "glorot_uniform", x, y, steps=3, batch_size=64)
    assert list(reports) == ["init", "after 3 steps"]
    again = diagnostics.diagnose([8, 16, 16, 3], "tanh", "glorot_uniform", x, y, steps=3, batch_size=64)
    assert reports["after 3 steps"].ratio == again["after 3 steps"].ratio  # seeded


def test_diagnose_with_lsuv_uses_the_batch():
    x, y = torch.rand(100, 8, generator=gen()), torch.randint(3, (100,), generator=gen())
    assert diagnostics.diagnose([8, 16, 3], "relu", "lsuv", x, y, batch_size=50)["init"].verdict == "healthy"


def test_diagnose_refuses_arch_that_does_not_fit_the_data():
    x, y = torch.rand(10, 8, generator=gen()), torch.arange(10) % 3  # every class present
    with pytest.raises(ValueError, match="start the arch with 8"):
        diagnostics.diagnose([9, 3], "tanh", "glorot_uniform", x, y)
    with pytest.raises(ValueError, match="end the arch with 3"):
        diagnostics.diagnose([8, 2], "tanh", "glorot_uniform", x, y)


# --- nets -----------------------------------------------------------------------------


def test_parse_arch_repeats_and_plain():
    assert nets.parse_arch("64-256x10-10") == [64] + [256] * 10 + [10]
    assert nets.parse_arch("784-500-500-10") == [784, 500, 500, 10]


@pytest.mark.parametrize("bad", ["64", "64-", "64-abc-10", "64-0-10", "64-256x0-10", ""])
def test_parse_arch_refuses(bad):
    with pytest.raises(ValueError, match="arch"):
        nets.parse_arch(bad)


def test_mlp_layout_last_layer_linear():
    net = nets.mlp([5, 7, 3], "sigmoid", init="glorot_uniform", generator=gen())
    assert [type(m).__name__ for m in net] == ["Linear", "Sigmoid", "Linear"]
    assert net[0].weight.shape == (7, 5)


def test_mlp_refuses_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of sigmoid, tanh, relu, linear"):
        nets.mlp([3, 2], "softplus")


def test_a_zero_output_layer_is_blocked_not_vanishing(batch):
    """A pre-trained stack's zero classifier stops dL/dz below it: a separate verdict (issue 19)."""
    from neuralsmith.stack import stack_to_mlp

    g = gen(3)
    weights = [(torch.randn(32, 64, generator=g) * 0.1, torch.zeros(32)),
               (torch.randn(32, 32, generator=g) * 0.1, torch.zeros(32))]
    report = diagnostics.gradient_flow(stack_to_mlp(weights, 10), *batch)
    assert report.ratio == 0.0 and report.verdict == diagnostics.BLOCKED == "blocked"
    assert report.grad_norms[-1] > 0 and report.grad_norms[0] == 0.0


def test_a_nonzero_output_layer_over_dead_units_still_vanishes(batch):
    """Only an all-zero output layer is 'blocked': a tiny one over a vanishing net is not."""
    net = nets.mlp(DEPTH10, "sigmoid", init="normal", std=0.01, generator=gen(0))
    with torch.no_grad():
        net[-1].weight.mul_(1e-6)
    assert diagnostics.gradient_flow(net, *batch).verdict == "vanishing"
