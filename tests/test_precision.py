"""bf16 products with fp32 state: choosing it, falling back, and following fp32 training."""

from __future__ import annotations

import itertools
import statistics
import warnings

import pytest
import torch

from neuralsmith import hybrid, precision
from neuralsmith.loop import fit
from neuralsmith.rbm import RBM, Settings, train
from neuralsmith.rbm.classrbm import ClassRBM, ClassSettings, ClassUpdater, train_classrbm
from neuralsmith.rbm.draws import CounterDraws
from neuralsmith.rbm.learning import CDUpdater, hidden_input
from neuralsmith.rbm.partition import exact_log_partition, log_likelihood
from neuralsmith.rbm.units import bernoulli


@pytest.fixture
def fast_bf16(monkeypatch):
    """Pretend the hardware has fast bf16 (torch runs bf16 products on any CPU, more slowly)."""
    monkeypatch.setattr(precision, "has_fast_bf16", lambda device="cpu": True)


@pytest.fixture
def slow_bf16(monkeypatch):
    """Pretend it has none, with the once-only fallback warning not yet given."""
    monkeypatch.setattr(precision, "has_fast_bf16", lambda device="cpu": False)
    monkeypatch.setattr(precision, "_warned", set())


@pytest.fixture
def prototypes():
    """500 rows of 10 binary units: three noisy prototypes (a 10 x 8 RBM's log Z is exact)."""
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 10, generator=g) > 0.5).float()
    x = protos[torch.randint(0, 3, (500,), generator=g)]
    return (x + (torch.rand(500, 10, generator=g) < 0.1).float()) % 2


def _trained_loglik(x, precision_name, method, seed=0, counter_draws=False):
    """30 epochs from ``seed``; ``counter_draws`` gives fp32 the bf16 path's random bits."""
    g = torch.Generator().manual_seed(seed)
    rbm = RBM.from_data(x, 8, generator=g)
    settings = Settings(epochs=30, batch_size=20, lr=0.1, method=method, precision=precision_name)
    updater = CDUpdater(rbm, x, None, settings, g)
    if counter_draws:
        updater.draws = CounterDraws(g)
    fit(updater, epochs=30, progress=False)
    return rbm, log_likelihood(rbm, x, exact_log_partition(rbm))


def test_bad_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16.*'fp16'"):
        Settings(epochs=1, precision="fp16")


def test_cd1_in_bf16_follows_fp32_within_003_nats(fast_bf16, prototypes):
    """Same seed, same draws, same updates: the exact mean log-likelihoods agree to 0.03 nats
    (of ~0.8 gained), so what bf16 rounds costs almost nothing."""
    _, ll32 = _trained_loglik(prototypes, "fp32", "cd", counter_draws=True)
    _, ll16 = _trained_loglik(prototypes, "bf16", "cd")
    rbm0 = RBM.from_data(prototypes, 8, generator=torch.Generator().manual_seed(0))
    start = log_likelihood(rbm0, prototypes, exact_log_partition(rbm0))
    assert ll32 - start > 0.5
    assert abs(ll16 - ll32) < 0.03, (ll16, ll32)


@pytest.mark.parametrize("method", ["pcd", "fpcd"])
def test_persistent_bf16_stays_within_the_seed_spread(fast_bf16, prototypes, method):
    """Persistent chains amplify any change of a draw: bf16 lands within 0.25 nats of fp32
    (fp32's own spread over seeds is ~0.3 nats here)."""
    _, ll32 = _trained_loglik(prototypes, "fp32", method)
    _, ll16 = _trained_loglik(prototypes, "bf16", method)
    assert abs(ll16 - ll32) < 0.25, (ll16, ll32)


def test_bf16_products_leave_the_state_fp32(fast_bf16, prototypes):
    rbm = RBM.from_data(prototypes, 8, generator=torch.Generator().manual_seed(0))
    upd = CDUpdater(rbm, prototypes, None, Settings(epochs=1, batch_size=20, method="pcd",
                                                    precision="bf16"), torch.Generator())
    with torch.no_grad():  # as the training engine runs it
        upd.run_epoch()
    assert upd.products()[0].dtype == upd.chain_h.dtype == upd.x.dtype == torch.bfloat16
    state = [*rbm.parameters(), *upd.momentum.tensors().values()]
    assert all(t.dtype == torch.float32 for t in state)
    upd.shadow.expire()  # as the next update begins: the copy follows the fp32 master
    assert torch.equal(upd.products()[0], rbm.weight.detach().to(torch.bfloat16))


def test_without_fast_bf16_it_says_so_once_and_runs_fp32(slow_bf16, prototypes):
    def run(name):
        g = torch.Generator().manual_seed(0)
        rbm = RBM.from_data(prototypes, 8, generator=g)
        train(rbm, prototypes, epochs=2, batch_size=20, method="pcd", precision=name, generator=g,
              progress=False)
        return rbm.weight.detach()

    with pytest.warns(RuntimeWarning, match="no fast bf16 path.*running fp32"):
        w16 = run("bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second time: silent
        assert torch.equal(run("bf16"), w16)
    assert torch.equal(run("fp32"), w16)  # bit-identical to fp32


def test_bf16_refuses_units_it_does_not_train(fast_bf16):
    rbm = RBM(4, 3, visible="gaussian")
    with pytest.raises(ValueError, match="Bernoulli-Bernoulli.*precision='fp32'"):
        train(rbm, torch.zeros(5, 4), epochs=1, precision="bf16", progress=False)


def test_bernoulli_from_bf16_probabilities_is_unbiased():
    """The fp32 uniform is compared with the bf16 p: the mean is p (rounded to bf16), not lower."""
    p = torch.full((400_000,), 0.3).to(torch.bfloat16)
    s = bernoulli(p, torch.Generator().manual_seed(0))
    assert s.dtype == torch.bfloat16
    assert abs(float(s.float().mean()) - float(p[0])) < 3 * (0.3 * 0.7 / 400_000) ** 0.5


def test_add_product_matches_fp32_to_bf16_rounding():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 50, generator=g), torch.rand(50, 4, generator=g)
    target = torch.ones(6, 4)
    expected = 0.5 * target + 2.0 * (a @ b)
    got = precision.add_product(target.clone(), a.bfloat16(), b.bfloat16(), 0.5, 2.0)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=0)


def test_column_sum_of_bf16_rows_is_fp32_and_exact_for_counts():
    rows = torch.ones(1000, 3, dtype=torch.bfloat16)  # a bf16 sum would round 1000 to 1000 +- 4
    assert precision.column_sum(rows, torch.float32).tolist() == [1000.0] * 3


def test_autocast_is_a_no_op_for_fp32_and_bf16_where_fast(fast_bf16):
    lin = torch.nn.Linear(3, 2)
    with precision.autocast("fp32"):
        assert lin(torch.ones(1, 3)).dtype == torch.float32
    with precision.autocast("bf16"):
        assert lin(torch.ones(1, 3)).dtype == torch.bfloat16


def test_cli_refuses_a_bad_precision_in_one_line(cli, tmp_path):
    code, _, err = cli("pretrain", "rbm", "--precision", "fp16", "--out", tmp_path / "r")
    assert code == 2
    assert err.strip().count("\n") == 0 and "precision must be one of fp32, bf16" in err


# --- mixed precision (torch.autocast) for the gradient-trained models ------------------------

def _mlp():
    torch.manual_seed(0)  # nn.Linear's own initialization
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 10))


def test_finetune_in_bf16_learns_as_fp32_does_with_fp32_weights(fast_bf16):
    from neuralsmith import data
    from neuralsmith.train import finetune

    ds = data.load("digits", validation=0.2, seed=0)
    errors = {}
    for name in ("fp32", "bf16"):
        model = _mlp()
        result = finetune(model, ds, epochs=4, lr=0.1, precision=name, progress=False,
                          generator=torch.Generator().manual_seed(0))
        errors[name] = result.metrics["test_error"]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert errors["bf16"] < 15 and abs(errors["bf16"] - errors["fp32"]) < 3, errors


def test_dae_in_bf16_lowers_its_loss(fast_bf16):
    from neuralsmith.autoencoder import DenoisingAutoencoder, train_dae

    x = torch.rand(200, 16, generator=torch.Generator().manual_seed(0)).round()
    dae = DenoisingAutoencoder(16, 8, generator=torch.Generator().manual_seed(0))
    history = train_dae(dae, x, epochs=4, lr=0.1, precision="bf16", progress=False,
                        generator=torch.Generator().manual_seed(0))
    assert history[-1]["loss"] < history[0]["loss"]
    assert dae.weight.dtype == torch.float32


@pytest.mark.parametrize("make", [
    lambda: __import__("neuralsmith.train", fromlist=["FinetuneConfig"]).FinetuneConfig(precision="half"),
    lambda: __import__("neuralsmith.study", fromlist=["StudySpec"]).StudySpec(precision="half"),
])
def test_every_settings_object_refuses_a_bad_precision(make):
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        make()


def test_a_bf16_run_resumes_bit_identically(fast_bf16, prototypes, tmp_path):
    """The chains (bf16) and the fp32 state survive a checkpoint: 1 + 1 epochs == 2 epochs."""
    def run(epochs, folder):
        g = torch.Generator().manual_seed(0)
        rbm = RBM.from_data(prototypes, 8, generator=g)
        train(rbm, prototypes, epochs=epochs, batch_size=20, method="pcd", precision="bf16",
              generator=g, progress=False, checkpoint_dir=folder)
        return rbm.weight.detach()

    straight = run(2, None)
    run(1, tmp_path)
    assert torch.equal(run(2, tmp_path), straight)


def test_hidden_input_in_bf16_is_formed_transposed_and_agrees():
    g = torch.Generator().manual_seed(0)
    w, t = torch.randn(7, 5, generator=g), (torch.rand(4, 5, generator=g) < 0.5).float()
    c = torch.randn(7, generator=g)
    x16 = hidden_input(t.bfloat16(), w.bfloat16(), c.bfloat16())
    assert x16.shape == (4, 7) and x16.t().is_contiguous()
    assert torch.allclose(x16.float(), torch.addmm(c, t, w.t()), rtol=2 ** -7, atol=0.05)
    assert torch.equal(hidden_input(t, w, c), torch.addmm(c, t, w.t()))  # fp32: as ever


@pytest.mark.parametrize("method", ["cd", "pcd", "fpcd"])
def test_bf16_takes_a_short_last_batch(fast_bf16, prototypes, method):
    """510 rows in batches of 20: the last update has 10 rows (stacked buffers, chains); bf16
    learns as fp32 does (start -5.29, fp32 ends -5.04 to -5.12 here)."""
    x = torch.cat([prototypes, prototypes[:10]])
    ends = {}
    for name in ("fp32", "bf16"):
        rbm = RBM.from_data(x, 8, generator=torch.Generator().manual_seed(0))
        hist = train(rbm, x, epochs=10, batch_size=20, lr=0.1, method=method, precision=name,
                     generator=torch.Generator().manual_seed(1), progress=False)
        assert not hist.diverged and rbm.weight.dtype == torch.float32
        ends[name] = log_likelihood(rbm, x, exact_log_partition(rbm))
    assert ends["bf16"] > -5.2 and abs(ends["bf16"] - ends["fp32"]) < 0.05, ends


def _class_loglik(model, x, y):
    """Exact mean log p(x, y) of a ClassRBM with 10 visible units (all 1 024 x and 3 classes)."""
    xs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=10)))
    with torch.no_grad():
        f = torch.stack([model.free_energy(xs, torch.full((len(xs),), c)) for c in range(3)], 1)
        log_z = torch.logsumexp(-f.double().flatten(), 0)
        return float((-model.free_energy(x, y).double() - log_z).mean())


@pytest.fixture
def labeled_prototypes():
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 10, generator=g) > 0.5).float()
    y = torch.randint(0, 3, (500,), generator=g)
    return (protos[y] + (torch.rand(500, 10, generator=g) < 0.1).float()) % 2, y


def _class_trained(x, y, objective, method, precision_name, seed=1, counter_draws=False):
    """A 10-8-3 ClassRBM after 30 epochs; ``counter_draws`` gives fp32 the bf16 path's draws."""
    model = ClassRBM(10, 8, 3, generator=torch.Generator().manual_seed(0))
    settings = ClassSettings(epochs=30, objective=objective, alpha=1.0, lr=0.05, batch_size=20,
                             method=method, precision=precision_name)
    g = torch.Generator().manual_seed(seed)
    updater = ClassUpdater(model, x, y, None, None, None, settings, g)
    if counter_draws:
        updater.draws = CounterDraws(g)
    fit(updater, epochs=30, progress=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    return _class_loglik(model, x, y)


@pytest.mark.parametrize("objective", ["generative", "hybrid"])
def test_classrbm_cd_in_bf16_follows_fp32_by_exact_likelihood(fast_bf16, labeled_prototypes, objective):
    """Same seed and draws: exact log p(x, y) after 30 epochs of CD-1 (it rises from -7.9 to
    about -4.5) agrees with fp32's to 0.05 nats."""
    x, y = labeled_prototypes
    ll32 = _class_trained(x, y, objective, "cd", "fp32", counter_draws=True)
    ll16 = _class_trained(x, y, objective, "cd", "bf16")
    assert ll32 > -4.8 and abs(ll16 - ll32) < 0.05, (ll16, ll32)


def test_classrbm_pcd_in_bf16_lands_where_fp32_does(fast_bf16, labeled_prototypes):
    """Persistent chains part at the first changed draw: over five seeds the hybrid PCD runs'
    mean exact log p(x, y) agrees to 0.15 nats (fp32's own range over them is 0.62)."""
    x, y = labeled_prototypes
    means = {name: statistics.fmean(_class_trained(x, y, "hybrid", "pcd", name, seed)
                                    for seed in range(1, 6)) for name in ("fp32", "bf16")}
    assert means["fp32"] > -5.0 and abs(means["bf16"] - means["fp32"]) < 0.15, means


def test_classrbm_bf16_runs_its_generative_term_on_bf16_copies(fast_bf16, labeled_prototypes):
    x, y = labeled_prototypes
    model = ClassRBM(10, 8, 3, generator=torch.Generator().manual_seed(0))
    settings = ClassSettings(epochs=1, method="pcd", objective="hybrid", precision="bf16")
    upd = ClassUpdater(model, x, y, None, None, None, settings, torch.Generator().manual_seed(1))
    with torch.no_grad():
        upd.run_epoch()
    (twin,) = upd.twins.values()
    assert {p.dtype for p in twin.parameters()} == {torch.bfloat16} == {upd.chain_h.dtype}
    assert all(t.dtype == torch.float32 for t in [*model.parameters(), *upd.momentum.tensors().values()])


def test_classrbm_bf16_is_refused_where_no_generative_term_runs():
    with pytest.raises(ValueError, match="this objective has none"):
        ClassSettings(epochs=1, objective="discriminative", precision="bf16")
    with pytest.raises(ValueError, match="this objective has none"):
        ClassSettings(epochs=1, objective="semisupervised", supervised="discriminative",
                      unsupervised="entropy", precision="bf16")
    ClassSettings(epochs=1, objective="semisupervised", supervised="discriminative",
                  unsupervised="likelihood", precision="bf16")  # CD on the unlabeled rows


@pytest.mark.parametrize("kind", ["dhbm", "dhda"])
def test_deep_hybrids_learn_in_bf16_as_in_fp32(fast_bf16, labeled_prototypes, kind):
    x, y = labeled_prototypes
    errors = {}
    for name in ("fp32", "bf16"):
        model = hybrid.build(kind, [10, 12, 8], 3, generator=torch.Generator().manual_seed(0))
        hybrid.train_hybrid(model, x, y, epochs=10, lr=0.05, precision=name,
                            generator=torch.Generator().manual_seed(1), progress=False)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        errors[name] = float((model.predict(x) != y).float().mean())
    assert errors["bf16"] <= errors["fp32"] + 0.02 and errors["bf16"] < 0.1, errors


def test_a_bf16_classrbm_run_resumes_bit_identically(fast_bf16, labeled_prototypes, tmp_path):
    """bf16 chains, the counter draws' generator and the fp32 state: 1 + 1 epochs == 2."""
    x, y = labeled_prototypes

    def run(epochs, folder):
        model = ClassRBM(10, 8, 3, generator=torch.Generator().manual_seed(0))
        train_classrbm(model, x, y, epochs=epochs, objective="hybrid", method="pcd",
                       precision="bf16", generator=torch.Generator().manual_seed(1),
                       progress=False, checkpoint_dir=folder)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    straight = run(2, None)
    run(1, tmp_path)
    assert torch.equal(run(2, tmp_path), straight)


# --- many seeds at once (neuralsmith.ensemble, the study's pre-training) ---------------------------

def _batched_rbms(x, precision_name, seeds=(0, 1, 2), epochs=30):
    """Three 10 x 8 RBMs trained by the batched CD-1 in ``precision_name``; their exact log-likelihoods."""
    from neuralsmith.ensemble import train_rbms

    rbms = [RBM.from_data(x, 8, generator=torch.Generator().manual_seed(s)) for s in seeds]
    train_rbms(rbms, x, [torch.Generator().manual_seed(100 + s) for s in seeds], epochs=epochs,
               batch_size=20, lr=0.1, precision=precision_name)
    return rbms, [log_likelihood(r, x, exact_log_partition(r)) for r in rbms]


def test_batched_cd1_in_bf16_follows_fp32_by_exact_likelihood(fast_bf16, prototypes):
    """Each member's own draws in both precisions: bf16 ends within 0.05 nats of fp32 (of the
    ~0.8 nats learned), with its weights fp32 and not bit-equal to fp32's (bf16 did run)."""
    rbms32, ll32 = _batched_rbms(prototypes, "fp32")
    rbms16, ll16 = _batched_rbms(prototypes, "bf16")
    start = [log_likelihood(r, prototypes, exact_log_partition(r)) for r in
             (RBM.from_data(prototypes, 8, generator=torch.Generator().manual_seed(s)) for s in (0, 1, 2))]
    for a, b, s0 in zip(ll32, ll16, start):
        assert a - s0 > 0.5
        assert abs(a - b) < 0.05, (ll32, ll16)
    assert all(r.weight.dtype == torch.float32 for r in rbms16)
    assert not any(torch.equal(a.weight, b.weight) for a, b in zip(rbms32, rbms16))


def test_batched_bf16_products_read_the_copy_of_the_latest_weights(fast_bf16, monkeypatch, prototypes):
    """The fused update writes the next bf16 copy of W: every later product reads exactly it."""
    from neuralsmith import kernels

    written, read = [], []
    real_combine, real_baddbmm = kernels.combine_bf16, torch.baddbmm

    def combine(target, other, x, copy, *args):
        out = real_combine(target, other, x, copy, *args)
        written.append(out.to(torch.bfloat16))  # the new weights, rounded by torch
        return out

    def baddbmm(bias, a, b, **kw):
        if b.dtype == torch.bfloat16:
            w = b.transpose(1, 2) if b.shape[1] == 10 else b  # hidden inputs read W transposed
            read.append((len(written), w.clone()))  # the copy's storage is rewritten each update
        return real_baddbmm(bias, a, b, **kw)

    monkeypatch.setattr(kernels, "combine_bf16", combine)
    monkeypatch.setattr(torch, "baddbmm", baddbmm)
    _batched_rbms(prototypes, "bf16", epochs=1)
    assert len(written) == 25 and read
    assert all(torch.equal(w, written[n - 1]) for n, w in read if n)


def test_batched_bf16_without_a_fast_path_warns_once_and_is_fp32(slow_bf16, prototypes):
    with pytest.warns(RuntimeWarning, match="no fast bf16 path"):
        rbms16, _ = _batched_rbms(prototypes, "bf16", epochs=2)
    rbms32, _ = _batched_rbms(prototypes, "fp32", epochs=2)
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(rbms32, rbms16))


def test_batched_rbms_refuse_a_bad_precision(prototypes):
    with pytest.raises(ValueError, match="precision must be one of"):
        _batched_rbms(prototypes, "fp16", epochs=1)


def _batched_daes(x, precision_name):
    from neuralsmith.autoencoder import DenoisingAutoencoder
    from neuralsmith.ensemble import train_daes

    daes = [DenoisingAutoencoder(16, 8, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    history = train_daes(daes, x, [torch.Generator().manual_seed(10 + s) for s in range(3)], epochs=6,
                         lr=0.1, batch_size=20, precision=precision_name)
    return daes, [h[-1]["loss"] for h in history], [h[0]["loss"] for h in history]


def test_batched_daes_in_bf16_learn_as_fp32_does(fast_bf16):
    """The same corruption draws in both precisions: the last epoch's losses agree to 0.1%,
    every member's loss falls, and the weights stay fp32."""
    x = torch.rand(200, 16, generator=torch.Generator().manual_seed(0)).round()
    daes32, last32, _ = _batched_daes(x, "fp32")
    daes16, last16, first16 = _batched_daes(x, "bf16")
    assert all(b < f for b, f in zip(last16, first16))
    assert all(abs(a - b) < 1e-3 * a for a, b in zip(last32, last16)), (last32, last16)
    assert all(d.weight.dtype == torch.float32 for d in daes16)
    assert not any(torch.equal(a.weight, b.weight) for a, b in zip(daes32, daes16))


@pytest.mark.parametrize("start", ["dbn", "sda"])
@pytest.mark.parametrize("name", ["fp32", "bf16"])
def test_a_study_pretrains_its_stacks_in_its_precision(fast_bf16, monkeypatch, start, name):
    """The study's precision reaches the batched pre-training: its products run in bf16 (bf16
    operands, or under autocast) exactly when the study asks for bf16; the nets come out fp32."""
    from neuralsmith import data
    from neuralsmith.study import StudySpec
    from neuralsmith.study.starts import STARTS

    in_bf16 = []
    for fn in ("bmm", "baddbmm"):
        real = getattr(torch, fn)

        def spy(*a, _real=real, **k):
            in_bf16.append(a[1].dtype == torch.bfloat16 or torch.is_autocast_enabled("cpu"))
            return _real(*a, **k)

        monkeypatch.setattr(torch, fn, spy)
    spec = StudySpec(depths=(1,), starts=(start,), seeds=2, hidden=8, pretrain_epochs=1, precision=name)
    ds = data.load("digits", validation=0.2, seed=0)
    nets = STARTS[start](spec, 1, ds, [torch.Generator().manual_seed(s) for s in range(2)], torch.device("cpu"))
    assert in_bf16 and all(in_bf16) == (name == "bf16") and any(in_bf16) == (name == "bf16")
    assert len(nets) == 2 and all(p.dtype == torch.float32 for net in nets for p in net.parameters())
