import pytest
import torch

from neuralsmith import data
from neuralsmith.autoencoder import DenoisingAutoencoder, corrupt, train_dae


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_masking_zeroes_the_level_fraction():
    x = torch.ones(200, 500)
    assert (corrupt(x, "masking", 0.3, generator=gen()) == 0).float().mean() == pytest.approx(0.3, abs=0.01)


def test_salt_pepper_sets_half_of_the_hits_to_one():
    x = torch.full((200, 500), 0.5)
    y = corrupt(x, "salt_pepper", 0.4, generator=gen())
    assert (y == 0).float().mean() == pytest.approx(0.2, abs=0.01)
    assert (y == 1).float().mean() == pytest.approx(0.2, abs=0.01)


def test_gaussian_noise_std():
    x = torch.zeros(400, 500)
    assert corrupt(x, "gaussian", 0.5, generator=gen()).std().item() == pytest.approx(0.5, rel=0.02)


def test_corruption_is_seeded():
    x = torch.rand(10, 10)
    assert torch.equal(corrupt(x, "masking", 0.5, generator=gen(1)), corrupt(x, "masking", 0.5, generator=gen(1)))


def test_loss_is_the_cross_entropy_of_the_clean_input():
    dae = DenoisingAutoencoder(6, 3, corruption="none", generator=gen())
    x = torch.rand(4, 6)
    z = torch.sigmoid((torch.sigmoid(x @ dae.weight.T + dae.hidden_bias)) @ dae.weight + dae.visible_bias)
    manual = -(x * z.log() + (1 - x) * (1 - z).log()).sum(1).mean()
    assert dae.loss(x).item() == pytest.approx(manual.item(), rel=1e-5)


def test_real_inputs_use_squared_error():
    dae = DenoisingAutoencoder(5, 3, corruption="none", inputs="real", generator=gen())
    x = torch.randn(4, 5)
    z = dae.reconstruct(x)
    assert dae.loss(x).item() == pytest.approx((0.5 * (z - x) ** 2).sum(1).mean().item(), rel=1e-5)


def test_untied_decoder_starts_as_transpose():
    dae = DenoisingAutoencoder(5, 3, tied=False, generator=gen())
    assert torch.equal(dae.decoder_weight, dae.weight.detach().T)
    assert sum(p.numel() for p in dae.parameters()) == 2 * 15 + 3 + 5


def test_training_lowers_the_denoising_loss():
    x = data.load("digits").x_train
    dae = DenoisingAutoencoder(64, 32, level=0.2, generator=gen())
    history = train_dae(dae, x, epochs=5, lr=0.05, batch_size=20, generator=gen(), progress=False)
    assert history[-1]["loss"] < 0.9 * history[0]["loss"]


@pytest.mark.parametrize("kind, level", [("masking", 1.5), ("gaussian", -1.0), ("blur", 0.1)])
def test_bad_corruption(kind, level):
    with pytest.raises(ValueError, match="corruption|level"):
        DenoisingAutoencoder(4, 2, corruption=kind, level=level)


def test_bad_input_width():
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        train_dae(DenoisingAutoencoder(4, 2), torch.rand(3, 5), progress=False)


def digits_x(n=120):
    return data.load("digits").x_train[:n]


def test_a_callback_stops_dae_training():
    seen = []

    def stop_after_two(row):
        seen.append(row["epoch"])
        return row["epoch"] == 2

    history = train_dae(DenoisingAutoencoder(64, 8, generator=gen()), digits_x(), epochs=5,
                        generator=gen(1), callbacks=[stop_after_two], progress=False)
    assert [r["epoch"] for r in history] == [1, 2] and seen == [1, 2]
    assert set(history[0]) == {"epoch", "loss"}


def test_resume_from_checkpoint_dir_equals_an_uninterrupted_run(tmp_path):
    x, settings = digits_x(), dict(lr=0.05, batch_size=16, momentum=0.9, progress=False)
    whole = DenoisingAutoencoder(64, 8, tied=False, corruption="salt_pepper", generator=gen())
    want = train_dae(whole, x, epochs=4, generator=gen(1), **settings)
    first = DenoisingAutoencoder(64, 8, tied=False, corruption="salt_pepper", generator=gen())
    train_dae(first, x, epochs=2, generator=gen(1), checkpoint_dir=tmp_path, **settings)
    resumed = DenoisingAutoencoder(64, 8, tied=False, corruption="salt_pepper", generator=gen(5))
    got = train_dae(resumed, x, epochs=4, generator=gen(9), checkpoint_dir=tmp_path, **settings)
    assert got == want
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_resume_with_other_settings_is_refused(tmp_path):
    x = digits_x()
    train_dae(DenoisingAutoencoder(64, 8, generator=gen()), x, epochs=1, lr=0.05,
              checkpoint_dir=tmp_path, generator=gen(1), progress=False)
    with pytest.raises(ValueError, match="lr=0.05"):
        train_dae(DenoisingAutoencoder(64, 8, generator=gen()), x, epochs=2, lr=0.5,
                  checkpoint_dir=tmp_path, generator=gen(1), progress=False)


def test_a_diverging_dae_is_rolled_back_to_its_last_finite_state():
    x = torch.randn(40, 5, generator=gen(3)) * 1e3
    dae = DenoisingAutoencoder(5, 3, corruption="none", inputs="real", generator=gen())
    history = train_dae(dae, x, epochs=6, lr=1e3, batch_size=40, generator=gen(1), progress=False)
    assert len(history) < 6
    assert all(torch.isfinite(p).all() for p in dae.parameters())
