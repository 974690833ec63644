"""Deep hybrid models: representations, combined beliefs, the denoising statistics against
autograd, joint one-stage training (semi-supervised, online), and bad inputs."""

import pytest
import torch

from neuralsmith import hybrid
from neuralsmith.autoencoder import DenoisingAutoencoder
from neuralsmith.hybrid import DHBM, DHDA, denoising_gradients, train_hybrid
from neuralsmith.rbm import ClassRBM, train_classrbm


@pytest.fixture
def toy():
    """Three classes, each two noisy binary prototypes over 16 units."""
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 16, generator=g) > 0.5).float()
    y = torch.randint(0, 3, (300,), generator=g)
    x = (protos[y] + (torch.rand(300, 16, generator=g) < 0.1).float()) % 2
    return x, y


def test_representations_feed_each_expert(toy):
    x, _ = toy
    model = DHBM([16, 8, 6, 4], 3, generator=torch.Generator().manual_seed(0))
    reps = model.represent(x[:5])
    assert [r.shape for r in reps] == [(5, 16), (5, 8), (5, 6)]
    assert torch.equal(reps[0], x[:5]) and ((reps[1] > 0) & (reps[1] < 1)).all()


def test_top_down_pass_changes_the_lower_representations(toy):
    x, _ = toy
    a = DHBM([16, 8, 6], 3, generator=torch.Generator().manual_seed(0))
    b = DHBM([16, 8, 6], 3, top_down=False, generator=torch.Generator().manual_seed(0))
    ra, rb = a.represent(x[:5]), b.represent(x[:5])
    bottom_up = torch.sigmoid(a.layers[0].hidden_input(x[:5]))
    assert torch.allclose(rb[1], bottom_up) and not torch.allclose(ra[1], bottom_up)
    top = torch.sigmoid(a.layers[1].hidden_input(bottom_up))
    assert torch.allclose(ra[1], torch.sigmoid(a.layers[0].hidden_input(x[:5]) + top @ a.layers[1].weight))


@pytest.mark.parametrize("combine", ["mean", "product"])
def test_combined_beliefs_are_distributions_made_of_the_experts(toy, combine):
    x, _ = toy
    model = DHDA([16, 8, 6], 3, combine=combine, generator=torch.Generator().manual_seed(0))
    p, experts = model.predict_proba(x[:7]), model.expert_log_probs(x[:7]).exp()
    assert torch.allclose(p.sum(1), torch.ones(7), atol=1e-6)
    if combine == "mean":
        assert torch.allclose(p, experts.mean(0), atol=1e-6)
    else:
        geo = experts.log().mean(0).exp()
        assert torch.allclose(p, geo / geo.sum(1, keepdim=True), atol=1e-6)


@pytest.mark.parametrize("unsupervised,ratio", [("likelihood", 1), ("entropy", 2)])
def test_one_layer_dhbm_trains_exactly_as_a_classrbm(toy, unsupervised, ratio):
    x, y = toy
    kw = dict(epochs=2, batch_size=10, objective="semisupervised", x_unlabeled=x[100:],
              alpha=0.1, unsupervised=unsupervised, unlabeled_ratio=ratio, progress=False)
    a = ClassRBM.from_data(x[:100], y[:100], 5, generator=torch.Generator().manual_seed(1))
    b = DHBM([16, 5], 3, generator=torch.Generator().manual_seed(1)).init_biases_(x[:100], y[:100])
    train_classrbm(a, x[:100], y[:100], generator=torch.Generator().manual_seed(2), **kw)
    train_hybrid(b, x[:100], y[:100], generator=torch.Generator().manual_seed(2), **kw)
    for name, p in a.named_parameters():
        assert torch.equal(p, getattr(b.layers[0], name)), name


def test_denoising_gradient_equals_autograd_of_the_dae_loss():
    g = torch.Generator().manual_seed(0)
    layer = ClassRBM(10, 6, 3, dtype=torch.float64, generator=g)
    with torch.no_grad():
        layer.visible_bias.normal_(generator=g)
        layer.hidden_bias.normal_(generator=g)
    x = torch.rand(9, 10, generator=g, dtype=torch.float64)
    grads = denoising_gradients(layer, x, "masking", 0.3, torch.Generator().manual_seed(5))
    with torch.random.fork_rng():  # its constructor checks the level with a global draw
        dae = DenoisingAutoencoder(10, 6, corruption="masking", level=0.3, generator=g).double()
    with torch.no_grad():
        for name in ("weight", "hidden_bias", "visible_bias"):
            getattr(dae, name).copy_(getattr(layer, name))
    loss = dae.loss(x, generator=torch.Generator().manual_seed(5))
    auto = torch.autograd.grad(loss, [dae.weight, dae.visible_bias, dae.hidden_bias])
    for name, a in zip(("weight", "visible_bias", "hidden_bias"), auto):
        assert torch.allclose(grads[name], -a, atol=1e-12), name


@pytest.mark.parametrize("kind", ["dhbm", "dhda"])
def test_two_layer_model_learns_jointly(toy, kind):
    x, y = toy
    g = torch.Generator().manual_seed(0)
    model = hybrid.build(kind, [16, 10, 10], 3, generator=g).init_biases_(x, y)
    hist = train_hybrid(model, x[:250], y[:250], epochs=6, lr=0.1, alpha=0.1, generator=g,
                        schedule="constant", progress=False)
    assert hist.rows[-1]["train_error"] < 5.0
    errors = (model.expert_log_probs(x[250:]).argmax(-1) != y[250:]).float().mean(1)
    assert (errors < 0.3).all()  # every expert learned, the upper one from the lower's features
    assert float((model.predict(x[250:]) != y[250:]).float().mean()) < 0.1


@pytest.mark.parametrize("kind", ["dhbm", "dhda"])
def test_online_semisupervised_pass_over_a_stream(toy, kind):
    x, y = toy
    g = torch.Generator().manual_seed(0)
    model = hybrid.build(kind, [16, 10, 10], 3, generator=g).init_biases_(x[:30], y[:30])
    hist = train_hybrid(model, x[:30], y[:30], x_unlabeled=x[30:250], objective="semisupervised",
                        batching="stream", epochs=1, batch_size=5, lr=0.1, alpha=0.1, generator=g,
                        progress=False)
    assert len(hist) == 1 and not hist.diverged
    bottom = model.expert_log_probs(x[250:])[0].argmax(-1)  # the upper expert needs longer
    assert float((bottom != y[250:]).float().mean()) < 0.5  # chance: 0.67


def test_resumed_run_ends_as_an_uninterrupted_one(toy, tmp_path):
    x, y = toy

    def run(epochs, folder):
        model = DHBM([16, 6, 5], 3, generator=torch.Generator().manual_seed(0))
        train_hybrid(model, x[:50], y[:50], x_unlabeled=x[50:], objective="semisupervised",
                     epochs=epochs, generator=torch.Generator().manual_seed(1),
                     schedule="constant",  # a 2-epoch run is the first 2 of 3 only at a constant rate
                     checkpoint_dir=folder, progress=False)
        return model

    whole = run(3, tmp_path / "a")
    run(2, tmp_path / "b")
    for a, b in zip(whole.parameters(), run(3, tmp_path / "b").parameters()):
        assert torch.equal(a, b)


def test_no_hidden_layer_is_refused():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        DHBM([16], 3)


def test_unknown_combination_is_refused():
    with pytest.raises(ValueError, match="combine must be one of mean, product"):
        DHBM([16, 4], 3, combine="vote")


def test_unknown_model_kind_is_refused():
    with pytest.raises(ValueError, match="model must be one of dhbm, dhda"):
        hybrid.build("dbm", [16, 4], 3)


def test_bad_corruption_level_is_refused():
    with pytest.raises(ValueError, match="probability in"):
        DHDA([16, 4], 3, level=1.5, generator=torch.Generator())


def test_inputs_of_the_wrong_width_are_refused(toy):
    x, y = toy
    with pytest.raises(ValueError, match=r"shape \(n >= 1, 12\)"):
        train_hybrid(DHBM([12, 4], 3, generator=torch.Generator()), x, y, progress=False)


def test_no_generator_means_one_fresh_logged_seed_for_the_stack(caplog):
    import logging
    state = torch.get_rng_state()
    with caplog.at_level(logging.INFO, logger="neuralsmith.seeds"):
        DHBM([16, 8, 4], 3)
    assert caplog.text.count("drew seed") == 1 and torch.equal(torch.get_rng_state(), state)
