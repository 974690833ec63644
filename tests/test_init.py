"""Initializers: distributions (KS tests against the formula), parity with torch.nn.init,
orthogonality, fans, the identity constraint, LSUV, apply() and every refused argument."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from neuralsmith import init

P_MIN = 1e-3  # a KS p-value below this (with a fixed generator) means the law is wrong


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def draws(fn, shape=(256, 384), seed=0, **kwargs):
    return fn(torch.empty(*shape, dtype=torch.float64), **kwargs, generator=gen(seed)).flatten().numpy()


def ks_p(sample, cdf) -> float:
    return stats.kstest(sample, cdf).pvalue


# --- distributions against their formulas ---------------------------------------------------

FAN_IN, FAN_OUT = 384, 256  # of a (256, 384) weight


@pytest.mark.parametrize("fn, kwargs, law", [
    (init.glorot_uniform_, {}, stats.uniform(-math.sqrt(6 / 640), 2 * math.sqrt(6 / 640))),
    (init.glorot_uniform_, {"gain": 2.0}, stats.uniform(-2 * math.sqrt(6 / 640), 4 * math.sqrt(6 / 640))),
    (init.glorot_normal_, {}, stats.norm(0, math.sqrt(2 / 640))),
    (init.he_uniform_, {}, stats.uniform(-math.sqrt(6 / FAN_IN), 2 * math.sqrt(6 / FAN_IN))),
    (init.he_normal_, {}, stats.norm(0, math.sqrt(2 / FAN_IN))),
    (init.he_normal_, {"mode": "fan_out"}, stats.norm(0, math.sqrt(2 / FAN_OUT))),
    (init.he_normal_, {"nonlinearity": "tanh"}, stats.norm(0, 5 / 3 / math.sqrt(FAN_IN))),
    (init.lecun_uniform_, {}, stats.uniform(-math.sqrt(3 / FAN_IN), 2 * math.sqrt(3 / FAN_IN))),
    (init.lecun_normal_, {}, stats.norm(0, 1 / math.sqrt(FAN_IN))),
    (init.symmetric_uniform_, {"a": 0.3}, stats.uniform(-0.3, 0.6)),
    (init.gaussian_, {"std": 0.01}, stats.norm(0, 0.01)),
])
def test_preset_follows_its_formula(fn, kwargs, law):
    assert ks_p(draws(fn, **kwargs), law.cdf) > P_MIN


@pytest.mark.parametrize("mode, n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", 320)])
@pytest.mark.parametrize("distribution", ["uniform", "normal", "truncated_normal"])
def test_variance_scaling_law(mode, n, distribution):
    std = math.sqrt(3.0 / n)
    sample = draws(init.variance_scaling_, scale=3.0, mode=mode, distribution=distribution)
    sigma = std / 0.87962566103423978  # truncated normal: the kept values have std ``std``
    law = {"uniform": stats.uniform(-math.sqrt(3) * std, 2 * math.sqrt(3) * std),
           "normal": stats.norm(0, std),
           "truncated_normal": stats.truncnorm(-2, 2, scale=sigma)}[distribution]
    assert ks_p(sample, law.cdf) > P_MIN
    assert sample.std() == pytest.approx(std, rel=0.02)


def test_truncated_normal_stays_within_two_sigma():
    sample = draws(init.variance_scaling_, scale=1.0, distribution="truncated_normal")
    sigma = 1 / math.sqrt(FAN_IN) / 0.87962566103423978
    assert abs(sample).max() <= 2 * sigma + 1e-12


def test_sparse_values_are_gaussian_and_counted():
    w = init.sparse_martens_(torch.empty(200, 100, dtype=torch.float64), 15, std=0.5, generator=gen())
    assert ((w != 0).sum(dim=1) == 15).all()
    assert ks_p(w[w != 0].numpy(), stats.norm(0, 0.5).cdf) > P_MIN


def test_sparse_positions_differ_between_units():
    w = init.sparse_martens_(torch.empty(50, 100), 10, generator=gen())
    assert len({tuple(row.nonzero().flatten().tolist()) for row in w}) > 45


# --- parity with torch.nn.init ---------------------------------------------------------------


@pytest.mark.parametrize("ours, theirs", [
    (lambda t, g: init.glorot_uniform_(t, 1.5, generator=g), lambda t, g: nn.init.xavier_uniform_(t, 1.5, g)),
    (lambda t, g: init.glorot_normal_(t, generator=g), lambda t, g: nn.init.xavier_normal_(t, generator=g)),
    (lambda t, g: init.he_uniform_(t, generator=g),
     lambda t, g: nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=g)),
    (lambda t, g: init.he_normal_(t, mode="fan_out", generator=g),
     lambda t, g: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g)),
    (lambda t, g: init.orthogonal_(t, 2.0, generator=g), lambda t, g: nn.init.orthogonal_(t, 2.0, g)),
])
def test_same_statistics_as_torch(ours, theirs):
    a = ours(torch.empty(128, 16, 3, 3), gen(1)).flatten().numpy()
    b = theirs(torch.empty(128, 16, 3, 3), gen(2)).flatten().numpy()
    assert stats.ks_2samp(a, b).pvalue > P_MIN
    assert a.std() == pytest.approx(b.std(), rel=0.03)


@pytest.mark.parametrize("name", ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"])
def test_gain_matches_torch(name):
    assert init.calculate_gain(name) == pytest.approx(nn.init.calculate_gain(name, 0.01))


# --- orthogonal, fans, identity ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3), (6, 2, 3, 3)])
def test_orthogonal_rows_or_columns(shape):
    w = init.orthogonal_(torch.empty(*shape, dtype=torch.float64), generator=gen()).reshape(shape[0], -1)
    small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    assert torch.linalg.matrix_norm(small - torch.eye(small.shape[0], dtype=torch.float64)) < 1e-5


def test_orthogonal_gain_scales_singular_values():
    w = init.orthogonal_(torch.empty(5, 8, dtype=torch.float64), gain=3.0, generator=gen())
    assert torch.allclose(torch.linalg.svdvals(w), torch.full((5,), 3.0, dtype=torch.float64))


def test_fans_of_linear_and_conv():
    assert init.fans(nn.Linear(20, 30).weight) == (20, 30)
    assert init.fans(nn.Conv1d(4, 6, 5).weight) == (20, 30)
    assert init.fans(nn.Conv2d(3, 8, (5, 3)).weight) == (45, 120)


def test_identity_fills_scaled_identity():
    assert torch.equal(init.identity_(torch.randn(3, 3), 0.5), 0.5 * torch.eye(3))


def test_same_generator_same_weights():
    a = init.he_uniform_(torch.empty(10, 10), generator=gen(7))
    b = init.he_uniform_(torch.empty(10, 10), generator=gen(7))
    assert torch.equal(a, b)


def test_float64_and_keyword_call():
    w = init.variance_scaling_(tensor=torch.empty(8, 8, dtype=torch.float64), scale=1.0, mode="fan_avg",
                               distribution="normal", generator=gen())
    assert w.dtype == torch.float64 and w.std() > 0


def test_zero_size_tensor_is_left_alone():
    assert init.glorot_uniform_(torch.empty(0, 5)).shape == (0, 5)


def test_works_on_parameters_that_require_grad():
    layer = nn.Linear(4, 3)
    init.orthogonal_(layer.weight, generator=gen())
    assert layer.weight.requires_grad and layer.weight.grad is None


# --- the identity constraint -----------------------------------------------------------------


def test_hard_identity_constraint_stays_within_radius_while_training():
    rnn = init.constrain_identity(init.apply(nn.RNN(3, 6), "identity", generator=gen()), radius=0.05)
    opt = torch.optim.SGD(rnn.parameters(), lr=1.0)
    for _ in range(5):
        out, _ = rnn(torch.randn(7, 4, 3, generator=gen()))
        opt.zero_grad()
        out.pow(2).sum().backward()
        opt.step()
    deviation = rnn.weight_hh_l0 - torch.eye(6)
    assert 0 < torch.linalg.matrix_norm(deviation) <= 0.05 + 1e-6


def test_hard_identity_constraint_covers_every_gate_block():
    lstm = init.constrain_identity(nn.LSTM(3, 4), scale=0.9, radius=0.01)
    for block in lstm.weight_hh_l0.chunk(4):
        assert torch.linalg.matrix_norm(block - 0.9 * torch.eye(4)) <= 0.01 + 1e-6


def test_soft_identity_penalty_value_and_gradient():
    w = torch.eye(3).requires_grad_()
    assert init.identity_penalty(w).item() == 0.0
    w2 = (torch.eye(3) + 0.1).requires_grad_()
    penalty = init.identity_penalty(w2, strength=2.0)
    penalty.backward()
    assert penalty.item() == pytest.approx(2.0 * 9 * 0.01)
    assert torch.allclose(w2.grad, torch.full((3, 3), 2.0 * 2 * 0.1))


def test_soft_identity_penalty_of_a_module_sums_recurrent_weights():
    model = nn.Sequential(init.apply(nn.GRU(3, 4), "identity", generator=gen()))
    assert init.identity_penalty(model).item() == 0.0


# --- apply() ------------------------------------------------------------------------------


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3)
        self.rnn = nn.RNN(4, 5)
        self.gru = nn.GRU(5, 5)
        self.lstm = nn.LSTM(5, 6, num_layers=2)
        self.out = nn.Linear(6, 3)


@pytest.mark.parametrize("scheme", sorted(set(init.SCHEMES) - {"lsuv"}))
def test_apply_every_scheme(scheme):
    options = {"uniform": {"a": 0.1}, "normal": {"std": 0.1}, "variance_scaling": {"scale": 1.0},
               "sparse": {"n_nonzero": 2}}.get(scheme, {})
    model = init.apply(Mixed(), scheme, generator=gen(), **options)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if scheme != "default":
        assert all(p.abs().sum().item() == 0.0 for n, p in model.named_parameters() if "bias" in n)


def test_apply_identity_fills_each_gate_block():
    model = init.apply(Mixed(), "identity", scale=0.5, generator=gen())
    assert torch.equal(model.rnn.weight_hh_l0, 0.5 * torch.eye(5))
    for block in model.lstm.weight_hh_l1.chunk(4):
        assert torch.equal(block, 0.5 * torch.eye(6))
    assert model.gru.weight_ih_l0.std().item() == pytest.approx(1 / math.sqrt(5), rel=0.3)  # N(0, 1/fan_in)


def test_apply_orthogonal_is_orthogonal_per_gate():
    model = init.apply(Mixed(), "orthogonal", generator=gen())
    for block in model.lstm.weight_hh_l0.detach().double().chunk(4):
        assert torch.allclose(block @ block.T, torch.eye(6, dtype=torch.float64), atol=1e-5)


def test_apply_bias_value_when_told():
    model = init.apply(nn.Linear(3, 2), "glorot_uniform", bias=0.1, generator=gen())
    assert torch.equal(model.bias, torch.full((2,), 0.1))


def test_apply_default_reproducible_and_leaves_global_rng():
    a, b = Mixed(), Mixed()
    state = torch.random.get_rng_state()
    init.apply(a, "default", generator=gen(3))
    init.apply(b, "default", generator=gen(3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(state, torch.random.get_rng_state())


def test_schemes_registry_names_and_docs():
    for name, scheme in init.SCHEMES.items():
        assert scheme.formula and scheme.paper and name == scheme.name
    assert {"glorot_uniform", "he_normal", "orthogonal", "identity", "sparse", "lsuv", "default"} <= set(
        init.SCHEMES)


# --- LSUV -------------------------------------------------------------------------------


def output_variances(model, batch):
    seen = {}

    def hook(module, args, output):
        seen.setdefault(module, output.var().item())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        model(batch)
    for h in hooks:
        h.remove()
    return list(seen.values())


def test_lsuv_mlp_unit_variance():
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 5))
    x = torch.rand(128, 20, generator=gen())
    init.lsuv_(net, x, tol=0.02, generator=gen())
    assert all(abs(v - 1) < 0.02 for v in output_variances(net, x))


def test_lsuv_cnn_unit_variance():
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(16 * 4 * 4, 10))
    x = torch.rand(64, 1, 8, 8, generator=gen())
    init.lsuv_(net, x, tol=0.02, generator=gen())
    assert len(output_variances(net, x)) == 3
    assert all(abs(v - 1) < 0.02 for v in output_variances(net, x))


class Recurrent(nn.Module):
    def __init__(self, cls):
        super().__init__()
        self.rnn = cls(6, 16, batch_first=True)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(self.rnn(x)[0][:, -1])


def rnn_preactivation_variance(rnn: nn.RNN, x: torch.Tensor) -> float:
    h, pre = torch.zeros(x.shape[0], rnn.hidden_size), []
    for t in range(x.shape[1]):  # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), step by step
        a = x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        pre.append(a)
        h = torch.tanh(a)
    return torch.stack(pre).var().item()


def test_lsuv_rnn_unit_variance():
    net = Recurrent(nn.RNN)
    x = torch.randn(32, 10, 6, generator=gen())
    init.lsuv_(net, x, tol=0.02, generator=gen())
    with torch.no_grad():
        assert abs(rnn_preactivation_variance(net.rnn, x) - 1) < 0.02
        assert abs(net(x).var().item() - 1) < 0.02


@pytest.mark.parametrize("cls", [nn.GRU, nn.LSTM])
def test_lsuv_gated_recurrent_layers(cls):
    net = Recurrent(cls)
    x = torch.randn(32, 10, 6, generator=gen())
    init.lsuv_(net, x, generator=gen())
    with torch.no_grad():
        assert abs(net(x).var().item() - 1) < 0.02


# --- every refused argument, one test each --------------------------------------------------


def test_refuses_1d_tensor_for_fan_based_scheme():
    with pytest.raises(ValueError, match="2 or more dims.*bias"):
        init.glorot_uniform_(torch.empty(5))


def test_refuses_unknown_mode():
    with pytest.raises(ValueError, match="mode must be 'fan_in', 'fan_out' or 'fan_avg'; got 'fanin'"):
        init.he_normal_(torch.empty(3, 3), mode="fanin")


def test_refuses_unknown_distribution():
    with pytest.raises(ValueError, match="distribution must be 'uniform', 'normal' or 'truncated_normal'"):
        init.variance_scaling_(torch.empty(3, 3), 1.0, distribution="gaussian")


def test_refuses_unknown_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity must be .*'relu'.*got 'rectifier'"):
        init.he_uniform_(torch.empty(3, 3), nonlinearity="rectifier")


def test_refuses_non_square_identity():
    with pytest.raises(ValueError, match="square 2-D matrix.*orthogonal_"):
        init.identity_(torch.empty(3, 4))


def test_refuses_non_positive_scale():
    with pytest.raises(ValueError, match="scale must be > 0"):
        init.variance_scaling_(torch.empty(3, 3), 0.0)


def test_refuses_negative_bound():
    with pytest.raises(ValueError, match="must be >= 0"):
        init.symmetric_uniform_(torch.empty(3), -1.0)


def test_refuses_negative_std():
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.gaussian_(torch.empty(3), -0.1)


def test_refuses_1d_orthogonal():
    with pytest.raises(ValueError, match="2 or more dims"):
        init.orthogonal_(torch.empty(4))


def test_refuses_more_nonzero_than_fan_in():
    with pytest.raises(ValueError, match="n_nonzero must be between 1 and fan_in = 10"):
        init.sparse_martens_(torch.empty(4, 10), 15)


def test_refuses_unknown_scheme():
    with pytest.raises(ValueError, match="unknown init scheme 'xavier'.*init list"):
        init.apply(nn.Linear(2, 2), "xavier")


def test_refuses_unknown_scheme_option():
    with pytest.raises(ValueError, match="'glorot_uniform' takes the options \\['gain'\\]; got unknown \\['std'\\]"):
        init.apply(nn.Linear(2, 2), "glorot_uniform", std=0.1)


def test_refuses_identity_constraint_on_input_weight():
    with pytest.raises(ValueError, match="Constrain weight_hh"):
        init.constrain_identity(nn.RNN(3, 4), "weight_ih_l0")


def test_refuses_identity_constraint_on_missing_weight():
    with pytest.raises(ValueError, match="no weight named 'weight_hh_l5'"):
        init.constrain_identity(nn.RNN(3, 4), "weight_hh_l5")


def test_refuses_non_positive_radius():
    with pytest.raises(ValueError, match="radius must be > 0"):
        init.IdentityConstraint(radius=0.0)


def test_refuses_identity_penalty_without_rnn():
    with pytest.raises(ValueError, match="pass the recurrent weight tensor itself"):
        init.identity_penalty(nn.Linear(3, 3))


def test_refuses_lsuv_on_stacked_rnn():
    with pytest.raises(ValueError, match="num_layers=1"):
        init.lsuv_(nn.LSTM(3, 4, num_layers=2), torch.randn(5, 2, 3))


def test_refuses_lsuv_non_positive_tol():
    with pytest.raises(ValueError, match="tol must be > 0"):
        init.lsuv_(nn.Linear(3, 3), torch.randn(4, 3), tol=0.0)


def test_refuses_lsuv_bias_option():
    with pytest.raises(ValueError, match="drop bias="):
        init.apply(nn.Linear(3, 3), "lsuv", batch=torch.randn(4, 3), bias=0.1)


def test_refuses_missing_scheme_option():
    with pytest.raises(ValueError, match="'normal' needs the option\\(s\\) \\['std'\\].*std=..."):
        init.apply(nn.Linear(2, 2), "normal")
