"""Parallel tempering on RBMs small enough to enumerate: swap rule, detailed balance, mixing."""

import math

import pytest
import torch

from neuralsmith.rbm import RBM, train
from neuralsmith.rbm.partition import binary_states
from neuralsmith.rbm.tempering import (BaseRate, ParallelTempering, check_betas, ladder, sample, sample_dbn,
                                       swap_log_acceptance)
from neuralsmith.stack import DBN

F64 = torch.float64


def _joint(rbm):
    """Every (v, h) of a tiny RBM, as rows, and their energies."""
    v = binary_states(0, 2**rbm.n_visible, rbm.n_visible).repeat_interleave(2**rbm.n_hidden, 0)
    h = binary_states(0, 2**rbm.n_hidden, rbm.n_hidden).repeat(2**rbm.n_visible, 1)
    with torch.no_grad():
        return v, h, rbm.energy(v, h)


def _log_p(energy, beta):
    """Exact log p_beta of every joint state: -beta E - log Z(beta), Z by enumeration."""
    return -beta * energy - torch.logsumexp(-beta * energy, 0)


@pytest.fixture
def bimodal():
    """4 visible x 3 hidden: half the mass on v = 0000, half on v = 1111, a wide barrier between."""
    rbm = RBM(4, 3, dtype=F64)
    with torch.no_grad():
        rbm.weight.fill_(4.0)
        rbm.visible_bias.fill_(-6.0)
        rbm.hidden_bias.fill_(-8.0)
    return rbm


def _visible_tv(rbm, v_samples):
    """Total-variation distance between the samples' visible histogram and the exact p(v)."""
    with torch.no_grad():
        states = binary_states(0, 2**rbm.n_visible, rbm.n_visible)
        exact = torch.softmax(-rbm.free_energy(states), 0)
    idx = (v_samples.reshape(-1, rbm.n_visible) * 2 ** torch.arange(rbm.n_visible, dtype=F64)).sum(-1)
    empirical = torch.bincount(idx.long(), minlength=len(exact)).double() / len(idx)
    return 0.5 * float((empirical - exact).abs().sum())


def test_ladders():
    assert ladder(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    geo = ladder(4, "geometric", beta_min=0.001)
    assert torch.allclose(geo[1:] / geo[:-1], torch.full((3,), 10.0, dtype=F64))
    assert ladder(1).tolist() == [1.0] and float(ladder(7, "geometric")[0]) == pytest.approx(0.01)


@pytest.mark.parametrize("bad, message", [
    (dict(n_temperatures=0), r"n_temperatures must be >= 1"),
    (dict(spacing="log"), r"spacing must be one of linear, geometric"),
    (dict(spacing="geometric", beta_min=0.0), r"beta_min must be in \(0, 1\)"),
    (dict(beta_min=1.0), r"beta_min must be in \[0, 1\)"),
])
def test_bad_ladder(bad, message):
    with pytest.raises(ValueError, match=message):
        ladder(**{"n_temperatures": 3, **bad})


@pytest.mark.parametrize("betas", [[0.5, 0.9], [0.0, 0.5, 0.5, 1.0], [1.0, 0.5]])
def test_bad_betas(betas):
    with pytest.raises(ValueError, match="betas must increase strictly"):
        check_betas(betas)


def test_swap_acceptance_is_the_ratio_of_exact_probabilities(make_rbm):
    """log r from energies equals log[p_i(x_j) p_j(x_i) / (p_i(x_i) p_j(x_j))], Z's by enumeration."""
    rbm = make_rbm(4, 3)
    _, _, energy = _joint(rbm)
    b_i, b_j = 0.3, 0.8
    lp_i, lp_j = _log_p(energy, b_i), _log_p(energy, b_j)
    direct = lp_i[None, :] + lp_j[:, None] - lp_i[:, None] - lp_j[None, :]  # [x_i, x_j]
    formula = swap_log_acceptance(torch.tensor(b_i, dtype=F64), torch.tensor(b_j, dtype=F64),
                                  energy[:, None], energy[None, :])
    assert torch.allclose(formula, direct, atol=1e-10)


def test_the_swap_move_satisfies_detailed_balance_exactly(make_rbm):
    """pi(a, b) T((a, b) -> (b, a)) = pi(b, a) T((b, a) -> (a, b)) for every pair of joint states."""
    rbm = make_rbm(4, 3)
    _, _, energy = _joint(rbm)
    b = torch.tensor([0.25, 1.0], dtype=F64)
    pi = _log_p(energy, b[0])[:, None] + _log_p(energy, b[1])[None, :]  # log p_0(a) p_1(b)
    accept = swap_log_acceptance(b[0], b[1], energy[:, None], energy[None, :]).clamp(max=0)
    flow = pi + accept  # log of the probability flow (a, b) -> (b, a)
    assert torch.allclose(flow, flow.t(), atol=1e-10)
    assert float(accept.exp().mean()) < 1.0  # some proposals are refused: the test can fail


def test_swaps_are_accepted_at_the_rate_the_rule_gives(make_rbm):
    """Many copies of one pair of states: the accepted fraction is min(1, r), accepted rows swap."""
    rbm = make_rbm(4, 3)
    v, h, energy = _joint(rbm)
    low = int(energy.argmin())
    high = int((energy - energy[low] - 2.5).abs().argmin())  # E(high) - E(low) near 2.5
    betas = torch.tensor([0.6, 1.0], dtype=F64)
    n = 20000
    pt = ParallelTempering(rbm, n, betas, generator=torch.Generator().manual_seed(0),
                           state=(v[low].expand(n, -1), h[low].expand(n, -1)))
    pt.state = (torch.cat([v[high].expand(n, -1), v[low].expand(n, -1)]),  # hot holds high
                torch.cat([h[high].expand(n, -1), h[low].expand(n, -1)]))
    with torch.no_grad():
        accept = pt.swap(0)[0]
    log_r = float(swap_log_acceptance(betas[0], betas[1], energy[high], energy[low]))
    expected = math.exp(min(0.0, log_r))
    assert 0.05 < expected < 0.95
    assert float(accept.double().mean()) == pytest.approx(expected, abs=0.015)
    n_acc = int(accept.sum())
    assert torch.equal(pt.state_at(-1)[0][accept], v[high].expand(n_acc, -1))
    assert torch.equal(pt.state_at(0)[0][~accept], v[high].expand(n - n_acc, -1))
    assert pt.acceptance().tolist() == [float(accept.double().mean())]


def test_pairs_alternate_even_and_odd(make_rbm):
    pt = ParallelTempering(make_rbm(4, 3), 5, ladder(5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert pt.swap(0).shape == (2, 5) and pt.swap(1).shape == (2, 5)
    assert pt.proposed.tolist() == [5.0, 5.0, 5.0, 5.0]


def test_a_long_pt_chain_matches_the_exact_distribution_and_gibbs_does_not(bimodal):
    """200 chains x 1000 steps from v = 0 on a bimodal RBM.

    The TV bound 0.02 is loose against the sampling noise of 180 000 correlated draws on 16
    states (about 0.005), and far below the 0.47 of a chain stuck in one of the two modes.
    """
    start = (torch.zeros(200, 4, dtype=F64), torch.zeros(200, 3, dtype=F64))
    out = {}
    for method in ("pt", "gibbs"):
        chains = sample(bimodal, 200, steps=1000, method=method, n_temperatures=5, thin=1,
                        generator=torch.Generator().manual_seed(0), state=start)
        out[method] = _visible_tv(bimodal, chains.trace[100:])
    assert out["pt"] < 0.02
    assert out["gibbs"] > 0.3


def test_the_swap_moves_keep_the_tempered_distributions(bimodal):
    """Every replica, not only beta = 1, samples its own p_beta (checked at beta = 0.5)."""
    pt = ParallelTempering(bimodal, 200, ladder(5), generator=torch.Generator().manual_seed(1))
    counts = torch.zeros(2**7, dtype=F64)
    weights = (2 ** torch.arange(7, dtype=F64))
    with torch.no_grad():
        for step in range(600):
            pt.step()
            if step >= 100:
                v, h = pt.state_at(2)
                counts += torch.bincount((torch.cat([v, h], 1) @ weights).long(), minlength=2**7)
    v, h, energy = _joint(bimodal)
    index = (torch.cat([v, h], 1) @ weights).long()
    exact = torch.zeros(2**7, dtype=F64).index_put_((index,), _log_p(energy, 0.5).exp())
    assert 0.5 * float((counts / counts.sum() - exact).abs().sum()) < 0.03


@torch.no_grad()
def test_tempered_sweep_at_beta_zero_is_uniform(bimodal):
    v, h = bimodal.gibbs_sweep(bimodal.initial_state(20000), 0.0, torch.Generator().manual_seed(0))
    assert abs(float(v.mean()) - 0.5) < 0.01 and abs(float(h.mean()) - 0.5) < 0.01


@pytest.mark.parametrize("beta, message", [(1.5, "beta must be in"), (-0.1, "beta must be in")])
def test_bad_beta_in_a_sweep(bimodal, beta, message):
    with pytest.raises(ValueError, match=message):
        bimodal.gibbs_sweep(bimodal.initial_state(3), beta)


def test_tempering_needs_bernoulli_hidden_units_and_gaussian_visibles_need_beta_above_zero():
    relu = RBM(4, 3, hidden="relu")
    relu.gibbs_sweep(relu.initial_state(2), 1.0)  # plain Gibbs is fine
    with pytest.raises(ValueError, match="need Bernoulli hidden units"):
        relu.gibbs_sweep(relu.initial_state(2), 0.5)
    gauss = RBM(4, 3, visible="gaussian")
    gauss.gibbs_sweep(gauss.initial_state(2), torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="no distribution at beta = 0"):
        gauss.gibbs_sweep(gauss.initial_state(2), 0.0)


@torch.no_grad()
def test_gaussian_visibles_tempered_have_variance_over_beta():
    rbm = RBM(3, 2, visible="gaussian", dtype=F64)
    with torch.no_grad():
        rbm.weight.zero_()
    v, _ = rbm.gibbs_sweep(rbm.initial_state(40000), 0.25, torch.Generator().manual_seed(0))
    assert float(v.var()) == pytest.approx(4.0, rel=0.05)


def test_sample_is_seeded_and_gibbs_is_one_temperature(bimodal):
    a = sample(bimodal, 10, steps=20, method="pt", n_temperatures=3, generator=torch.Generator().manual_seed(4))
    b = sample(bimodal, 10, steps=20, method="pt", n_temperatures=3, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a.state, b.state))
    gibbs = sample(bimodal, 10, steps=20, generator=torch.Generator())
    assert gibbs.betas.tolist() == [1.0] and len(gibbs.acceptance) == 0


def test_sample_dbn_runs_pt_in_the_top_rbm_then_goes_down():
    dbn = DBN([6, 5, 4], generator=torch.Generator().manual_seed(0))
    pixels, chains = sample_dbn(dbn, 7, steps=5, method="pt", n_temperatures=3,
                                generator=torch.Generator().manual_seed(0))
    assert pixels.shape == (7, 6) and bool(((pixels > 0) & (pixels < 1)).all())
    assert chains.state[0].shape == (7, 5) and len(chains.acceptance) == 2


def test_pt_training_records_the_hardest_swap_acceptance():
    data = torch.cat([torch.zeros(100, 4, dtype=F64), torch.ones(100, 4, dtype=F64)])
    g = torch.Generator().manual_seed(0)
    rbm = RBM.from_data(data, 3, generator=g, dtype=F64)
    hist = train(rbm, data, epochs=3, batch_size=20, lr=0.05, method="pt", n_temperatures=4,
                 generator=g, progress=False)
    assert 0.0 < hist[-1]["swap_acceptance_min"] <= 1.0


def test_base_rate_tempering_samples_the_ais_family(bimodal):
    """With a base-rate model every replica samples p_beta ~ exp(-beta E + (1 - beta) b_A.v)."""
    base = torch.tensor([2.0, -1.0, 0.5, -2.0], dtype=F64)
    pt = ParallelTempering(BaseRate(bimodal, base), 200, ladder(5),
                           generator=torch.Generator().manual_seed(2))
    weights = 2 ** torch.arange(7, dtype=F64)
    counts = {k: torch.zeros(2**7, dtype=F64) for k in (0, 2, 4)}
    with torch.no_grad():
        for step in range(600):
            pt.step()
            for k in counts if step >= 100 else ():
                v, h = pt.state_at(k)
                counts[k] += torch.bincount((torch.cat([v, h], 1) @ weights).long(), minlength=2**7)
        v, h, energy = _joint(bimodal)
        index = (torch.cat([v, h], 1) @ weights).long()
        for k, beta in zip(counts, (0.0, 0.5, 1.0)):
            log_p = -beta * energy + (1 - beta) * (v @ base)
            exact = torch.zeros(2**7, dtype=F64).index_put_((index,), torch.softmax(log_p, 0))
            assert 0.5 * float((counts[k] / counts[k].sum() - exact).abs().sum()) < 0.03, beta
    assert bool((pt.acceptance() > 0.05).all())


def test_base_rate_needs_bernoulli_visibles():
    with pytest.raises(ValueError, match="needs Bernoulli visible units"):
        BaseRate(RBM(3, 2, visible="gaussian"), torch.zeros(3))


def test_pt_training_from_base_rates_is_seeded(binary_data):
    def fit():
        g = torch.Generator().manual_seed(0)
        rbm = RBM.from_data(binary_data, 6, generator=g)
        train(rbm, binary_data, epochs=2, batch_size=20, method="pt", n_temperatures=3,
              tempering_base="data", generator=g, progress=False)
        return rbm.weight.detach()

    assert torch.equal(fit(), fit())
