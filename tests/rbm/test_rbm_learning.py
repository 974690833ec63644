"""Learning: CD statistics against autograd and exact gradients, resume, divergence, settings."""

import pytest
import torch

from neuralsmith import checkpoint
from neuralsmith.rbm import RBM, Settings, train
from neuralsmith.rbm.learning import Block, CDUpdater
from neuralsmith.rbm.partition import binary_states

NAMES = ("weight", "visible_bias", "hidden_bias")


def _params(rbm):
    return {k: v.detach().clone() for k, v in rbm.named_parameters()}


def _one_update(rbm, v0, vk, **settings):
    """Apply the CD update for data v0 and model samples vk; return the parameter deltas."""
    s = Settings(epochs=1, **{"lr": 1.0, "momentum": 0.0, "weight_decay": 0.0, **settings})
    trainer = CDUpdater(rbm, v0, None, s, torch.Generator())
    before = _params(rbm)
    std = rbm.visible_std
    with torch.no_grad():
        model, data = (Block(v, rbm.visible_units.stat(v, std), rbm.hidden_probs(v), a)
                       for v, a in ((vk, -1.0 / len(vk)), (v0, 1.0 / len(v0))))
        trainer.update(model, data)
    return {k: v.detach() - before[k] for k, v in rbm.named_parameters()}


def _autograd_ascent(rbm, v0, vk):
    """-d/dtheta [mean F(v0) - mean F(vk)]: the direction CD moves the parameters."""
    rbm.zero_grad()
    (rbm.free_energy(v0).mean() - rbm.free_energy(vk).mean()).backward()
    return {k: -p.grad.clone() for k, p in rbm.named_parameters()}


@pytest.mark.parametrize("kind", [dict(), dict(visible="gaussian", learn_std=True), dict(hidden="relu")])
def test_statistics_equal_autograd_of_free_energy_difference(make_rbm, kind):
    rbm = make_rbm(5, 4, scale=0.5, **kind)
    if kind.get("learn_std"):
        with torch.no_grad():
            rbm.visible_log_std.copy_(torch.linspace(-0.3, 0.3, 5))
    g = torch.Generator().manual_seed(1)
    draw = torch.randn if kind.get("visible") else lambda *s, generator: torch.randint(0, 2, s, generator=generator)
    v0 = draw(7, 5, generator=g).double()
    vk = draw(9, 5, generator=g).double()
    want = _autograd_ascent(rbm, v0, vk)
    got = _one_update(rbm, v0, vk)
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-10), name


@pytest.mark.parametrize("method,momentum", [("pcd", 0.9), ("fpcd", 0.0), ("fpcd", 0.5)])
def test_first_update_is_lr_times_gradient_on_every_path(make_rbm, method, momentum):
    rbm = make_rbm(5, 4, scale=0.5)
    v0 = binary_states(3, 6, 5)
    vk = binary_states(11, 4, 5)
    want = _autograd_ascent(rbm, v0, vk)
    want["weight"] -= 0.01 * rbm.weight.detach()  # weight decay on the weights only
    got = _one_update(rbm, v0, vk, lr=0.3, method=method, momentum=momentum, weight_decay=0.01)
    for name in NAMES:
        assert torch.allclose(got[name], 0.3 * want[name], atol=1e-10), name


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_heavy_ball_weights_follow_the_velocity_form_over_many_updates(make_rbm, schedule):
    """W_{t+1} = (1 + mu - lr_t lam) W_t - mu W_{t-1} + lr_t G_t is the velocity form, step by
    step, with lr_t = lr (1 - t / 6) when it decays linearly over six epochs of one update."""
    rbm = make_rbm(5, 4, scale=0.5)
    g = torch.Generator().manual_seed(3)
    mu, lr, lam = 0.9, 0.2, 0.01
    settings = Settings(epochs=6, lr=lr, momentum=mu, weight_decay=lam, schedule=schedule)
    trainer = CDUpdater(rbm, binary_states(0, 6, 5), None, settings, torch.Generator())
    w, vel = rbm.weight.detach().clone(), torch.zeros_like(rbm.weight)
    for t in range(6):
        trainer.epoch = t
        lr_t = lr * (1 - t / 6) if schedule == "linear" else lr
        v0 = torch.randint(0, 2, (7, 5), generator=g).double()
        vk = torch.randint(0, 2, (9, 5), generator=g).double()
        grad = _autograd_ascent(rbm, v0, vk)["weight"]
        vel = mu * vel + lr_t * (grad - lam * w)
        w = w + vel
        with torch.no_grad():
            trainer.update(*(Block(v, v, rbm.hidden_probs(v), a)
                              for v, a in ((vk, -1.0 / len(vk)), (v0, 1.0 / len(v0)))))
        assert torch.allclose(rbm.weight, w, atol=1e-12)
    assert torch.allclose(trainer.tensors()["previous.weight"], w - vel, atol=1e-12)


def _exact_gradient(rbm, data):
    """d/dtheta of the average log-likelihood, by enumerating all visible states."""
    rbm.zero_grad()
    states = binary_states(0, 2**rbm.n_visible, rbm.n_visible)
    log_z = torch.logsumexp(-rbm.free_energy(states), 0)
    (-rbm.free_energy(data).mean() - log_z).backward()
    return {k: p.grad.clone() for k, p in rbm.named_parameters()}


def test_long_cd_chains_give_the_exact_gradient(make_rbm):
    rbm = make_rbm(4, 3, scale=0.5)
    data = binary_states(0, 6, 4)
    want = _exact_gradient(rbm, data)
    x = data.repeat(2000, 1)  # 12 000 chains, one update
    trainer = CDUpdater(rbm, x, None, Settings(epochs=1, batch_size=len(x), lr=1.0, k=50,
                                               momentum=0.0, weight_decay=0.0),
                        torch.Generator().manual_seed(0))
    before = _params(rbm)
    with torch.no_grad():
        trainer.step(x)
    for name in NAMES:
        got = rbm.get_parameter(name).detach() - before[name]
        assert torch.allclose(got, want[name], atol=0.03), name


@pytest.mark.parametrize("kind", [dict(), dict(visible="gaussian"), dict(hidden="relu")])
def test_cd_joint_block_is_the_difference_of_the_two_phases(make_rbm, kind):
    rbm = make_rbm(5, 4, scale=0.5, **kind)
    x = torch.rand(7, 5, generator=torch.Generator().manual_seed(2)).double()
    trainer = CDUpdater(rbm, x, None, Settings(epochs=1, k=2), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for rows in (x, x[:3]):  # a short last batch reuses the buffers
            model, data, joint = trainer.cd_phases(rows)
            want = data.p.t() @ data.t / len(rows) - model.p.t() @ model.t / len(model.v)
            assert torch.allclose(joint.a * joint.p.t() @ joint.t, want, atol=1e-12)
            assert torch.equal(data.p, rbm.hidden_units.mean(rows @ rbm.weight.t() + rbm.hidden_bias))


def test_persistent_chains_sample_the_model(make_rbm):
    rbm = make_rbm(4, 3, scale=0.5)
    states = binary_states(0, 16, 4)
    p_v = torch.softmax(-rbm.free_energy(states), 0).detach()
    exact_h = (p_v[:, None] * rbm.hidden_probs(states)).sum(0).detach()
    s = Settings(epochs=1, method="pcd", n_chains=4000, lr=1e-9, momentum=0.0, weight_decay=0.0)
    trainer = CDUpdater(rbm, states, None, s, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for _ in range(30):
            trainer.step(states)
        vk = trainer.gibbs(trainer.chain_h, 1, trainer.sampler())
    assert torch.allclose(rbm.hidden_probs(vk).mean(0), exact_h, atol=0.02)


def _train(data, **kw):
    g = torch.Generator().manual_seed(0)
    rbm = RBM.from_data(data, 6, generator=g)
    kw = {"batch_size": 20, "lr": 0.1, "progress": False, "generator": g, **kw}
    return rbm, train(rbm, data, **kw)


@pytest.mark.parametrize("method", ["cd", "pcd", "fpcd", "pt"])
def test_resume_gives_identical_weights(tmp_path, binary_data, method):
    kw = dict(method=method, momentum=0.5, sparsity_target=0.2, k=2)
    straight, hist = _train(binary_data, epochs=4, **kw)
    _train(binary_data, epochs=2, checkpoint_dir=tmp_path, **kw)
    resumed, hist2 = _train(binary_data, epochs=4, checkpoint_dir=tmp_path, **kw)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(hist.rows) == drop(hist2.rows)


def test_checkpoint_holds_chains_fast_weights_momentum_and_generator(tmp_path, binary_data):
    _train(binary_data, epochs=1, method="fpcd", momentum=0.5, checkpoint_dir=tmp_path)
    tensors, meta = checkpoint.load(tmp_path, "last")
    assert {"chain_h", "fast.weight", "velocity.weight", "generator", "rbm.weight"} <= set(tensors)
    assert meta["epoch"] == 1 and meta["settings"]["method"] == "fpcd"


def test_resume_with_other_settings_is_refused(tmp_path, binary_data):
    _train(binary_data, epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"trained with lr=0.1 \(now 0.2\)"):
        _train(binary_data, epochs=2, lr=0.2, checkpoint_dir=tmp_path)


def test_diverging_run_stops_and_keeps_last_good_state():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g)
    def run(epochs):
        rbm = RBM(16, 8, visible="gaussian", generator=torch.Generator().manual_seed(1))
        return rbm, train(rbm, x, epochs=epochs, lr=10.0, batch_size=20, progress=False,
                          generator=torch.Generator().manual_seed(2))
    rbm, hist = run(10)
    assert hist.diverged and len(hist) < 10
    assert all(torch.isfinite(p).all() for p in rbm.parameters())
    good, _ = run(len(hist))
    assert torch.equal(rbm.weight, good.weight)


def test_fast_pcd_with_vanishing_fast_rate_is_pcd(binary_data):
    pcd, _ = _train(binary_data, epochs=2, method="pcd", momentum=0.0)
    fpcd, _ = _train(binary_data, epochs=2, method="fpcd", momentum=0.0, fast_lr=1e-30)
    assert torch.allclose(pcd.weight, fpcd.weight, atol=1e-5)


@pytest.mark.parametrize("method", ["cd", "pcd", "fpcd"])
def test_training_raises_pseudo_likelihood(binary_data, method):
    # the first epochs sit near the start's -7.6 nats (their noise is +-0.1); 40 epochs reach ~-6
    _, hist = _train(binary_data, epochs=40, method=method)
    pl = hist.column("pseudo_likelihood")
    assert pl[-1] > pl[0] + 0.5 and not hist.diverged


def test_gaussian_visible_rbm_learns_standardized_data():
    from neuralsmith import data

    x = data.load("digits").x_train
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-3)  # standardized, std 1 as the units assume
    g = torch.Generator().manual_seed(0)
    rbm = RBM.from_data(x, 32, visible="gaussian", generator=g)
    hist = train(rbm, x, epochs=6, lr=0.02, batch_size=50, generator=g, progress=False)
    rec = hist.column("reconstruction_error")
    assert rec[-1] < 0.8 * rec[0] and not hist.diverged
    assert all(torch.isfinite(p).all() for p in rbm.parameters())


def test_gaussian_visible_rbm_with_learned_std_stays_finite():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g) * torch.linspace(0.5, 2, 8)
    rbm = RBM.from_data(x, 6, visible="gaussian", learn_std=True, generator=g)
    hist = train(rbm, x, epochs=5, lr=0.005, batch_size=30, generator=g, progress=False)
    assert not hist.diverged and torch.isfinite(rbm.visible_log_std).all()
    assert not torch.equal(rbm.visible_log_std.detach(), torch.zeros(8))


def test_relu_hidden_rbm_learns():
    from neuralsmith import data

    x = data.load("digits", binarize="threshold").x_train
    g = torch.Generator().manual_seed(0)
    rbm = RBM.from_data(x, 16, hidden="relu", generator=g)
    hist = train(rbm, x, epochs=5, lr=0.05, batch_size=20, generator=g, progress=False)
    rec = hist.column("reconstruction_error")
    assert rec[-1] < 0.8 * rec[0] and not hist.diverged


def test_sparsity_target_lowers_hidden_activity(binary_data):
    plain, _ = _train(binary_data, epochs=5)
    sparse, _ = _train(binary_data, epochs=5, sparsity_target=0.05, sparsity_cost=1.0)
    assert sparse.hidden_probs(binary_data).mean() < plain.hidden_probs(binary_data).mean()


def test_free_energy_gap_reported_with_validation_data(binary_data):
    _, hist = _train(binary_data[:150], epochs=2, x_valid=binary_data[150:])
    assert isinstance(hist[-1]["free_energy_gap"], float)


def test_callback_can_stop_training(binary_data):
    seen = []
    _, hist = _train(binary_data, epochs=5, callbacks=[lambda row: seen.append(row) or row["epoch"] == 2])
    assert len(hist) == 2 and hist.stopped_early and [r["epoch"] for r in seen] == [1, 2]


def test_progress_bar_runs(binary_data):
    _, hist = _train(binary_data, epochs=1, progress=True)
    assert len(hist) == 1


# --- one named test per bad input ------------------------------------------------------------


@pytest.mark.parametrize("kw,message", [
    (dict(epochs=0), r"epochs must be >= 1 \(passes over the data\); got 0"),
    (dict(batch_size=0), r"batch_size must be >= 1"),
    (dict(k=0), r"k must be >= 1 \(Gibbs steps per update\); got 0"),
    (dict(lr=0.0), r"lr must be a positive finite number"),
    (dict(lr=float("nan")), r"lr must be a positive finite number"),
    (dict(method="sgd"), r"method must be one of cd, pcd, fpcd, pt; got 'sgd'"),
    (dict(n_chains=10), r"n_chains applies to method='pcd', 'fpcd' or 'pt'"),
    (dict(method="pcd", n_chains=0), r"n_chains must be >= 1"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
    (dict(weight_decay=-1e-4), r"weight_decay must be >= 0"),
    (dict(sparsity_target=1.5), r"sparsity_target must be a fraction in \(0, 1\)"),
    (dict(sparsity_cost=-1.0), r"sparsity_cost must be >= 0"),
    (dict(fast_lr=0.1), r"fast_lr applies to method='fpcd'"),
    (dict(monitor_size=0), r"monitor_size must be >= 1"),
    (dict(schedule="step"), r"schedule must be one of constant, linear, cosine; got 'step'"),
    (dict(n_temperatures=4), r"n_temperatures applies to method='pt'"),
    (dict(method="pt", n_temperatures=1), r"n_temperatures must be >= 2"),
    (dict(method="pt", beta_min=1.0), r"beta_min must be in \[0, 1\) for linear spacing"),
    (dict(method="pt", temperature_spacing="geometric", beta_min=0.0), r"beta_min must be in \(0, 1\)"),
    (dict(temperature_spacing="log"), r"spacing must be one of linear, geometric"),
], ids=lambda p: next(iter(p)) if isinstance(p, dict) else "")
def test_bad_setting(binary_data, kw, message):
    with pytest.raises(ValueError, match=message):
        _train(binary_data, **{"epochs": 1, **kw})


def test_data_of_wrong_width(binary_data):
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 16\)"):
        train(RBM(16, 4), binary_data[:, :8], epochs=1, progress=False)


def test_empty_data():
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 16\)"):
        train(RBM(16, 4), torch.zeros(0, 16), epochs=1, progress=False)


def test_bernoulli_data_outside_unit_interval():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] for Bernoulli visible units"):
        train(RBM(4, 2), torch.full((5, 4), 2.0), epochs=1, progress=False)


def test_data_with_nan():
    x = torch.zeros(5, 4)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x holds NaN or inf"):
        train(RBM(4, 2), x, epochs=1, progress=False)


def test_validation_data_of_wrong_width(binary_data):
    with pytest.raises(ValueError, match=r"x_valid must have shape"):
        train(RBM(16, 4), binary_data, x_valid=binary_data[:, :3], epochs=1, progress=False)
