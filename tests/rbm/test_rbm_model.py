"""The RBM: energies, free energies and conditionals against brute force, sklearn and nn.Linear."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.neural_network import BernoulliRBM

from neuralsmith.rbm import RBM, pseudo_likelihood
from neuralsmith.rbm.partition import binary_states


def test_free_energy_is_log_sum_over_hidden_states(make_rbm):
    rbm = make_rbm(3, 2)
    v = binary_states(0, 8, 3)
    h = binary_states(0, 4, 2)
    energies = torch.stack([rbm.energy(v, hh.expand(8, -1)) for hh in h], 1)  # (8, 4)
    assert torch.allclose(rbm.free_energy(v), -torch.logsumexp(-energies, 1))


def test_hidden_probs_match_brute_force_conditional(make_rbm):
    rbm = make_rbm(3, 2)
    v = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    h = binary_states(0, 4, 2)
    p = torch.softmax(-rbm.energy(v.expand(4, -1), h), 0)  # p(h | v) over the 4 states
    assert torch.allclose(rbm.hidden_probs(v)[0], p @ h)


def test_visible_probs_match_brute_force_conditional(make_rbm):
    rbm = make_rbm(3, 2)
    h = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    v = binary_states(0, 8, 3)
    p = torch.softmax(-rbm.energy(v, h.expand(8, -1)), 0)
    assert torch.allclose(rbm.visible_probs(h)[0], p @ v)


def test_gaussian_free_energy_integrates_energy(make_rbm):
    """F(v) for Gaussian visibles, Bernoulli hidden: sum over h of exp(-E) by enumeration."""
    rbm = make_rbm(2, 3, visible="gaussian", learn_std=True)
    with torch.no_grad():
        rbm.visible_log_std.copy_(torch.tensor([0.3, -0.2]))
    v = torch.tensor([[0.5, -1.0], [2.0, 0.1]], dtype=torch.float64)
    h = binary_states(0, 8, 3)
    energies = torch.stack([rbm.energy(v, hh.expand(2, -1)) for hh in h], 1)
    assert torch.allclose(rbm.free_energy(v), -torch.logsumexp(-energies, 1))


def test_gaussian_visible_mean_is_bias_plus_top_down(make_rbm):
    rbm = make_rbm(4, 3, visible="gaussian")
    h = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(rbm.visible_probs(h), rbm.visible_bias + h @ rbm.weight)


def test_weight_copies_into_linear():
    rbm = RBM(6, 4, generator=torch.Generator().manual_seed(0))
    layer = torch.nn.Linear(6, 4)
    with torch.no_grad():
        layer.weight.copy_(rbm.weight)
        layer.bias.copy_(rbm.hidden_bias)
    v = torch.rand(5, 6)
    assert torch.allclose(torch.sigmoid(layer(v)), rbm.hidden_probs(v))


def test_initial_weights_are_normal_001():
    rbm = RBM(200, 100, generator=torch.Generator().manual_seed(0))
    w = rbm.weight.detach().flatten().numpy()
    assert stats.kstest(w, "norm", args=(0, 0.01)).pvalue > 0.01


def test_from_data_sets_logit_base_rates_and_zero_hidden_biases():
    x = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    rbm = RBM.from_data(x, 2)
    p = torch.tensor([0.999, 0.001, 0.5])  # clipped base rates
    assert torch.allclose(rbm.visible_bias, torch.log(p / (1 - p)), atol=1e-4)
    assert torch.equal(rbm.hidden_bias.detach(), torch.zeros(2))


def test_from_data_with_sparsity_target():
    rbm = RBM.from_data(torch.rand(10, 3), 4, sparsity_target=0.1)
    assert torch.allclose(torch.sigmoid(rbm.hidden_bias), torch.full((4,), 0.1))


def test_from_data_gaussian_bias_is_data_mean():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) + 2
    rbm = RBM.from_data(x, 2, visible="gaussian")
    assert torch.allclose(rbm.visible_bias, x.mean(0))


def test_same_weights_as_sklearn_give_same_hidden_probs_and_free_energy(make_rbm):
    rbm = make_rbm(5, 3, scale=0.5)
    sk = BernoulliRBM(n_components=3).fit(np.zeros((2, 5)))  # then overwrite its state
    sk.components_ = rbm.weight.detach().numpy().copy()
    sk.intercept_hidden_ = rbm.hidden_bias.detach().numpy().copy()
    sk.intercept_visible_ = rbm.visible_bias.detach().numpy().copy()
    v = binary_states(0, 32, 5)
    assert np.allclose(sk.transform(v.numpy()), rbm.hidden_probs(v).detach().numpy())
    assert np.allclose(sk._free_energy(v.numpy()), rbm.free_energy(v).detach().numpy())


def test_pseudo_likelihood_matches_sklearn_score_samples(make_rbm):
    rbm = make_rbm(5, 3, scale=0.5)
    sk = BernoulliRBM(n_components=3, random_state=7).fit(np.zeros((2, 5)))
    sk.components_ = rbm.weight.detach().numpy().copy()
    sk.intercept_hidden_ = rbm.hidden_bias.detach().numpy().copy()
    sk.intercept_visible_ = rbm.visible_bias.detach().numpy().copy()
    v = binary_states(0, 32, 5)
    flip = torch.from_numpy(np.random.RandomState(7).randint(0, 5, 32))  # sklearn's draw
    ours = pseudo_likelihood(rbm, v, flip=flip)
    assert np.allclose(sk.score_samples(v.numpy()), ours.numpy())


def test_gibbs_and_sample_are_seeded(make_rbm):
    rbm = make_rbm(6, 4, dtype=torch.float32)
    a = rbm.sample(5, steps=3, generator=torch.Generator().manual_seed(1))
    b = rbm.sample(5, steps=3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (5, 6) and torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}


def test_relu_hidden_free_energy_is_finite_and_probs_nonnegative(make_rbm):
    rbm = make_rbm(5, 4, hidden="relu")
    v = binary_states(0, 32, 5)
    assert torch.isfinite(rbm.free_energy(v)).all() and (rbm.hidden_probs(v) >= 0).all()


def test_zero_visible_units():
    with pytest.raises(ValueError, match="n_visible must be a positive int"):
        RBM(0, 3)


def test_fractional_hidden_units():
    with pytest.raises(ValueError, match="n_hidden must be a positive int"):
        RBM(3, 2.5)


def test_relu_visible_units_rejected():
    with pytest.raises(ValueError, match="visible units must be one of"):
        RBM(3, 2, visible="relu")


def test_learn_std_needs_gaussian_visibles():
    with pytest.raises(ValueError, match="learn_std needs visible='gaussian'"):
        RBM(3, 2, learn_std=True)


def test_wrong_number_of_visible_features():
    with pytest.raises(ValueError, match=r"v must have shape \(batch, 3\)"):
        RBM(3, 2).hidden_probs(torch.zeros(4, 5))


def test_hidden_state_of_wrong_width():
    with pytest.raises(ValueError, match=r"h must have shape \(batch, 2\)"):
        RBM(3, 2).visible_probs(torch.zeros(4, 3))


def test_numpy_input_is_a_type_error():
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        RBM(3, 2).free_energy(np.zeros((1, 3)))


def test_negative_gibbs_steps():
    with pytest.raises(ValueError, match="k must be an int >= 0"):
        RBM(3, 2).gibbs(torch.zeros(1, 3), k=-1)


def test_bad_sparsity_target_at_init():
    with pytest.raises(ValueError, match="sparsity_target must be a fraction"):
        RBM.from_data(torch.rand(4, 3), 2, sparsity_target=1.0)
