import pytest
import torch
from torch import nn

from neuralsmith import data
from neuralsmith.ensemble import EnsembleMLP, finetune_ensemble
from neuralsmith.train import finetune


def member(seed, activation=nn.Sigmoid):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 20), activation(), nn.Linear(20, 20), activation(), nn.Linear(20, 10))


def test_round_trip_and_forward_match_members():
    models = [member(s) for s in range(3)]
    ens = EnsembleMLP.from_models(models)
    x = torch.rand(5, 64)
    for s, (m, back) in enumerate(zip(models, ens.to_models())):
        assert torch.allclose(ens(x)[s], m(x), atol=1e-6)
        assert torch.allclose(back(x), m(x), atol=1e-6)


def test_each_seed_trains_as_if_alone():
    ds = data.load("digits", validation=0.2, seed=0)
    seeds = [0, 1, 2]
    ens = EnsembleMLP.from_models([member(s) for s in seeds])
    history = finetune_ensemble(ens, ds, [torch.Generator().manual_seed(10 + s) for s in seeds],
                                epochs=3, lr=0.1, momentum=0.9, batch_size=32, progress=False)
    for i, s in enumerate(seeds):
        alone = finetune(member(s), ds, epochs=3, lr=0.1, momentum=0.9, batch_size=32,
                         generator=torch.Generator().manual_seed(10 + s), progress=False)
        assert [h["train_loss"][i] for h in history] == pytest.approx(
            [h["train_loss"] for h in alone.history], rel=1e-4)
        assert [h["test_error"][i] for h in history] == pytest.approx(
            [h["test_error"] for h in alone.history], abs=0.25)  # an argmax tie may flip one example


def test_members_must_share_an_architecture():
    with pytest.raises(ValueError, match="same number of layers"):
        EnsembleMLP.from_models([member(0), nn.Sequential(nn.Linear(64, 10))])


def test_members_must_share_an_activation():
    with pytest.raises(ValueError, match="activation"):
        EnsembleMLP.from_models([member(0), member(1, nn.Tanh)])


def test_one_generator_per_member():
    ds = data.load("digits")
    with pytest.raises(ValueError, match="one generator per member"):
        finetune_ensemble(EnsembleMLP.from_models([member(0), member(1)]), ds,
                          [torch.Generator()], epochs=1, progress=False)


# --- batched pre-training equals pre-training each seed alone -----------------------------------

from neuralsmith.ensemble import pretrain_dbns, pretrain_sdas, train_rbms  # noqa: E402
from neuralsmith.rbm import RBM  # noqa: E402
from neuralsmith.stack import DBN, StackedDAE, greedy_pretrain_dbn, greedy_pretrain_sda  # noqa: E402


def gens(base, n=3):
    return [torch.Generator().manual_seed(base + s) for s in range(n)]


def assert_same_params(singles, batched, atol):
    for a, b in zip(singles, batched):
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.allclose(p, q, atol=atol)


def test_batched_sda_pretraining_equals_each_alone():
    x = data.load("digits").x_train[:400]
    singles = [StackedDAE([64, 12, 6], levels=0.3, generator=g) for g in gens(0)]
    for m, g in zip(singles, gens(10)):
        greedy_pretrain_sda(m, x, epochs=2, lr=0.1, batch_size=10, generator=g, progress=False)
    batched = [StackedDAE([64, 12, 6], levels=0.3, generator=g) for g in gens(0)]
    pretrain_sdas(batched, x, gens(10), epochs=2, lr=0.1, batch_size=10)
    assert_same_params(singles, batched, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_batched_dbn_pretraining_equals_each_alone(k):
    x = data.load("digits", binarize="threshold").x_train[:400]
    singles = [DBN([64, 12, 6], generator=g) for g in gens(0)]
    for m, g in zip(singles, gens(10)):
        greedy_pretrain_dbn(m, x, epochs=2, lr=0.1, k=k, batch_size=10, generator=g, progress=False)
    batched = [DBN([64, 12, 6], generator=g) for g in gens(0)]
    pretrain_dbns(batched, x, gens(10), epochs=2, lr=0.1, k=k, batch_size=10)
    assert_same_params(singles, batched, atol=1e-4)


def test_batched_rbms_need_bernoulli_units():
    with pytest.raises(ValueError, match="Bernoulli"):
        train_rbms([RBM(4, 2, visible="gaussian")], torch.rand(5, 4), gens(0, 1))


def test_batched_training_refuses_what_the_single_code_refuses():
    x = torch.rand(10, 4)
    with pytest.raises(ValueError, match="momentum"):
        train_rbms([RBM(4, 2)], x, gens(0, 1), momentum=1.0)
    with pytest.raises(ValueError, match="schedule"):
        finetune_ensemble(EnsembleMLP.from_models([member(0)]), data.load("digits"), gens(0, 1),
                          schedule="steps", progress=False)
    from neuralsmith.autoencoder import DenoisingAutoencoder
    from neuralsmith.ensemble import train_daes

    with pytest.raises(ValueError, match="corruption"):
        train_daes([DenoisingAutoencoder(4, 2, level=0.1), DenoisingAutoencoder(4, 2, level=0.2)],
                   x, gens(0, 2))
    with pytest.raises(ValueError, match=r"shape \(n, 4\) or \(models, n, 4\)"):
        train_daes([DenoisingAutoencoder(4, 2)], torch.rand(10, 5), gens(0, 1))


def test_pretrain_sdas_returns_each_members_layer_histories():
    x = data.load("digits").x_train[:60]
    sdas = [StackedDAE([64, 8, 4], generator=g) for g in gens(0, 2)]
    histories = pretrain_sdas(sdas, x, gens(10, 2), epochs=3, batch_size=20)
    assert len(histories) == 2 and all(len(h) == 2 and len(h[0]) == 3 for h in histories)


def test_to_models_keeps_the_dtype():
    ens = EnsembleMLP.from_models([member(0).double()])
    assert ens.to_models()[0][0].weight.dtype == torch.float64
