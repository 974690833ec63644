"""Jacobian spectra: exact against closed forms, the randomized method against the exact one."""

import math

import pytest
import torch
from torch import nn

from neuralsmith import diagnostics, init, meanfield, nets, spectrum
from neuralsmith.spectrum import jacobian_spectrum


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear_net(sizes, scheme="orthogonal", gain=1.0, seed=0):
    layers = [nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])]
    net = nn.Sequential(*layers).double()
    for layer in layers:
        init.svd_orthogonal_(layer.weight, gain, generator=gen(seed)) if scheme == "orthogonal" else \
            init.gaussian_(layer.weight, gain / math.sqrt(layer.in_features), generator=gen(seed))
        seed += 1
    return net


def inputs(n, d, scale=1.0, seed=0):
    return scale * torch.randn(n, d, dtype=torch.float64, generator=gen(seed))


def critical_tanh(distribution, width=128, depth=8, sigma_b=0.05, seed=0):
    """A tanh MLP at the critical point and inputs whose first pre-activations have q = q*."""
    p = meanfield.critical_point("tanh", sigma_b=sigma_b)
    net = nets.mlp([width] * (depth + 1), "tanh", init="critical", sigma_b=sigma_b,
                   distribution=distribution, generator=gen(seed)).double()
    return net, inputs(4, width, math.sqrt(p.q_star - sigma_b**2) / p.sigma_w, seed + 100)


def test_exact_spectrum_of_a_random_orthogonal_linear_net_is_all_ones():
    spec = jacobian_spectrum(linear_net([20] * 6), inputs(3, 20), method="exact")
    assert spec.values.shape == (3, 20)
    assert torch.allclose(spec.values, torch.ones_like(spec.values), rtol=0, atol=1e-12)
    assert spec.chi == pytest.approx(1.0) and spec.condition == pytest.approx(1.0) and spec.verdict == "isometric"
    assert spec.summary()["s2_variance"] == pytest.approx(0.0, abs=1e-20) and spec.zero_fraction == 0.0


def test_linear_net_spectrum_is_the_singular_values_of_the_weight_product():
    net = linear_net([12, 20, 9, 15, 7], scheme="normal")
    product = net[3].weight @ net[2].weight @ net[1].weight @ net[0].weight  # (7, 12)
    spec = jacobian_spectrum(net, inputs(2, 12), method="exact")
    expected = torch.linalg.svdvals(product.detach())
    for row in spec.values:
        assert torch.allclose(row, expected, rtol=1e-10)


def test_lanczos_with_enough_steps_recovers_the_exact_spectrum():
    net, x = critical_tanh("orthogonal", width=24, depth=4)
    exact = jacobian_spectrum(net, x, method="exact")
    fast = jacobian_spectrum(net, x, method="lanczos", steps=24, n_probe=2, generator=gen(1))
    for i, row in enumerate(fast.values):  # each probe's Ritz values are its sample's spectrum
        assert torch.allclose(row, exact.values[i // 2], rtol=1e-8)


def test_lanczos_agrees_with_exact_within_the_stated_tolerance():
    net, x = critical_tanh("orthogonal")  # 128-dimensional Jacobians, 32 steps
    exact = jacobian_spectrum(net, x, method="exact")
    for seed in range(3):
        fast = jacobian_spectrum(net, x, method="lanczos", steps=32, n_probe=4, generator=gen(seed))
        assert fast.summary()["s_max"] == pytest.approx(exact.summary()["s_max"], rel=1e-6)
        assert fast.summary()["s_min"] == pytest.approx(exact.summary()["s_min"], rel=0.05)
        assert fast.chi == pytest.approx(exact.chi, rel=0.15)
        assert fast.spread == pytest.approx(exact.spread, abs=0.1)
        assert fast.verdict == exact.verdict == "isometric"


def test_lanczos_spread_is_a_lower_estimate_of_an_ill_conditioned_one():
    net, x = critical_tanh("normal")
    exact = jacobian_spectrum(net, x, method="exact")
    fast = jacobian_spectrum(net, x, method="lanczos", steps=32, n_probe=4, generator=gen())
    assert spectrum.ILL_CONDITIONED_SPREAD < fast.spread <= exact.spread
    assert fast.verdict == exact.verdict == "ill-conditioned"


def test_lanczos_is_reproducible_through_the_generator():
    net, x = critical_tanh("orthogonal", width=32, depth=3)
    a = jacobian_spectrum(net, x, method="lanczos", steps=8, generator=gen(4))
    b = jacobian_spectrum(net, x, method="lanczos", steps=8, generator=gen(4))
    assert torch.equal(a.values, b.values) and torch.equal(a.weights, b.weights)


def test_orthogonal_tanh_at_criticality_is_isometric_and_gaussian_is_not():
    assert jacobian_spectrum(critical_tanh("orthogonal")[0], critical_tanh("orthogonal")[1]).verdict == "isometric"
    assert jacobian_spectrum(*critical_tanh("normal")).verdict == "ill-conditioned"


# --- the verdict and its thresholds ---------------------------------------------------------


def test_verdict_thresholds_are_the_documented_ones():
    assert (spectrum.COLLAPSING_BELOW, spectrum.EXPLODING_ABOVE, spectrum.ILL_CONDITIONED_SPREAD) == (0.1, 10.0, 1.0)
    v = spectrum.spectrum_verdict
    assert v(0.11, 0.99) == "isometric" and v(9.9, 0.0) == "isometric"
    assert v(1.0, 1.01) == "ill-conditioned"
    assert v(0.09, 0.0) == "collapsing" and v(0.09, 5.0) == "collapsing"
    assert v(10.1, 0.0) == "exploding" and v(math.nan, 0.0) == "exploding"
    assert v(1.0, math.inf) == "ill-conditioned"  # a rank-deficient Jacobian


@pytest.mark.parametrize("gain, verdict", [(1.0, "isometric"), (0.5, "collapsing"), (2.0, "exploding")])
def test_verdict_of_scaled_orthogonal_linear_nets(gain, verdict):
    spec = jacobian_spectrum(linear_net([16] * 5, gain=gain), inputs(2, 16))
    assert spec.chi == pytest.approx(gain ** 8)  # four layers, s = gain^4
    assert spec.verdict == verdict


def test_relu_jacobian_is_rank_deficient_and_ill_conditioned():
    net = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(32, 32), nn.ReLU())]).double()
    init.apply(net, "orthogonal", gain=math.sqrt(2), generator=gen())
    spec = jacobian_spectrum(net, inputs(2, 32))
    assert 0.3 < spec.zero_fraction < 1 and spec.spread == math.inf and spec.condition == math.inf
    assert spec.verdict == "ill-conditioned"
    edges, density = spec.density()
    assert bool(torch.isfinite(edges).all()) and float((density * (edges[1] - edges[0])).sum()) == pytest.approx(1.0)


def test_verdict_of_a_deep_gaussian_linear_net_is_ill_conditioned():
    spec = jacobian_spectrum(linear_net([32] * 11, scheme="normal"), inputs(2, 32))
    assert spec.spread > spectrum.ILL_CONDITIONED_SPREAD and spec.verdict == "ill-conditioned"


# --- any module: CNNs, pre-trained stacks, per layer ----------------------------------------


def test_delta_orthogonal_cnn_is_exactly_isometric():
    convs = [nn.Conv2d(3 if i == 0 else 6, 6, 3, padding=1, padding_mode="circular", bias=False) for i in range(5)]
    net = nn.Sequential(*convs, nn.Flatten()).double()
    init.apply(net, "delta_orthogonal", generator=gen())
    spec = jacobian_spectrum(net, torch.randn(2, 3, 5, 5, dtype=torch.float64, generator=gen()))
    assert spec.shape == (150, 75)
    assert torch.allclose(spec.values, torch.ones_like(spec.values), atol=1e-10)


def test_cnn_lanczos_matches_exact_on_the_largest_singular_value():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(),
                        nn.Flatten(), nn.Linear(4 * 36, 10)).double()
    init.apply(net, "he_normal", nonlinearity="tanh", generator=gen())
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64, generator=gen(1))
    exact = jacobian_spectrum(net, x, method="exact")
    fast = jacobian_spectrum(net, x, method="lanczos", steps=10, generator=gen())  # J J^T is 10 x 10
    assert exact.values.shape == (2, 10)
    assert torch.allclose(fast.values.reshape(2, 4, 10)[:, 0], exact.values, rtol=1e-8)


def test_pretrained_stack_as_mlp():
    from neuralsmith.stack import DBN
    mlp = DBN([64, 32, 16], generator=gen()).to_mlp(10).double()
    spec = jacobian_spectrum(mlp, torch.rand(3, 64, dtype=torch.float64, generator=gen()))
    assert spec.shape == (10, 64) and spec.verdict in ("isometric", "ill-conditioned", "collapsing", "exploding")


def test_per_layer_spectra_are_each_weights_singular_values():
    net = linear_net([10, 14, 8], scheme="normal")
    spec = jacobian_spectrum(net, inputs(2, 10), per_layer=True)
    assert [name for name, _ in spec.layers] == ["0", "1"]
    for (_, layer), weight in zip(spec.layers, (net[0].weight, net[1].weight)):
        assert torch.allclose(layer.values[0], torch.linalg.svdvals(weight.detach()), rtol=1e-10)


def test_per_layer_blocks_keep_the_activation_with_its_layer():
    net = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Linear(4, 2))
    blocks = spectrum.layer_blocks(net)
    assert [name for name, _ in blocks] == ["1.0", "2"]
    assert [type(m).__name__ for m in blocks[0][1]] == ["Flatten", "Linear", "Tanh"]


def test_diagnostics_reexports_jacobian_spectrum():
    assert diagnostics.jacobian_spectrum is spectrum.jacobian_spectrum


def test_to_dict_and_density():
    spec = jacobian_spectrum(linear_net([8, 8, 8], scheme="normal"), inputs(2, 8))
    d = spec.to_dict()
    assert d["s2_variance"] == pytest.approx(float(spec.values.pow(2).var(unbiased=False)))
    assert {"chi", "spread", "condition", "verdict", "values", "weights"} <= set(d)
    edges, density = spec.density(bins=10)
    assert len(edges) == 11 and float((density * (edges[1] - edges[0])).sum()) == pytest.approx(1.0)


# --- bad inputs ------------------------------------------------------------------------------


def test_refuses_unknown_method():
    with pytest.raises(ValueError, match="method must be"):
        jacobian_spectrum(nn.Linear(2, 2), torch.zeros(1, 2), method="svd")


def test_refuses_an_unbatched_input():
    with pytest.raises(ValueError, match="must be a batch"):
        jacobian_spectrum(nn.Linear(2, 2), torch.zeros(2))


def test_refuses_integer_input():
    with pytest.raises(ValueError, match="floating point"):
        jacobian_spectrum(nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long))


def test_refuses_zero_probes():
    with pytest.raises(ValueError, match="n_probe and steps"):
        jacobian_spectrum(nn.Linear(2, 2), torch.zeros(1, 2), n_probe=0)


def test_refuses_per_layer_on_a_non_sequential_model():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ValueError, match="needs an nn.Sequential"):
        jacobian_spectrum(Net(), torch.zeros(1, 2), per_layer=True)
