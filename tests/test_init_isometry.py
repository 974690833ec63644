"""Delta-orthogonal convolutions and the critical (order-to-chaos) starts."""

import math

import pytest
import torch
from torch import nn

from neuralsmith import init, meanfield


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


CONVS = [(nn.Conv1d, (17,)), (nn.Conv2d, (6, 7)), (nn.Conv3d, (4, 5, 3))]


@pytest.mark.parametrize("conv_cls, spatial", CONVS)
@pytest.mark.parametrize("kernel", [3, 5, 4])
@pytest.mark.parametrize("channels", [(4, 4), (3, 8)])
def test_delta_orthogonal_conv_preserves_the_norm_of_any_input(conv_cls, spatial, kernel, channels):
    c_in, c_out = channels
    conv = conv_cls(c_in, c_out, kernel, padding=kernel // 2, padding_mode="circular", bias=False).double()
    init.delta_orthogonal_(conv.weight, generator=gen(1))
    for seed in range(3):
        x = torch.randn(2, c_in, *spatial, dtype=torch.float64, generator=gen(seed))
        if kernel % 2 == 0:  # an even kernel pads asymmetrically: crop to the input's size
            y = conv(x)[(..., *[slice(0, n) for n in spatial])]
        else:
            y = conv(x)
        for xi, yi in zip(x, y):  # per sample: an orthogonal map of the whole feature map
            assert torch.allclose(yi.norm(), xi.norm(), rtol=1e-10, atol=0)


def test_delta_orthogonal_conv_jacobian_singular_values_are_the_gain():
    conv = nn.Conv2d(3, 5, 3, padding=1, padding_mode="circular", bias=False).double()
    init.delta_orthogonal_(conv.weight, gain=1.5, generator=gen())
    jac = torch.autograd.functional.jacobian(conv, torch.zeros(1, 3, 4, 4, dtype=torch.float64))
    s = torch.linalg.svdvals(jac.reshape(5 * 16, 3 * 16))
    assert torch.allclose(s, torch.full_like(s, 1.5), rtol=1e-10)


def test_delta_orthogonal_is_zero_off_centre_and_orthogonal_at_it():
    w = init.delta_orthogonal_(torch.empty(6, 4, 3, 5, dtype=torch.float64), generator=gen())
    centre = w[:, :, 1, 2]
    assert torch.allclose(centre.T @ centre, torch.eye(4, dtype=torch.float64), rtol=0, atol=1e-12)
    w[:, :, 1, 2] = 0
    assert w.abs().sum() == 0


def test_delta_orthogonal_fewer_outputs_has_orthonormal_rows():
    w = init.delta_orthogonal_(torch.empty(3, 7, 3, dtype=torch.float64), generator=gen())[:, :, 1]
    assert torch.allclose(w @ w.T, torch.eye(3, dtype=torch.float64), atol=1e-12)


def test_delta_orthogonal_same_generator_same_kernel():
    a = init.delta_orthogonal_(torch.empty(4, 4, 3), generator=gen(5))
    b = init.delta_orthogonal_(torch.empty(4, 4, 3), generator=gen(5))
    assert torch.equal(a, b)


def test_refuses_delta_orthogonal_of_a_bias():
    with pytest.raises(ValueError, match="2 or more dims"):
        init.delta_orthogonal_(torch.empty(5))


# --- the critical line ---------------------------------------------------------------------


def test_tanh_with_a_tiny_bias_is_critical_at_unit_weight_scale():
    sigma_ws = [meanfield.critical_point("tanh", sigma_b=s).sigma_w for s in (1e-2, 1e-4, 1e-6, 1e-9)]
    assert sigma_ws == sorted(sigma_ws, reverse=True) and all(s > 1 for s in sigma_ws)
    assert sigma_ws[-1] == pytest.approx(1.0, abs=1e-5)  # q* ~ sigma_b^(2/3): slow, but to 1
    assert meanfield.critical_point("tanh", sigma_b=0.0).sigma_w == pytest.approx(1.0, abs=1e-12)


def monte_carlo_chi(nonlinearity: str, sigma_w: float, q: float, n: int = 2_000_000) -> float:
    """chi_1 from samples of z, independent of the quadrature."""
    h = math.sqrt(q) * torch.randn(n, dtype=torch.float64, generator=gen(7))
    act = getattr(torch, nonlinearity)
    h.requires_grad_(True)
    (dphi,) = torch.autograd.grad(act(h).sum(), h)
    return float(sigma_w**2 * dphi.pow(2).mean())


def monte_carlo_q(nonlinearity: str, sigma_w: float, sigma_b: float, q: float, n: int = 2_000_000) -> float:
    h = math.sqrt(q) * torch.randn(n, dtype=torch.float64, generator=gen(8))
    return float(sigma_w**2 * getattr(torch, nonlinearity)(h).pow(2).mean() + sigma_b**2)


@pytest.mark.parametrize("nonlinearity, sigma_b", [("tanh", 0.05), ("tanh", 0.3), ("sigmoid", 0.5)])
def test_critical_point_has_chi_one_and_is_a_fixed_point_by_monte_carlo(nonlinearity, sigma_b):
    p = meanfield.critical_point(nonlinearity, sigma_b=sigma_b)
    assert p.chi == pytest.approx(1.0, abs=1e-9)
    assert monte_carlo_chi(nonlinearity, p.sigma_w, p.q_star) == pytest.approx(1.0, abs=5e-3)
    assert monte_carlo_q(nonlinearity, p.sigma_w, p.sigma_b, p.q_star) == pytest.approx(p.q_star, rel=5e-3)


def test_critical_point_from_q_star_round_trips_through_sigma_b():
    p = meanfield.critical_point("tanh", q_star=0.25)
    back = meanfield.critical_point("tanh", sigma_b=p.sigma_b)
    assert back.q_star == pytest.approx(0.25, rel=1e-8) and back.sigma_w == pytest.approx(p.sigma_w, rel=1e-8)


def test_chi_one_orders_the_phases():
    p = meanfield.critical_point("tanh", sigma_b=0.1)
    assert meanfield.chi_1(p.q_star, "tanh", 0.9 * p.sigma_w) < 1 < meanfield.chi_1(p.q_star, "tanh", 1.1 * p.sigma_w)


def test_critical_normal_start_has_the_critical_variance():
    sigma_w = meanfield.critical_point("tanh", sigma_b=0.2).sigma_w
    w = init.critical_(torch.empty(400, 500), "tanh", 0.2, "normal", generator=gen())
    assert w.var().item() == pytest.approx(sigma_w**2 / 500, rel=0.02)


def test_critical_orthogonal_start_has_singular_values_sigma_w():
    sigma_w = meanfield.critical_point("sigmoid", sigma_b=0.0).sigma_w
    w = init.critical_(torch.empty(30, 30, dtype=torch.float64), "sigmoid", generator=gen())
    assert torch.allclose(torch.linalg.svdvals(w), torch.full((30,), sigma_w, dtype=torch.float64))
    k = init.critical_(torch.empty(8, 8, 3, dtype=torch.float64), "sigmoid", generator=gen())
    assert torch.allclose(torch.linalg.svdvals(k[:, :, 1]), torch.full((8,), sigma_w, dtype=torch.float64))


def test_apply_critical_draws_biases_with_sigma_b():
    net = init.apply(nn.Sequential(nn.Linear(300, 300), nn.Tanh()), "critical", sigma_b=0.3, generator=gen())
    assert net[0].bias.std().item() == pytest.approx(0.3, rel=0.15)
    assert net[0].bias.abs().sum() > 0


def test_new_schemes_are_registered():
    for name, fn in (("delta_orthogonal", init.delta_orthogonal_), ("critical", init.critical_)):
        assert init.SCHEMES[name].fn is fn and "201" in init.SCHEMES[name].paper


def test_refuses_unknown_nonlinearity_for_the_critical_line():
    with pytest.raises(ValueError, match="He's start"):
        meanfield.critical_point("relu", sigma_b=0.1)


def test_refuses_both_sigma_b_and_q_star():
    with pytest.raises(ValueError, match="exactly one"):
        meanfield.critical_point("tanh", sigma_b=0.1, q_star=0.1)


def test_refuses_negative_sigma_b():
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        meanfield.critical_point("tanh", sigma_b=-0.1)


def test_refuses_negative_q_star():
    with pytest.raises(ValueError, match="q_star must be >= 0"):
        meanfield.critical_point("tanh", q_star=-1.0)


def test_refuses_q_star_no_bias_reaches():
    with pytest.raises(ValueError, match="choose a larger q_star"):
        meanfield.critical_point("sigmoid", q_star=0.1)


def test_refuses_unknown_critical_distribution():
    with pytest.raises(ValueError, match="distribution must be"):
        init.critical_(torch.empty(3, 3), distribution="uniform")


def test_apply_critical_refuses_bad_options_before_touching_weights():
    net = nn.Linear(3, 3)
    before = net.weight.detach().clone()
    with pytest.raises(ValueError, match="nonlinearity must be"):
        init.apply(net, "critical", nonlinearity="relu", generator=gen())
    assert torch.equal(net.weight, before)
