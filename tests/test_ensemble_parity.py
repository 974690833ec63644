"""The study's batched training computes what the single-model code computes (issue 16).

Every test runs in float64: a batch of one member, and each member of a larger batch, ends
where the single-model function ends with the same settings and generator stream, to 1e-10
(rounding only: a GEMM batched over members may sum in another order), and leaves its
generator in the same state (the random draws are the same draws, in the same order).
"""

import dataclasses

import pytest
import torch
from torch import nn

from neuralsmith import data, rbm
from neuralsmith.autoencoder import DenoisingAutoencoder, train_dae
from neuralsmith.ensemble import EnsembleMLP, finetune_ensemble, pretrain_dbns, pretrain_sdas, \
    train_daes, train_rbms
from neuralsmith.stack import DBN, StackedDAE, greedy_pretrain_dbn, greedy_pretrain_sda
from neuralsmith.train import finetune

TOL = dict(rtol=0.0, atol=1e-10)


def gens(base, n):
    return [torch.Generator().manual_seed(base + s) for s in range(n)]


def assert_same(singles, batched):
    for a, b in zip(singles, batched, strict=True):
        for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            assert p.dtype == q.dtype == torch.float64
            assert torch.allclose(p, q, **TOL), name


def assert_same_streams(single_gens, batched_gens):
    for g, h in zip(single_gens, batched_gens, strict=True):
        assert torch.equal(g.get_state(), h.get_state())


@pytest.fixture(scope="module")
def binary():
    return data.load("digits", binarize="threshold").x_train[:120].double()


@pytest.fixture(scope="module")
def grey():
    return data.load("digits").x_train[:120].double()


# --- (a) RBMs and DBNs: CD-k ---------------------------------------------------------------------

def fresh_rbms(n, size=(64, 12)):
    return [rbm.RBM(*size, generator=g).double() for g in gens(0, n)]


def assert_cd_parity(x, members, settings):
    """``members`` RBMs trained one by one by ``rbm.train`` equal the same RBMs batched."""
    singles, single_gens = fresh_rbms(members), gens(10, members)
    for r, g in zip(singles, single_gens):
        rbm.train(r, x, generator=g, progress=False, **settings)
    batched, batched_gens = fresh_rbms(members), gens(10, members)
    train_rbms(batched, x, batched_gens, **settings)
    assert_same(singles, batched)
    assert_same_streams(single_gens, batched_gens)


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("k,momentum,weight_decay", [(1, 0.5, 1e-4), (2, 0.0, 0.0), (1, 0.9, 1e-2)])
def test_cd_update_for_update(binary, members, k, momentum, weight_decay):
    """One batch per epoch, so epoch e is update e: compare after each of the first four."""
    x = binary[:30]
    for updates in range(1, 5):
        settings = dict(epochs=updates, lr=0.1, k=k, batch_size=len(x), momentum=momentum,
                        weight_decay=weight_decay)
        assert_cd_parity(x, members, settings)


@pytest.mark.parametrize("members", [1, 3])
def test_cd_epochs_of_many_batches(binary, members):
    settings = dict(epochs=3, lr=0.05, k=1, batch_size=16, momentum=0.5, weight_decay=1e-4)
    assert_cd_parity(binary, members, settings)


def test_cd_on_grey_levels_and_float32_data(grey):
    """Probabilities as visible data; the data is cast to the RBMs' dtype as ``rbm.train`` does."""
    settings = dict(epochs=2, lr=0.05, batch_size=25)
    single, g = fresh_rbms(1), gens(10, 1)
    rbm.train(single[0], grey, generator=g[0], progress=False, **settings)
    batched, h = fresh_rbms(1), gens(10, 1)
    train_rbms(batched, grey.float(), h, **settings)
    assert_same(single, batched)


@pytest.mark.parametrize("members", [1, 2])
@pytest.mark.parametrize("sampled", [False, True])
def test_dbn_greedy_stack(binary, members, sampled):
    settings = dict(epochs=2, lr=0.1, k=1, batch_size=20, momentum=0.5, weight_decay=1e-4,
                    sampled=sampled)
    singles = [DBN([64, 12, 6], generator=g).double() for g in gens(0, members)]
    single_gens = gens(10, members)
    for m, g in zip(singles, single_gens):
        greedy_pretrain_dbn(m, binary, generator=g, progress=False, **settings)
    batched = [DBN([64, 12, 6], generator=g).double() for g in gens(0, members)]
    batched_gens = gens(10, members)
    pretrain_dbns(batched, binary, batched_gens, **settings)
    assert_same(singles, batched)
    assert_same_streams(single_gens, batched_gens)


# --- (b) denoising autoencoders -----------------------------------------------------------------

def fresh_daes(n, **kwargs):
    return [DenoisingAutoencoder(64, 10, generator=g, **kwargs).double() for g in gens(0, n)]


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("options", [dict(corruption="masking", level=0.3),
                                     dict(corruption="salt_pepper", level=0.2),
                                     dict(corruption="gaussian", level=0.1, inputs="real")])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_dae_update_for_update(grey, members, options, momentum):
    x = grey[:24]
    for updates in range(1, 4):
        settings = dict(epochs=updates, lr=0.1, batch_size=len(x), momentum=momentum)
        singles, single_gens = fresh_daes(members, **options), gens(10, members)
        single_hist = [train_dae(d, x, generator=g, progress=False, **settings)
                       for d, g in zip(singles, single_gens)]
        batched, batched_gens = fresh_daes(members, **options), gens(10, members)
        batched_hist = train_daes(batched, x, batched_gens, **settings)
        assert_same(singles, batched)
        assert_same_streams(single_gens, batched_gens)
        for a, b in zip(single_hist, batched_hist, strict=True):
            assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
            assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-12)


@pytest.mark.parametrize("members", [1, 2])
def test_sda_greedy_stack(grey, members):
    settings = dict(epochs=2, lr=0.1, batch_size=10)
    singles = [StackedDAE([64, 12, 6], levels=[0.1, 0.3], generator=g).double()
               for g in gens(0, members)]
    single_gens = gens(10, members)
    for m, g in zip(singles, single_gens):
        greedy_pretrain_sda(m, grey, generator=g, progress=False, **settings)
    batched = [StackedDAE([64, 12, 6], levels=[0.1, 0.3], generator=g).double()
               for g in gens(0, members)]
    batched_gens = gens(10, members)
    pretrain_sdas(batched, grey, batched_gens, **settings)
    assert_same(singles, batched)
    assert_same_streams(single_gens, batched_gens)


# --- (c) supervised fine-tuning -----------------------------------------------------------------

def mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Sigmoid(),
                         nn.Linear(16, 10)).double()


@pytest.fixture(scope="module")
def digits64():
    ds = data.load("digits", validation=0.2, seed=0)
    cut = {}
    for split in ("train", "valid", "test"):
        cut[f"x_{split}"] = getattr(ds, f"x_{split}")[:300].double()
        cut[f"y_{split}"] = getattr(ds, f"y_{split}")[:300]
    return dataclasses.replace(ds, **cut)


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("settings", [dict(lr=0.1, momentum=0.9, batch_size=32),
                                      dict(lr=0.3, momentum=0.0, batch_size=50, weight_decay=1e-3,
                                           schedule="linear")])
def test_finetune_epoch_for_epoch(digits64, members, settings):
    epochs = 3
    single_weights, single_hist, single_gens = [], [], gens(10, members)
    for s, g in enumerate(single_gens):
        model, after = mlp(s), []
        result = finetune(model, digits64, epochs=epochs, generator=g, progress=False,
                          callbacks=[lambda rec, m=model, a=after: a.append(
                              [p.detach().clone() for p in m.parameters()])], **settings)
        single_weights.append(after)
        single_hist.append(result.history)
    ens, batched_weights = EnsembleMLP.from_models([mlp(s) for s in range(members)]), []
    batched_gens = gens(10, members)
    history = finetune_ensemble(ens, digits64, batched_gens, epochs=epochs, progress=False,
                                on_epoch=lambda e: batched_weights.append(
                                    [list(m.parameters()) for m in e.to_models()]), **settings)
    assert_same_streams(single_gens, batched_gens)
    for s in range(members):
        for epoch in range(epochs):
            for p, q in zip(single_weights[s][epoch], batched_weights[epoch][s], strict=True):
                assert torch.allclose(p, q, **TOL)
            for key in ("lr", "train_loss", "train_error", "valid_loss", "valid_error", "test_loss",
                        "test_error"):
                want, got = single_hist[s][epoch][key], history[epoch][key]
                assert (got[s] if isinstance(got, list) else got) == pytest.approx(want, rel=1e-10), key


# --- the study's dtype: a one-member batch is the single model, bit for bit ----------------------

def test_one_member_batch_is_bitwise_the_single_model_in_float32(binary, grey):
    """Same formulas in the same form (e.g. the heavy-ball weight update of ``rbm.train``), so a
    batch of one runs the single model's floating-point operations: in float32 the velocity form
    the batched CD used before drifted by 1e-6 in five epochs. (A BLAS whose batched GEMM sums in
    another order than its plain GEMM would break this test, not the parity above.)"""
    x, settings = binary.float(), dict(epochs=5, batch_size=10)
    single, batched = rbm.RBM(64, 20, generator=gens(0, 1)[0]), rbm.RBM(64, 20, generator=gens(0, 1)[0])
    rbm.train(single, x, generator=gens(10, 1)[0], progress=False, **settings)
    train_rbms([batched], x, gens(10, 1), **settings)
    dae, dae_batched = DenoisingAutoencoder(64, 20, generator=gens(0, 1)[0]), \
        DenoisingAutoencoder(64, 20, generator=gens(0, 1)[0])
    train_dae(dae, grey.float(), generator=gens(10, 1)[0], progress=False, **settings)
    train_daes([dae_batched], grey.float(), gens(10, 1), **settings)
    for a, b in ((single, batched), (dae, dae_batched)):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q)
