"""The classification RBM: p(y|x) against brute force, every statistic against autograd and
exact gradients, training, resume, and one named test per bad input."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from neuralsmith.rbm import ClassRBM, ClassSettings, train_classrbm
from neuralsmith.rbm.classrbm import _negative_phase, cd_gradients, discriminative_gradients, \
    entropy_gradients, objective_gradients

V, H, C = 4, 3, 3
GEN = torch.Generator  # every draw seeded: these tests leave the global RNG alone


def random_model(visible="bernoulli", hidden="bernoulli", seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    m = ClassRBM(V, H, C, visible=visible, hidden=hidden, dtype=torch.float64, generator=g)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return m


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def energy(m, x, y, h):
    """E(y, x, h) of every combination: x (A, V), y (B,), h (D, H) -> (A, B, D)."""
    e = F.one_hot(y, C).double()
    return (-(x @ m.visible_bias)[:, None, None] - (h @ m.hidden_bias)[None, None, :]
            - (e @ m.label_bias)[None, :, None]
            - torch.einsum("dj,jv,av->ad", h, m.weight, x)[:, None, :]
            - torch.einsum("dj,jc,bc->bd", h, m.label_weight, e)[None, :, :])


def exact_log_z(m):
    xs, ys, hs = states(V), torch.arange(C), states(H)
    return torch.logsumexp(-energy(m, xs, ys, hs).flatten(), 0)


def test_p_y_given_x_equals_brute_force_enumeration():
    m, xs = random_model(), states(V)
    joint = torch.logsumexp(-energy(m, xs, torch.arange(C), states(H)), dim=2)  # (16, C)
    brute = torch.softmax(joint, dim=1)
    assert torch.allclose(m.predict_proba(xs), brute, atol=1e-12)
    assert torch.allclose(m.predict_proba(xs).sum(1), torch.ones(len(xs), dtype=torch.float64))


def test_free_energy_sums_the_hidden_units_out():
    m, xs = random_model(), states(V)
    y = torch.arange(len(xs)) % C
    brute = -torch.logsumexp(-energy(m, xs, torch.arange(C), states(H)), dim=2)[torch.arange(len(xs)), y]
    assert torch.allclose(m.free_energy(xs, y), brute, atol=1e-12)


def test_p_y_given_x_is_stable_for_huge_weights():
    m = random_model(scale=200.0)
    p = m.predict_proba(states(V))
    assert torch.isfinite(p).all() and torch.allclose(p.sum(1), torch.ones(16, dtype=torch.float64))


@pytest.mark.parametrize("visible,hidden", [("bernoulli", "bernoulli"), ("gaussian", "relu")])
def test_discriminative_gradient_equals_autograd(visible, hidden):
    m = random_model(visible, hidden, scale=0.5)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(7, V, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (7,), generator=g)
    grads, _ = discriminative_gradients(m, x, y)
    nll = -torch.log_softmax(m.label_logits(x), -1)[torch.arange(7), y].mean()
    auto = dict(zip([n for n, _ in m.named_parameters()],
                    torch.autograd.grad(nll, list(m.parameters()), allow_unused=True)))
    for name, p in m.named_parameters():
        expected = torch.zeros_like(p) if auto[name] is None else -auto[name]
        assert torch.allclose(grads.get(name, torch.zeros_like(p)), expected, atol=1e-12), name


@pytest.mark.parametrize("visible,hidden", [("bernoulli", "bernoulli"), ("gaussian", "relu")])
def test_entropy_gradient_equals_autograd(visible, hidden):
    """The ascent direction of -H(p(y|x)), H summed by hand over the classes."""
    m = random_model(visible, hidden, scale=0.5)
    x = torch.rand(7, V, generator=GEN().manual_seed(1), dtype=torch.float64)
    grads = entropy_gradients(m, x)
    p = torch.softmax(m.label_logits(x), -1)
    entropy = -(p * p.log()).sum(1).mean()
    auto = dict(zip([n for n, _ in m.named_parameters()],
                    torch.autograd.grad(entropy, list(m.parameters()), allow_unused=True)))
    assert set(grads) == {"weight", "hidden_bias", "label_weight", "label_bias"}
    for name, p in m.named_parameters():
        expected = torch.zeros_like(p) if auto[name] is None else -auto[name]
        assert torch.allclose(grads.get(name, torch.zeros_like(p)), expected, atol=1e-12), name


def test_objective_adds_beta_times_the_entropy_term():
    m = random_model(scale=0.5)
    g = GEN().manual_seed(4)
    xl, xu = torch.rand(5, V, generator=g, dtype=torch.float64), torch.rand(6, V, generator=g, dtype=torch.float64)
    yl = torch.randint(0, C, (5,), generator=g)
    got = objective_gradients(m, xl, yl, xu, (1.0, 0.0, 0.3), None, unsupervised="entropy")
    disc, ent = discriminative_gradients(m, xl, yl)[0], entropy_gradients(m, xu)
    for name in disc:
        assert torch.allclose(got[name], disc[name] + 0.3 * ent[name], atol=1e-12), name


def _cd_with_samples(m, x, e, seed, k=1):
    """cd_gradients, and the chain end (x_k, e_k) drawn again with the same generator state."""
    grads, _ = cd_gradients(m, x, e, k, torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    a0 = m.hidden_input(x) + e @ m.label_weight.t()
    h0 = m.hidden_units.sample(a0, None, g, m.hidden_units.mean(a0))
    xk, ek, _, _ = _negative_phase(m, h0, k, g)
    return grads, xk, ek


def test_cd_statistics_equal_autograd_of_the_free_energy_difference():
    m = random_model(scale=0.5)
    g = torch.Generator().manual_seed(2)
    x = torch.bernoulli(torch.full((9, V), 0.5, dtype=torch.float64), generator=g)
    y = torch.randint(0, C, (9,), generator=g)
    grads, xk, ek = _cd_with_samples(m, x, F.one_hot(y, C).double(), seed=3, k=2)
    gap = m.free_energy(x, y).mean() - m.free_energy(xk, ek.argmax(1)).mean()
    auto = torch.autograd.grad(gap, list(m.parameters()))
    for (name, _), a in zip(m.named_parameters(), auto):
        assert torch.allclose(grads[name], -a, atol=1e-12), name


def _exact_gradient(m, log_p):
    return dict(zip([n for n, _ in m.named_parameters()], torch.autograd.grad(log_p, list(m.parameters()))))


def test_cd_with_long_chains_reaches_the_exact_gradient_of_log_p_x_y():
    m = random_model(scale=0.5)
    x0, y0 = states(V)[[3, 12]], torch.tensor([0, 2])
    exact = _exact_gradient(m, (-m.free_energy(x0, y0) - exact_log_z(m)).mean())
    n = 10000  # chains; each data row repeated
    x, y = x0.repeat(n // 2, 1), y0.repeat(n // 2)
    with torch.no_grad():
        grads, _ = cd_gradients(m, x, F.one_hot(y, C).double(), 40, torch.Generator().manual_seed(0))
    for name, g in exact.items():
        assert torch.allclose(grads[name], g, atol=0.05), name


def test_unlabeled_cd_with_long_chains_reaches_the_exact_gradient_of_log_p_x():
    m = random_model(scale=0.5)
    x0 = states(V)[[5, 10]]
    log_px = torch.logsumexp(m.label_logits(x0), 1) - m.visible_units.energy(x0, m.visible_bias)
    exact = _exact_gradient(m, (log_px - exact_log_z(m)).mean())
    with torch.no_grad():
        grads, _ = cd_gradients(m, x0.repeat(5000, 1), None, 40, torch.Generator().manual_seed(0))
    for name, g in exact.items():
        assert torch.allclose(grads[name], g, atol=0.05), name


def test_objective_weights_combine_the_terms():
    s = ClassSettings(epochs=1, objective="semisupervised", supervised="discriminative", beta=0.3)
    assert s.weights() == (1.0, 0.0, 0.3)
    assert ClassSettings(epochs=1, objective="hybrid", alpha=0.1).weights() == (1.0, 0.1, 0.0)
    assert ClassSettings(epochs=1, objective="generative").weights() == (0.0, 1.0, 0.0)
    m = random_model()
    x, y = states(V)[:6], torch.tensor([0, 1, 2, 0, 1, 2])
    hybrid = objective_gradients(m, x, y, None, (1.0, 0.5, 0.0),
                                 lambda *a: {n: torch.ones_like(p) for n, p in m.named_parameters()})
    disc, _ = discriminative_gradients(m, x, y)
    assert torch.allclose(hybrid["weight"], disc["weight"] + 0.5)
    assert torch.allclose(hybrid["visible_bias"], torch.full((V,), 0.5, dtype=torch.float64))


# --- training --------------------------------------------------------------------------------

@pytest.fixture
def toy():
    """Two noisy binary prototypes per class, three classes, 16 units."""
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 16, generator=g) > 0.5).float()
    y = torch.randint(0, 3, (240,), generator=g)
    x = (protos[y] + (torch.rand(240, 16, generator=g) < 0.1).float()) % 2
    return x, y


@pytest.mark.parametrize("objective", ["generative", "discriminative", "hybrid"])
def test_every_objective_learns_a_separable_problem(toy, objective):
    x, y = toy
    g = torch.Generator().manual_seed(0)
    m = ClassRBM.from_data(x, y, 12, generator=g)
    hist = train_classrbm(m, x[:200], y[:200], epochs=8, objective=objective, lr=0.1,
                          generator=g, progress=False)
    assert hist.rows[-1]["train_error"] < 10.0  # 10% of the bits flipped: CD's model is rougher
    assert float((m.predict(x[200:]) != y[200:]).float().mean()) < 0.15


@pytest.mark.parametrize("batching", ["paired", "stream"])
def test_semisupervised_trains_with_few_labels(toy, batching):
    x, y = toy
    g = torch.Generator().manual_seed(0)
    m = ClassRBM.from_data(x[:30], y[:30], 12, n_classes=3, generator=g)
    hist = train_classrbm(m, x[:30], y[:30], x_unlabeled=x[30:200], objective="semisupervised",
                          batching=batching, epochs=15, batch_size=10, lr=0.1, alpha=0.1, beta=0.1,
                          unsupervised="likelihood", schedule="constant",  # the paper's settings
                          generator=g, progress=False)
    assert len(hist) == 15 and not hist.diverged
    assert float((m.predict(x[200:]) != y[200:]).float().mean()) < 0.2


@pytest.mark.parametrize("ratio", [1, 3])
def test_paired_batches_bring_ratio_unlabeled_rows_per_labeled_row(toy, ratio):
    """Each labeled batch gets ``ratio`` times as many unlabeled rows, none repeated within
    an epoch while the unlabeled rows last."""
    from neuralsmith.rbm.classrbm import ClassUpdater
    x, y = toy
    s = ClassSettings(epochs=1, batch_size=7, objective="semisupervised", unlabeled_ratio=ratio)
    trainer = ClassUpdater(ClassRBM.from_data(x, y, 4, generator=GEN().manual_seed(0)),
                           x[:30], y[:30], x[30:], None, None, s, GEN().manual_seed(1))
    pairs = list(trainer.batches())
    assert [len(u) for _, u in pairs] == [ratio * len(li) for li, _ in pairs]
    unlabeled = torch.cat([u for _, u in pairs])
    assert len(unlabeled) == 30 * ratio and len(unlabeled.unique()) == len(unlabeled)


@pytest.mark.parametrize("kw,match", [(dict(unlabeled_ratio=0), "unlabeled_ratio must be an int >= 1"),
                                      (dict(unlabeled_ratio=2.5), "unlabeled_ratio must be an int >= 1"),
                                      (dict(unlabeled_ratio=2, batching="stream"), "applies to paired")])
def test_bad_unlabeled_ratio_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        ClassSettings(epochs=1, **kw)


def test_entropy_semisupervised_trains_with_few_labels(toy):
    x, y = toy
    g = torch.Generator().manual_seed(0)
    m = ClassRBM.from_data(x[:30], y[:30], 12, n_classes=3, generator=g)
    hist = train_classrbm(m, x[:30], y[:30], x_unlabeled=x[30:200], objective="semisupervised",
                          unsupervised="entropy", unlabeled_ratio=2, epochs=15, batch_size=10,
                          lr=0.1, beta=0.3, schedule="constant", generator=g, progress=False)
    assert len(hist) == 15 and not hist.diverged
    assert float((m.predict(x[200:]) != y[200:]).float().mean()) < 0.2


def test_unknown_unsupervised_term_is_refused():
    with pytest.raises(ValueError, match="unsupervised must be one of likelihood, entropy"):
        ClassSettings(epochs=1, unsupervised="pseudolabels")


def test_pcd_keeps_chains_and_trains(toy, tmp_path):
    from neuralsmith import checkpoint
    x, y = toy
    g = torch.Generator().manual_seed(0)
    m = ClassRBM.from_data(x, y, 12, generator=g)
    hist = train_classrbm(m, x, y, epochs=8, objective="generative", method="pcd", n_chains=20,
                          lr=0.01, generator=g, checkpoint_dir=tmp_path, progress=False)
    assert min(hist.column("train_error")) < 30.0  # chance: 67%
    assert checkpoint.load(tmp_path, "last")[0]["chain_h"].shape == (20, 12)


def test_best_validation_epoch_is_kept(toy):
    x, y = toy
    g = torch.Generator().manual_seed(0)
    m = ClassRBM.from_data(x, y, 12, generator=g)
    hist = train_classrbm(m, x[:200], y[:200], epochs=4, x_valid=x[200:], y_valid=y[200:],
                          lr=0.1, generator=g, progress=False)
    best = min(r["valid_error"] for r in hist.rows)
    assert hist.best_valid_error == best
    assert 100.0 * float((m.predict(x[200:]) != y[200:]).float().mean()) == pytest.approx(best)


def test_patience_stops_early(toy):
    x, y = toy
    m = ClassRBM.from_data(x, y, 4, generator=torch.Generator().manual_seed(0))
    hist = train_classrbm(m, x[:200], y[:200], epochs=50, x_valid=x[200:], y_valid=y[200:],
                          lr=1e-9, patience=2, generator=torch.Generator().manual_seed(0), progress=False)
    assert hist.stopped_early and len(hist) == 3


@pytest.mark.parametrize("schedule,scale", [("linear", 0.25), ("cosine", 0.5 * (1 + math.cos(0.75 * math.pi)))])
def test_schedule_scales_the_update_of_a_late_epoch(toy, schedule, scale):
    """Epoch 3 of 4 moves the parameters by lr_3 / lr times the constant schedule's step."""
    from neuralsmith.rbm.classrbm import ClassUpdater
    x, y = toy

    def delta(name):
        m = random_model(scale=0.3)
        s = ClassSettings(epochs=4, lr=0.1, momentum=0.0, objective="discriminative", schedule=name)
        trainer = ClassUpdater(m, x[:20, :V].double(), y[:20] % C, None, None, None, s, GEN())
        before = [p.detach().clone() for p in m.parameters()]
        trainer.epoch = 3
        with torch.no_grad():
            trainer.step(trainer.x, trainer.y, None)
        return [p.detach() - b for p, b in zip(m.parameters(), before)]

    for got, want in zip(delta(schedule), delta("constant")):
        assert torch.allclose(got, scale * want, atol=1e-12)


def test_resumed_run_ends_as_an_uninterrupted_one(toy, tmp_path):
    x, y = toy

    def run(epochs, folder):
        m = ClassRBM.from_data(x, y, 6, generator=torch.Generator().manual_seed(0))
        train_classrbm(m, x[:100], y[:100], x_unlabeled=x[100:], objective="semisupervised",
                       method="pcd", epochs=epochs, generator=torch.Generator().manual_seed(1),
                       checkpoint_dir=folder, progress=False)
        return m

    whole = run(3, tmp_path / "a")
    run(1, tmp_path / "b")
    resumed = run(3, tmp_path / "b")
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_gibbs_draws_one_hot_labels_and_keeps_shapes():
    m = random_model()
    xk, yk = m.gibbs(states(V), torch.zeros(16, dtype=torch.long), k=3, generator=torch.Generator())
    assert xk.shape == (16, V) and set(xk.unique().tolist()) <= {0.0, 1.0} and yk.max() < C


def test_float32_and_float64_agree():
    m64 = random_model(scale=0.5)
    m32 = ClassRBM(V, H, C, generator=torch.Generator())
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    x = states(V)
    assert torch.allclose(m32.predict_proba(x.float()).double(), m64.predict_proba(x), atol=1e-5)


# --- bad inputs ------------------------------------------------------------------------------

def test_one_class_is_refused():
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        ClassRBM(4, 3, 1)


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        random_model().free_energy(states(V)[:2], torch.tensor([0, 3]))


def test_float_labels_are_refused():
    with pytest.raises(ValueError, match="integer class indices"):
        random_model().hidden_probs(states(V)[:2], torch.tensor([0.0, 1.0]))


def test_labels_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        random_model().free_energy(states(V)[:2], torch.tensor([0]))


def test_inputs_of_the_wrong_width_are_refused():
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        random_model().predict(torch.zeros(2, 5, dtype=torch.float64))


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of"):
        ClassSettings(epochs=1, objective="adversarial")


def test_fpcd_is_refused():
    with pytest.raises(ValueError, match="cd, pcd for a ClassRBM"):
        ClassSettings(epochs=1, method="fpcd")


def test_negative_alpha_is_refused():
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        ClassSettings(epochs=1, alpha=-0.1)


def test_unknown_batching_is_refused():
    with pytest.raises(ValueError, match="batching must be one of"):
        ClassSettings(epochs=1, batching="random")


def test_semisupervised_without_unlabeled_rows_is_refused(toy):
    x, y = toy
    with pytest.raises(ValueError, match="needs unlabeled rows"):
        train_classrbm(ClassRBM.from_data(x, y, 4, generator=GEN()), x, y, epochs=1, objective="semisupervised",
                       progress=False)


def test_inputs_outside_0_1_are_refused_for_bernoulli_units(toy):
    x, y = toy
    with pytest.raises(ValueError, match=r"\[0, 1\] for Bernoulli"):
        train_classrbm(ClassRBM(16, 4, 3, generator=GEN()), x * 2, y, epochs=1, progress=False)


def test_validation_inputs_without_labels_are_refused(toy):
    x, y = toy
    with pytest.raises(ValueError, match="both x_valid and y_valid"):
        train_classrbm(ClassRBM(16, 4, 3, generator=GEN()), x, y, epochs=1, x_valid=x, progress=False)


def test_zero_patience_is_refused(toy):
    x, y = toy
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        train_classrbm(ClassRBM(16, 4, 3, generator=GEN()), x, y, epochs=1, patience=0, progress=False)


def test_sparsity_target_is_refused():
    with pytest.raises(ValueError, match="sparsity_target is not offered"):
        ClassSettings(epochs=1, sparsity_target=0.1)


def test_softmax_units_draw_the_class_frequencies():
    from neuralsmith.rbm.units import Softmax
    p = torch.tensor([[0.2, 0.5, 0.3]]).repeat(20000, 1)
    s = Softmax().sample(torch.log(p), None, torch.Generator().manual_seed(0))
    assert torch.allclose(s.mean(0), p[0], atol=0.015) and (s.sum(1) == 1).all()
    assert math.isclose(float(Softmax().free_energy(torch.zeros(1, 4), None)), -math.log(4), rel_tol=1e-6)


def test_no_generator_means_a_fresh_logged_seed_not_the_global_rng(caplog):
    import logging
    state = torch.get_rng_state()
    with caplog.at_level(logging.INFO, logger="neuralsmith.seeds"):
        a, b = ClassRBM(4, 3, 2), ClassRBM(4, 3, 2)
    assert not torch.equal(a.weight, b.weight) and caplog.text.count("drew seed") == 2
    assert torch.equal(torch.get_rng_state(), state)


def test_defaults_follow_the_measurements_and_the_paper_has_a_preset():
    """Linear decay and the entropy term are the defaults (README: Hybrid models -> Measured);
    ``larochelle2012`` restores the paper's constant rate and likelihood term."""
    import inspect

    s = ClassSettings(epochs=1)
    assert (s.schedule, s.unsupervised) == ("linear", "entropy")
    params = inspect.signature(train_classrbm).parameters
    assert (params["schedule"].default, params["unsupervised"].default) == ("linear", "entropy")
    paper = ClassSettings.larochelle2012(epochs=3, beta=0.5)
    assert (paper.schedule, paper.unsupervised, paper.epochs, paper.beta) == ("constant", "likelihood", 3, 0.5)
