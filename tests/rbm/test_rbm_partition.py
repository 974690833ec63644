"""log Z: enumeration against brute force over every joint state; AIS against the exact value."""

import math

import pytest
import torch

from neuralsmith.rbm import RBM, ais_log_partition, default_betas, exact_log_partition, \
    log_likelihood, pseudo_likelihood, train
from neuralsmith.rbm.partition import binary_states


def _brute_force_log_z(rbm):
    """log of the sum of exp(-E(v, h)) over every joint binary state, in float64."""
    v = binary_states(0, 2**rbm.n_visible, rbm.n_visible)
    h = binary_states(0, 2**rbm.n_hidden, rbm.n_hidden)
    vv = v.repeat_interleave(len(h), 0)
    hh = h.repeat(len(v), 1)
    return float(torch.logsumexp(-rbm.energy(vv, hh).detach(), 0))


@pytest.mark.parametrize("shape", [(3, 2), (10, 8), (8, 10)])
def test_exact_log_z_equals_brute_force(make_rbm, shape):
    rbm = make_rbm(*shape)
    assert exact_log_partition(rbm) == pytest.approx(_brute_force_log_z(rbm), abs=1e-9)


def test_exact_log_z_in_float32_model_is_computed_in_float64(make_rbm):
    rbm = make_rbm(10, 8).float()
    assert exact_log_partition(rbm) == pytest.approx(_brute_force_log_z(make_rbm(10, 8)), abs=1e-4)


def test_enumerating_either_layer_gives_the_same_log_z(make_rbm):
    """Z is symmetric in the layers: swap them (W -> W^T, b <-> c) and enumerate the other."""
    rbm = make_rbm(7, 5)
    swapped = RBM(5, 7, dtype=torch.float64)
    with torch.no_grad():
        swapped.weight.copy_(rbm.weight.t())
        swapped.visible_bias.copy_(rbm.hidden_bias)
        swapped.hidden_bias.copy_(rbm.visible_bias)
    assert exact_log_partition(rbm) == pytest.approx(exact_log_partition(swapped), abs=1e-10)


def _grid_log_z(rbm, lo, hi, n):
    """Sum over binary visible states, integrate one real hidden unit on a grid."""
    v = binary_states(0, 2**rbm.n_visible, rbm.n_visible)
    s = torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        neg_e = torch.stack([-rbm.energy(vv.expand(n, -1), s) for vv in v])  # (states, grid)
    return float(torch.logsumexp(neg_e, 0).logsumexp(0) + math.log((hi - lo) / (n - 1)))


def test_exact_log_z_with_relu_hidden_matches_numerical_integral(make_rbm):
    rbm = make_rbm(4, 1, hidden="relu", scale=0.5)
    assert exact_log_partition(rbm) == pytest.approx(_grid_log_z(rbm, 0.0, 30.0, 300001), abs=1e-4)


def test_exact_log_z_with_gaussian_visibles_matches_numerical_integral(make_rbm):
    """Enumerate the 3 hidden units; integrate the 1 Gaussian visible numerically."""
    rbm = make_rbm(1, 3, visible="gaussian", learn_std=True, scale=0.5)
    with torch.no_grad():
        rbm.visible_log_std.fill_(0.4)
    h = binary_states(0, 8, 3)
    s = torch.linspace(-40, 40, 400001, dtype=torch.float64)[:, None]
    neg_e = torch.stack([-rbm.energy(s, hh.expand(len(s), -1)) for hh in h]).detach()
    want = float(torch.logsumexp(neg_e, 0).logsumexp(0) + math.log(80 / 400000))
    assert exact_log_partition(rbm) == pytest.approx(want, abs=1e-4)


def test_probabilities_sum_to_one(make_rbm):
    rbm = make_rbm(6, 4)
    v = binary_states(0, 64, 6)
    log_z = exact_log_partition(rbm)
    total = sum(math.exp(log_likelihood(rbm, v[i:i + 1], log_z)) for i in range(64))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_exact_log_z_refuses_large_layers():
    with pytest.raises(ValueError, match="needs a binary layer of at most 24 units.*ais_log_partition"):
        exact_log_partition(RBM(30, 30))


def test_exact_log_z_refuses_gaussian_visible_with_relu_hidden():
    with pytest.raises(ValueError, match="needs a binary layer"):
        exact_log_partition(RBM(3, 2, visible="gaussian", hidden="relu"))


def test_default_schedule_is_salakhutdinov_and_murray():
    b = default_betas()
    steps = torch.diff(b)
    assert len(b) == 14501 and b[0] == 0 and b[-1] == 1 and (steps > 0).all()
    assert torch.allclose(steps[:500], torch.full((500,), 1e-3, dtype=torch.float64))
    assert torch.allclose(steps[500:4500], torch.full((4000,), 1e-4, dtype=torch.float64))
    assert torch.allclose(steps[4500:], torch.full((10000,), 1e-5, dtype=torch.float64))


def _trained_rbm(n_hidden, hidden="bernoulli"):
    from neuralsmith import data

    x = data.load("digits", binarize="threshold").x_train
    g = torch.Generator().manual_seed(0)
    rbm = RBM.from_data(x, n_hidden, hidden=hidden, generator=g)
    train(rbm, x, epochs=10, lr=0.05, method="pcd", batch_size=20, generator=g, progress=False)
    return rbm, x


def test_ais_matches_exact_log_z_of_a_trained_rbm():
    rbm, x = _trained_rbm(12)
    exact = exact_log_partition(rbm)
    est = ais_log_partition(rbm, n_runs=100, betas=torch.linspace(0, 1, 3001), data=x,
                            generator=torch.Generator().manual_seed(0))
    assert abs(est.log_z - exact) < 0.5
    assert est.lower <= exact <= est.upper
    assert est.std < 0.1 and est.log_weights.shape == (100,)


def test_ais_with_relu_hidden_units(make_rbm):
    rbm = make_rbm(8, 3, hidden="relu", scale=0.3, dtype=torch.float32)
    est = ais_log_partition(rbm, n_runs=100, betas=torch.linspace(0, 1, 1001), base="uniform",
                            generator=torch.Generator().manual_seed(0))
    assert est.log_z == pytest.approx(exact_log_partition(rbm), abs=0.1)


def test_ais_base_rate_model_alone_is_exact():
    """An RBM with no weights is its own base-rate model: every AIS weight is 1."""
    x = torch.bernoulli(torch.full((50, 6), 0.3), generator=torch.Generator().manual_seed(0))
    rbm = RBM.from_data(x, 4)
    with torch.no_grad():
        rbm.weight.zero_()
    est = ais_log_partition(rbm, n_runs=10, betas=torch.linspace(0, 1, 20), data=x)
    assert est.log_z == pytest.approx(exact_log_partition(rbm), abs=1e-5) and est.std < 1e-6


def test_ais_needs_bernoulli_visibles():
    with pytest.raises(ValueError, match="AIS here needs Bernoulli visible units"):
        ais_log_partition(RBM(3, 2, visible="gaussian"), base="uniform")


def test_ais_base_from_data_needs_data():
    with pytest.raises(ValueError, match="base='data' needs data="):
        ais_log_partition(RBM(3, 2))


def test_ais_unknown_base():
    with pytest.raises(ValueError, match="base must be 'data' or 'uniform'"):
        ais_log_partition(RBM(3, 2), base="prior")


def test_ais_betas_must_run_from_zero_to_one():
    with pytest.raises(ValueError, match="betas must increase strictly from 0 to 1"):
        ais_log_partition(RBM(3, 2), base="uniform", betas=torch.linspace(0.1, 1, 10))


def test_ais_needs_two_runs():
    with pytest.raises(ValueError, match="n_runs must be an int >= 2"):
        ais_log_partition(RBM(3, 2), base="uniform", n_runs=1)


def test_pseudo_likelihood_needs_binary_visibles():
    with pytest.raises(ValueError, match="needs binary"):
        pseudo_likelihood(RBM(3, 2, visible="gaussian"), torch.zeros(2, 3))


def test_hidden_free_energy_sums_out_the_visible_layer(make_rbm):
    from neuralsmith.rbm.partition import hidden_free_energy

    rbm = make_rbm(6, 3)
    h = binary_states(0, 8, 3)
    v = binary_states(0, 64, 6)
    energies = torch.stack([rbm.energy(v, hh.expand(64, -1)) for hh in h])  # (8, 64)
    assert torch.allclose(hidden_free_energy(rbm, h), -torch.logsumexp(-energies, 1))
