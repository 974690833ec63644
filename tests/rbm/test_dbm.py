"""The Deep Boltzmann Machine: exact sums, mean field, sampling, AIS and training, on tiny models."""

import copy
import itertools
import math

import pytest
import torch

from neuralsmith.rbm import RBM, dbm_learning
from neuralsmith.rbm.dbm import DBM, exact_log_partition, load, log_likelihood, log_marginal, save
from neuralsmith.rbm.dbm_ais import ais_log_partition, variational_bound
from neuralsmith.rbm.partition import exact_log_partition as rbm_exact_log_partition


def random_dbm(sizes, seed=0, scale=1.0, visible="bernoulli"):
    """A float64 DBM with strong random weights and biases (so tests can fail)."""
    g = torch.Generator().manual_seed(seed)
    dbm = DBM(sizes, visible=visible, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for p in dbm.parameters():
            p.normal_(0.0, scale, generator=g)
    return dbm


def all_states(sizes):
    """Every binary state of every layer, as a DBM state tuple."""
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=sum(sizes))), dtype=torch.float64)
    return bits.split(list(sizes), 1)


def brute_log_z(dbm):
    with torch.no_grad():
        return float(torch.logsumexp(-dbm.energy(all_states(dbm.sizes)), 0))


@pytest.mark.parametrize("sizes", [[3, 2, 2], [4, 3, 2], [2, 3, 2, 3], [3, 2, 1, 2, 1]])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_log_z_equals_enumerating_every_state(sizes, seed):
    dbm = random_dbm(sizes, seed)
    assert exact_log_partition(dbm) == pytest.approx(brute_log_z(dbm), abs=1e-9)


def test_exact_log_p_of_v_equals_enumerating_every_hidden_state():
    dbm = random_dbm([4, 3, 2, 2], seed=3)
    states = all_states(dbm.sizes)
    with torch.no_grad():
        neg_e = -dbm.energy(states)
    v = torch.tensor([[1.0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    brute = torch.stack([torch.logsumexp(neg_e[(states[0] == row).all(1)], 0) for row in v])
    torch.testing.assert_close(log_marginal(dbm, v), brute)
    log_z = exact_log_partition(dbm)
    assert log_likelihood(dbm, v, log_z) == pytest.approx(float(brute.mean()) - log_z)


def test_one_hidden_layer_is_an_rbm_also_with_gaussian_visibles():
    for visible in ("bernoulli", "gaussian"):
        dbm = random_dbm([3, 4], seed=2, scale=0.5, visible=visible)
        rbm = RBM(3, 4, visible=visible, dtype=torch.float64)
        with torch.no_grad():
            rbm.weight.copy_(dbm.weights[0])
            rbm.visible_bias.copy_(dbm.biases[0])
            rbm.hidden_bias.copy_(dbm.biases[1])
        assert exact_log_partition(dbm) == pytest.approx(rbm_exact_log_partition(rbm), abs=1e-9)


def test_exact_log_z_refuses_a_model_too_large_to_enumerate():
    with pytest.raises(ValueError, match="use neuralsmith.rbm.dbm_ais"):
        exact_log_partition(DBM([30, 30, 30]))


def brute_posterior_marginals(dbm, v):
    """E[h_l | v] for one row v, by enumerating every hidden state."""
    hidden = all_states(dbm.sizes[1:])
    state = (v.expand(len(hidden[0]), -1), *hidden)
    with torch.no_grad():
        p = torch.softmax(-dbm.energy(state), 0)
    return [(p[:, None] * h).sum(0) for h in hidden]


def test_mean_field_is_a_fixed_point_and_its_bound_is_below_log_p():
    dbm = random_dbm([5, 3, 3], seed=4)
    v = torch.tensor([[1.0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.float64)
    mu = dbm.mean_field(v, n_iter=500, tol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(mu[0], torch.sigmoid(dbm.layer_input([v, None, mu[1]], 1)))
        torch.testing.assert_close(mu[1], torch.sigmoid(dbm.layer_input([None, mu[0], None], 2)))
    log_z = exact_log_partition(dbm)
    exact = log_marginal(dbm, v) - log_z
    bound = variational_bound(dbm, v, log_z, n_iter=500, tol=1e-12)
    assert (bound <= exact + 1e-9).all() and (bound < exact - 1e-3).any()  # a gap where h1, h2 couple


def test_mean_field_is_exact_when_the_posterior_factorizes():
    """With W2 = 0 the layers are independent given v: q is the posterior, the bound is log p(v)."""
    dbm = random_dbm([4, 3, 2], seed=5)
    with torch.no_grad():
        dbm.weights[1].zero_()
    v = torch.tensor([[1.0, 0, 1, 1], [0, 1, 0, 0]], dtype=torch.float64)
    mu = dbm.mean_field(v)
    for row, m1, m2 in zip(v, *mu):
        exact = brute_posterior_marginals(dbm, row[None])
        torch.testing.assert_close(m1, exact[0])
        torch.testing.assert_close(m2, exact[1])
    log_z = exact_log_partition(dbm)
    torch.testing.assert_close(variational_bound(dbm, v, log_z), log_marginal(dbm, v) - log_z)


def test_mean_field_starts_from_the_doubled_bottom_up_pass():
    dbm = random_dbm([4, 3, 2, 2], seed=6)
    v = torch.ones(1, 4, dtype=torch.float64)
    with torch.no_grad():
        mu1 = torch.sigmoid(dbm.biases[1] + 2 * v @ dbm.weights[0].t())
        mu3_parts = torch.sigmoid(dbm.biases[2] + 2 * mu1 @ dbm.weights[1].t())
        mu3 = torch.sigmoid(dbm.biases[3] + mu3_parts @ dbm.weights[2].t())
    rec = dbm.recognition(v)
    for got, want in zip(rec, (mu1, mu3_parts, mu3)):
        torch.testing.assert_close(got, want)
    for got, want in zip(dbm.mean_field(v, n_iter=0), rec):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_gibbs_sweeps_sample_the_tempered_distribution(beta):
    """The empirical law of (v, h1, h2) after many sweeps is within TV 0.06 of p^beta."""
    dbm = random_dbm([2, 2, 2], seed=7)
    g = torch.Generator().manual_seed(0)
    state = dbm.init_state(4000, g)
    for _ in range(30):
        state = dbm.gibbs_sweep(state, beta=beta, generator=g)
    code = sum(torch.cat(state, 1)[:, i].long() << i for i in range(6))  # (4000,) state index
    empirical = torch.bincount(code, minlength=64).double() / len(code)
    every = all_states(dbm.sizes)
    with torch.no_grad():
        exact = torch.softmax(-beta * dbm.energy(every), 0)
    index = sum(torch.cat(every, 1)[:, i].long() << i for i in range(6))
    tv = 0.5 * float((empirical[index] - exact).abs().sum())
    assert tv < 0.06


def test_bad_states_and_temperatures_are_refused():
    dbm = DBM([3, 2, 2])
    state = dbm.init_state(2, torch.Generator())
    with pytest.raises(ValueError, match="tuple of 3 tensors"):
        dbm.energy(state[:2])
    with pytest.raises(ValueError, match=r"shape \(n, 2\) for layer 1"):
        dbm.energy((state[0], torch.zeros(2, 3), state[2]))
    with pytest.raises(ValueError, match="beta must be > 0"):
        dbm.gibbs_sweep(state, beta=0.0)
    with pytest.raises(ValueError, match="at least one hidden layer"):
        DBM([3])
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        dbm.init_state(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ais_is_within_its_stated_error_of_the_exact_log_z(seed):
    dbm = random_dbm([6, 4, 3], seed=seed, scale=0.7)
    data = torch.bernoulli(torch.full((50, 6), 0.3), generator=torch.Generator().manual_seed(seed))
    est = ais_log_partition(dbm, n_runs=100, betas=torch.linspace(0, 1, 1000), data=data,
                            generator=torch.Generator().manual_seed(seed))
    exact = exact_log_partition(dbm)
    assert est.lower <= exact <= est.upper
    assert abs(est.log_z - exact) < 4 * est.std + 1e-3


def test_ais_refuses_gaussian_visibles_and_bad_temperatures():
    with pytest.raises(ValueError, match="Bernoulli visible"):
        ais_log_partition(DBM([3, 2, 2], visible="gaussian"), base="uniform")
    with pytest.raises(ValueError, match="betas must increase"):
        ais_log_partition(DBM([3, 2, 2]), base="uniform", betas=torch.tensor([0.0, 0.7]))
    with pytest.raises(ValueError, match="give data="):
        ais_log_partition(DBM([3, 2, 2]))


def test_copies_follow_the_paper():
    assert [dbm_learning.copies(l, 2) for l in range(2)] == [(2, 1), (1, 2)]
    assert [dbm_learning.copies(l, 4) for l in range(4)] == [(2, 1), (1, 1), (1, 1), (1, 2)]


@pytest.fixture
def binary_rows():
    return torch.bernoulli(torch.full((40, 6), 0.3), generator=torch.Generator().manual_seed(0))


def test_greedy_pretraining_trains_every_layer_rbm(binary_rows):
    dbm = DBM([6, 4, 3, 2], generator=torch.Generator().manual_seed(0))
    settings = dbm_learning.Settings(pretrain_epochs=3, epochs=0, batch_size=10)
    g = torch.Generator().manual_seed(1)
    shapes = [tuple(dbm_learning.doubled_rbm(dbm, l, g).weight.shape) for l in range(3)]
    assert shapes == [(4, 12), (3, 4), (4, 3)]  # visible doubled, plain, hidden doubled
    start = [w.detach().clone() for w in dbm.weights]
    histories = dbm_learning.greedy_pretrain(dbm, binary_rows, settings, generator=g, progress=False)
    assert [len(h) for h in histories] == [3, 3, 3]
    assert not any(torch.equal(a, b) for a, b in zip(start, dbm.weights))
    p = binary_rows.mean(0).clamp(1e-3, 1 - 1e-3)  # visible biases from the data (Hinton 2010)
    assert float((dbm.biases[0].detach() - torch.log(p / (1 - p))).abs().max()) < 0.1


def test_tied_copies_stay_equal_under_cd(binary_rows):
    g = torch.Generator().manual_seed(0)
    dbm = DBM([6, 4, 3], generator=g)
    for l in (0, 1):
        rbm = dbm_learning.doubled_rbm(dbm, l, g)
        x = binary_rows if l == 0 else torch.rand(40, 4, generator=g)
        up = dbm_learning.TiedCopies(rbm, x, dbm_learning.Settings(batch_size=10).layer_settings(), g,
                                     dbm_learning.copies(l, 2))
        with torch.no_grad():  # as under loop.fit
            up.run_epoch()
        w = rbm.weight.detach()
        n_out, n_in = dbm.sizes[l + 1], dbm.sizes[l]
        blocks = [w[i * n_out:(i + 1) * n_out, j * n_in:(j + 1) * n_in]
                  for i in range(w.shape[0] // n_out) for j in range(w.shape[1] // n_in)]
        assert len(blocks) == 2 and torch.equal(blocks[0], blocks[1])
        assert float(blocks[0].abs().max()) > 0.01  # and they moved


def test_compose_halves_only_the_middle_weights():
    dbm = DBM([2, 2, 2, 2])
    rbms = [RBM(4, 2), RBM(2, 2), RBM(2, 4)]
    for r in rbms:
        with torch.no_grad():
            r.weight.fill_(1.0)
            r.visible_bias.fill_(2.0)
            r.hidden_bias.fill_(4.0)
    dbm_learning.compose(dbm, rbms)
    assert [float(w.detach()[0, 0]) for w in dbm.weights] == [1.0, 0.5, 1.0]
    assert [float(b.detach()[0]) for b in dbm.biases] == [2.0, 3.0, 3.0, 4.0]


def test_joint_training_resumes_bit_for_bit(binary_rows, tmp_path):
    settings = dbm_learning.Settings(epochs=3, batch_size=10, n_chains=8, k=2, mf_iters=5)

    def trained(folder, epochs_first=None):
        dbm = DBM([6, 4, 3], generator=torch.Generator().manual_seed(0))
        g = torch.Generator().manual_seed(1)
        if epochs_first is not None:  # an interrupted run: fewer epochs, then the rest
            dbm_learning.train_joint(copy.deepcopy(dbm), binary_rows, settings, generator=torch.Generator().manual_seed(1),
                                     checkpoint_dir=folder, progress=False,
                                     callbacks=[lambda row: row["epoch"] >= epochs_first and Killed.now()])
        hist = dbm_learning.train_joint(dbm, binary_rows, settings, generator=g, checkpoint_dir=folder,
                                        progress=False)
        return dbm, hist

    straight, h1 = trained(tmp_path / "a")
    with pytest.raises(Killed):
        trained(tmp_path / "b", epochs_first=1)
    resumed, h2 = trained(tmp_path / "b")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert [r["reconstruction_error"] for r in h1.rows] == [r["reconstruction_error"] for r in h2.rows]
    assert len(h2) == 3


class Killed(BaseException):
    """Stands for kill -9."""

    @classmethod
    def now(cls):
        raise cls


def test_joint_training_improves_the_likelihood_of_a_tiny_model():
    g = torch.Generator().manual_seed(0)
    protos = torch.tensor([[1.0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    x = protos[torch.randint(0, 2, (200,), generator=g)]
    x = torch.where(torch.rand(x.shape, generator=g) < 0.05, 1 - x, x)
    before = log_likelihood(DBM([6, 4, 3]), x, 0.0) - exact_log_partition(DBM([6, 4, 3]))  # 6 fair coins
    for phases in ({"pretrain_epochs": 20, "epochs": 5}, {"pretrain_epochs": 0, "epochs": 60, "lr": 0.1}):
        dbm = DBM([6, 4, 3], generator=torch.Generator().manual_seed(0))
        settings = dbm_learning.Settings(batch_size=20, n_chains=20, **phases)
        dbm_learning.train(dbm, x, settings, generator=g, progress=False)
        after = log_likelihood(dbm, x, exact_log_partition(dbm))
        assert after > before + 1.5, phases  # the data's entropy is about 1.9 nats, 6 coins 4.2


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="n_chains"):
        dbm_learning.Settings(n_chains=0)
    with pytest.raises(ValueError, match="schedule"):
        dbm_learning.Settings(schedule="step")
    with pytest.raises(ValueError, match="lr must be"):
        dbm_learning.Settings(lr=-1.0)
    assert dbm_learning.Settings(epochs=4).lr_at(0) == 0.005


def test_to_mlp_plain_and_augmented():
    dbm = random_dbm([5, 4, 3], seed=8).float()
    x = torch.bernoulli(torch.full((7, 5), 0.5), generator=torch.Generator().manual_seed(0))
    plain = dbm.to_mlp(10)
    with torch.no_grad():
        torch.testing.assert_close(plain[1](plain[0](x)), torch.sigmoid(dbm.layer_input([x, None, None], 1)))
        assert plain(x).shape == (7, 10)
        aug = dbm.to_mlp(10, augment=True)
        q2 = dbm.mean_field(x)[1]
        torch.testing.assert_close(aug[2](aug[1](aug[0](x))), torch.sigmoid(dbm.layer_input([x, None, q2], 1)))
    assert aug(x).shape == (7, 10)
    assert not any(p.requires_grad for p in aug[0].parameters())
    with pytest.raises(ValueError, match="at least 2 hidden layers"):
        DBM([5, 4]).to_mlp(10, augment=True)


def test_save_and_load_round_trip(tmp_path):
    dbm = random_dbm([5, 4, 3], seed=9, visible="gaussian")
    save(dbm, tmp_path, meta={"note": "x"})
    back = load(tmp_path)
    assert back.sizes == [5, 4, 3] and back.visible == "gaussian"
    for a, b in zip(dbm.parameters(), back.parameters()):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing")
