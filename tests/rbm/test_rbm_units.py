"""Unit types: conditionals, free-energy terms and samplers, checked against their definitions."""

import math

import pytest
import torch

from neuralsmith.rbm import units

G = torch.Generator


def _grid_log_integral(energy_minus_input, lo, hi, n=200001):
    """log of the integral over [lo, hi] of exp(f(s)), by the trapezoid rule in float64."""
    s = torch.linspace(lo, hi, n, dtype=torch.float64)
    f = energy_minus_input(s)
    m = f.max()
    return float(m + torch.log(torch.trapezoid(torch.exp(f - m), s)))


def test_bernoulli_free_energy_sums_both_states():
    x, bias = torch.tensor([[0.3, -1.2]], dtype=torch.float64), torch.tensor([0.1, 0.5], dtype=torch.float64)
    expected = -torch.log1p(torch.exp(x)).sum()
    assert torch.allclose(units.Bernoulli().free_energy(x, bias), expected.reshape(1))


def test_gaussian_free_energy_matches_numerical_integral():
    b, u, sigma = 0.4, 0.7, 1.6
    gauss = units.Gaussian()
    x = torch.tensor([[b + u]], dtype=torch.float64)
    got = -float(gauss.free_energy(x, torch.tensor([b], dtype=torch.float64),
                                   torch.tensor([sigma], dtype=torch.float64)))
    want = _grid_log_integral(lambda s: -(s - b) ** 2 / (2 * sigma**2) + u * s / sigma**2, -30, 30)
    assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("x", [-3.0, 0.0, 2.5])
def test_relu_free_energy_matches_numerical_integral(x):
    got = -float(units.ReLU().free_energy(torch.tensor([[x]], dtype=torch.float64), torch.zeros(1)))
    want = _grid_log_integral(lambda s: -s**2 / 2 + x * s, 0.0, 40.0)
    assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "relu"])
def test_mean_is_gradient_of_log_normalizer(name):
    """d(-F)/dx = E[t(s)]: the conditional mean is the derivative of the free-energy term."""
    unit = units.VISIBLE.get(name) or units.HIDDEN[name]
    x = torch.linspace(-4, 4, 9, dtype=torch.float64).reshape(1, -1).requires_grad_(True)
    bias = torch.zeros(9, dtype=torch.float64)
    (-unit.free_energy(x, bias)).sum().backward()
    assert torch.allclose(x.grad, unit.stat(unit.mean(x.detach())), atol=1e-8)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "relu"])
def test_sample_mean_converges_to_mean(name):
    unit = units.VISIBLE.get(name) or units.HIDDEN[name]
    x = torch.tensor([-2.0, -0.3, 0.0, 1.5])
    draws = unit.sample(x.expand(40000, -1), None, G().manual_seed(0))
    assert torch.allclose(draws.mean(0), unit.mean(x), atol=0.03)


def test_gaussian_sample_has_given_std():
    std = torch.tensor([0.5, 2.0])
    draws = units.Gaussian().sample(torch.zeros(40000, 2), std, G().manual_seed(1))
    assert torch.allclose(draws.std(0), std, rtol=0.03)


def test_relu_sample_is_nonnegative_and_finite_at_extremes():
    x = torch.tensor([-80.0, -20.0, 0.0, 20.0, 80.0]).expand(1000, -1)
    s = units.ReLU().sample(x, None, G().manual_seed(2))
    assert torch.isfinite(s).all() and (s >= 0).all()
    assert float(s[:, :2].max()) < 0.5 and torch.allclose(s[:, 4].mean(), torch.tensor(80.0), atol=0.1)


def test_bernoulli_draws_match_probabilities():
    p = torch.linspace(0, 1, 11)
    s = units.bernoulli(p.expand(50000, -1), G().manual_seed(3))
    assert torch.allclose(s.mean(0), p, atol=0.01)
    assert s[:, 0].sum() == 0 and s[:, -1].all()


def test_bernoulli_keeps_float64():
    p = torch.full((3,), 0.5, dtype=torch.float64)
    assert units.bernoulli(p, G().manual_seed(0)).dtype == torch.float64


def test_same_generator_same_draws():
    x = torch.randn(5, 7, generator=G().manual_seed(0))
    for unit in (units.Bernoulli(), units.Gaussian(), units.ReLU()):
        a = unit.sample(x, None, G().manual_seed(9))
        assert torch.equal(a, unit.sample(x, None, G().manual_seed(9)))


def test_softplus_is_exact_for_large_inputs():
    x = torch.tensor([-800.0, 0.0, 30.0, 800.0], dtype=torch.float64)
    assert torch.allclose(units.softplus(x), torch.logaddexp(x, torch.zeros_like(x)), rtol=1e-15)


def test_unknown_visible_unit_type():
    with pytest.raises(ValueError, match="visible units must be one of bernoulli, gaussian"):
        units.get("relu", "visible")


def test_unknown_hidden_unit_type():
    with pytest.raises(ValueError, match="hidden units must be one of bernoulli, relu"):
        units.get("gaussian", "hidden")


def test_log_sqrt_2pi():
    assert units.LOG_SQRT_2PI == pytest.approx(0.5 * math.log(2 * math.pi))
