"""neuralsmith.rnn: the Elman network, starts, the identity constraint, the tasks; experiments.rnn: one run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from neuralsmith import data, experiments, init, rnn
from neuralsmith.experiments import rnn as experiment
from neuralsmith.train import finetune, supervised_loss


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the adding problem ------------------------------------------------------------------------


def test_adding_targets_are_the_marked_sums():
    ds = rnn.adding_problem(30, n_train=200, n_test=50, generator=gen())
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        seq = x.reshape(-1, 30, 2)
        values, markers = seq[..., 0], seq[..., 1]
        assert torch.equal(markers.sum(1), torch.full((x.shape[0],), 2.0))
        marked = values[markers == 1].reshape(-1, 2)  # row-major: each row's two marked values
        assert torch.allclose(marked.sum(1), y)


def test_adding_puts_one_marker_in_each_half():
    markers = rnn.adding_problem(11, n_train=500, n_test=1, generator=gen()).x_train.reshape(-1, 11, 2)[..., 1]
    assert torch.equal(markers[:, :5].sum(1), torch.ones(500))
    assert torch.equal(markers[:, 5:].sum(1), torch.ones(500))


def test_adding_contract_and_mean_baseline():
    ds = rnn.adding_problem(20, n_train=4000, n_test=10, generator=gen())
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.float32
    assert ds.x_train.shape == (4000, 40) and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.image_shape == (20, 2) and ds.n_classes == 0
    assert float(ds.y_train.var()) == pytest.approx(1 / 6, abs=0.01)  # always answering 1: MSE 0.167


def test_adding_is_seeded():
    a = rnn.adding_problem(8, n_train=5, n_test=5, generator=gen(3))
    b = rnn.adding_problem(8, n_train=5, n_test=5, generator=gen(3))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_adding_too_short_names_the_fix():
    with pytest.raises(ValueError, match="length .* >= 2"):
        rnn.adding_problem(1)


def test_adding_empty_split_is_refused():
    with pytest.raises(ValueError, match="n_train and n_test must be >= 1"):
        rnn.adding_problem(5, n_train=0)


# --- reading images as sequences ----------------------------------------------------------------


def test_reading_shape_pixel_and_row():
    ds = data.load("digits")
    assert rnn.reading_shape(ds, "pixel") == (64, 1) and rnn.reading_shape(ds, "row") == (8, 8)


def test_row_reading_feeds_image_rows():
    ds = data.load("digits")
    net = rnn.ElmanRNN(8, 4, 10)
    assert torch.equal(net.sequence(ds.x_train[:2])[1, 3], ds.x_train[1].reshape(8, 8)[3])


def test_reading_unknown_is_refused():
    with pytest.raises(ValueError, match="reading must be one of pixel, row"):
        rnn.reading_shape(data.load("digits"), "column")


def test_reading_needs_matching_image_shape():
    ds = rnn.adding_problem(5, n_train=2, n_test=2, generator=gen())
    from dataclasses import replace
    with pytest.raises(ValueError, match="image_shape"):
        rnn.reading_shape(replace(ds, image_shape=(3, 3)))


# --- the network and the recurrence ----------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_nn_rnn_weights_load_and_give_the_same_outputs(nonlinearity):
    torch.manual_seed(0)
    reference = nn.RNN(3, 6, nonlinearity=nonlinearity)  # sequence-first, PyTorch's own init
    net = rnn.ElmanRNN.from_rnn(reference, output_size=2)
    nn.init.normal_(net.readout.weight, generator=gen(5))
    x = torch.randn(4, 7, 3, generator=gen())
    expected, _ = reference(x.transpose(0, 1))
    assert torch.allclose(net.states(x), expected.transpose(0, 1), atol=1e-6)
    assert torch.allclose(net(x), net.readout(expected[-1]), atol=1e-6)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_elman_scan_matches_nn_rnn(nonlinearity):
    net = rnn.start(rnn.ElmanRNN(2, 5, 1, nonlinearity), "orthogonal", generator=gen())
    nn.init.normal_(net.rnn.bias_hh_l0, generator=gen(1))
    x, h0 = torch.randn(3, 9, 2, generator=gen(2)), torch.randn(3, 5, generator=gen(3))
    r = net.rnn
    scanned = rnn.elman_scan(x, r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0, nonlinearity, h0)
    assert torch.allclose(scanned, net.states(x, h0), atol=1e-5)


def test_flat_rows_and_3d_batches_agree():
    net = rnn.start(rnn.ElmanRNN(2, 4, 1), "orthogonal", generator=gen())
    x = torch.rand(5, 12)
    assert torch.equal(net(x), net(x.reshape(5, 6, 2)))


def test_irnn_with_zero_input_copies_its_state():
    net = rnn.start(rnn.ElmanRNN(3, 8, 1, "relu"), "identity", generator=gen())
    h0 = torch.rand(2, 8, generator=gen(1))  # ReLU states are >= 0
    states = net.states(torch.zeros(2, 50, 3), h0)
    assert torch.allclose(states, h0.unsqueeze(1).expand(2, 50, 8))


def test_tanh_with_identity_does_not_copy():
    net = rnn.start(rnn.ElmanRNN(1, 4, 1, "tanh"), "identity", generator=gen())
    h0 = torch.full((1, 4), 0.9)
    assert float(net.states(torch.zeros(1, 20, 1), h0)[0, -1, 0].detach()) < 0.5  # tanh(h) < h shrinks it


def test_bad_nonlinearity_is_refused():
    with pytest.raises(ValueError, match="nonlinearity must be one of relu, tanh"):
        rnn.ElmanRNN(2, 4, 1, "sigmoid")


def test_construction_draws_nothing():
    state = torch.random.get_rng_state()
    net = rnn.ElmanRNN(3, 5, 2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(float(p.detach().abs().sum()) == 0.0 for p in net.parameters())


def test_zero_size_is_refused():
    with pytest.raises(ValueError, match="must be >= 1"):
        rnn.ElmanRNN(2, 0, 1)


def test_rows_that_do_not_split_into_steps_are_refused():
    with pytest.raises(ValueError, match="rows of steps \\* 2 features"):
        rnn.ElmanRNN(2, 4, 1)(torch.zeros(3, 5))


def test_from_rnn_refuses_a_gru():
    with pytest.raises(ValueError, match="one-layer, one-direction nn.RNN"):
        rnn.ElmanRNN.from_rnn(nn.GRU(2, 3), 1)


def test_from_rnn_refuses_a_stacked_rnn():
    with pytest.raises(ValueError, match="layer by layer"):
        rnn.ElmanRNN.from_rnn(nn.RNN(2, 3, num_layers=2), 1)


def test_elman_scan_bad_nonlinearity_is_refused():
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn.elman_scan(torch.zeros(1, 2, 1), torch.ones(1, 1), torch.eye(1), nonlinearity="gelu")


# --- starts, the hard and the soft constraint ----------------------------------------------------


@pytest.mark.parametrize("scheme, options", [("identity", {"input_std": 0.001}), ("orthogonal", {}),
                                             ("normal", {"std": 0.01}), ("he_normal", {}), ("default", {})])
def test_any_scheme_starts_the_net(scheme, options):
    net = rnn.start(rnn.ElmanRNN(2, 16, 1), scheme, generator=gen(), **options)
    w = net.rnn.weight_hh_l0
    if scheme == "identity":
        assert torch.equal(w, torch.eye(16)) and net.rnn.weight_ih_l0.std() < 0.002
    if scheme == "orthogonal":
        assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    if scheme == "normal":
        assert 0.008 < float(w.detach().std()) < 0.012


def test_lsuv_start_runs_on_a_batch():
    net = rnn.ElmanRNN(1, 8, 10)
    x = data.load("digits").x_train[:128]
    rnn.start(net, "lsuv", batch=x, generator=gen())
    assert torch.isfinite(net(x)).all()


def test_hard_constraint_keeps_w_near_identity_after_training():
    torch.manual_seed(0)
    ds = rnn.adding_problem(10, n_train=128, n_test=16, generator=gen())
    net = rnn.start(rnn.ElmanRNN(2, 12, 1), "identity", constraint="hard", radius=0.05, generator=gen())
    finetune(net, ds, epochs=3, lr=0.5, momentum=0.9, batch_size=16, progress=False, generator=gen())
    raw = net.rnn.parametrizations.weight_hh_l0.original
    distance = torch.linalg.matrix_norm(net.rnn.weight_hh_l0.detach() - torch.eye(12))
    assert float(distance) <= 0.05 + 1e-5 and float(torch.linalg.matrix_norm(raw.detach())) > 0  # it did learn


def test_hard_constraint_projects_a_far_start():
    net = rnn.start(rnn.ElmanRNN(2, 10, 1), "orthogonal", constraint="hard", radius=0.2, generator=gen())
    assert float(torch.linalg.matrix_norm(net.rnn.weight_hh_l0.detach() - torch.eye(10))) == pytest.approx(0.2, rel=1e-4)


def test_unknown_constraint_is_refused():
    with pytest.raises(ValueError, match="constraint must be one of none, hard, soft"):
        rnn.start(rnn.ElmanRNN(2, 4, 1), "identity", constraint="strict")


def test_soft_penalty_gradient_equals_autograd_of_the_penalty():
    net = rnn.start(rnn.ElmanRNN(2, 5, 1), "normal", std=0.3, generator=gen())
    x, y, strength = torch.rand(4, 6), torch.rand(4), 0.7
    rnn.identity_objective(strength)(net, x, y).backward()
    with_penalty = net.rnn.weight_hh_l0.grad.clone()
    net.zero_grad()
    supervised_loss(net, x, y).backward()
    w = net.rnn.weight_hh_l0.detach()
    expected = net.rnn.weight_hh_l0.grad + 2 * strength * (w - torch.eye(5))  # d/dW lambda ||W - I||^2
    assert torch.allclose(with_penalty, expected, atol=1e-6)


def test_soft_penalty_strength_must_not_be_negative():
    with pytest.raises(ValueError, match="strength"):
        rnn.identity_objective(-1.0)


def test_soft_penalty_pulls_w_towards_identity():
    ds = rnn.adding_problem(5, n_train=64, n_test=8, generator=gen())
    start = rnn.start(rnn.ElmanRNN(2, 6, 1), "normal", std=0.5, generator=gen())
    before = float(torch.linalg.matrix_norm(start.rnn.weight_hh_l0.detach() - torch.eye(6)))
    finetune(start, ds, epochs=5, lr=0.05, loss=rnn.identity_objective(0.5), progress=False, generator=gen())
    assert float(torch.linalg.matrix_norm(start.rnn.weight_hh_l0.detach() - torch.eye(6))) < 0.5 * before


# --- gradients through time ---------------------------------------------------------------------


def test_state_gradients_vanish_for_small_gaussian_not_for_identity():
    x, y = torch.rand(32, 60, generator=gen()), torch.rand(32, generator=gen(1))
    irnn = rnn.start(rnn.ElmanRNN(1, 32, 1, "relu"), "identity", generator=gen())
    small = rnn.start(rnn.ElmanRNN(1, 32, 1, "tanh"), "normal", std=0.01, generator=gen())
    g_id, g_small = rnn.state_gradient_norms(irnn, x, y), rnn.state_gradient_norms(small, x, y)
    assert g_id.shape == (60,) and float(g_id[0] / g_id[-1]) > 0.5
    assert float(g_small[0] / g_small[-1]) < 1e-20


def test_state_gradients_match_autograd_through_nn_rnn():
    net = rnn.start(rnn.ElmanRNN(1, 4, 1, "tanh"), "orthogonal", generator=gen())
    x, y = torch.rand(3, 6, generator=gen()), torch.rand(3, generator=gen(1))
    norms = rnn.state_gradient_norms(net, x, y)
    seq = net.sequence(x)
    states = net.states(seq).detach()
    for t in range(6):  # restart the fused nn.RNN from h_{t+1}: dL/dh_{t+1} by autograd
        h = states[:, t].clone().requires_grad_()
        last = net.rnn(seq[:, t + 1:], h.unsqueeze(0))[1][0] if t < 5 else h
        grad, = torch.autograd.grad(supervised_loss(lambda _: net.readout(last), seq, y), h)
        assert float(norms[t]) == pytest.approx(float(grad.norm(dim=1).mean()), rel=1e-4)


# --- the experiment -----------------------------------------------------------------------------


def config(**kw):
    base = dict(length=8, hidden=16, steps=24, n_train=96, n_test=32, batch_size=16, lr=0.01,
                optimizer="adam", device="cpu")
    return experiment.Config(**{**base, **kw})


def test_irnn_learns_the_adding_problem_a_little():
    result = experiment.run(config(length=6, steps=240, init_std=0.001), progress=False)
    assert result["test_mse"] < 0.7 * result["mean_predictor_mse"]


def test_loss_falls_on_sequential_digits():
    result = experiment.run(config(task="digits", reading="row", hidden=32, steps=170, init="orthogonal", cell="tanh",
                            lr=0.01), progress=False)
    assert result["test_error"] < 60.0 and result["metric"] == "test_error"


def test_run_folder_contents(tmp_path):
    result = experiment.run(config(constraint="soft"), tmp_path / "run", progress=False)
    folder = tmp_path / "run"
    saved = json.loads((folder / "results.json").read_text())
    assert saved["test_mse"] == pytest.approx(result["test_mse"]) and saved["seed"] == 0
    assert saved["steps"] == 24 and saved["sequence_steps"] == 8
    assert 'constraint = "soft"' in (folder / "config.toml").read_text()
    assert (folder / "figures" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch") and len(rows) == 1 + 4


def test_run_is_deterministic():
    a, b = experiment.run(config(), progress=False), experiment.run(config(), progress=False)
    assert a["test_mse"] == b["test_mse"]


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    straight = experiment.run(config(steps=48, constraint="hard"), progress=False)
    real = experiment.finetune

    def interrupted(*args, **kwargs):
        def stop(record):
            if record["epoch"] == 4:
                raise KeyboardInterrupt
        return real(*args, **{**kwargs, "callbacks": [*kwargs["callbacks"], stop]})

    monkeypatch.setattr(experiment, "finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(config(steps=48, constraint="hard"), tmp_path, progress=False)
    monkeypatch.undo()
    resumed = experiment.run(config(steps=48, constraint="hard"), tmp_path, mode="resume", progress=False)
    assert resumed["test_mse"] == pytest.approx(straight["test_mse"], rel=1e-6)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,lr,train_loss,train_error,valid_loss,valid_error,test_loss,test_error,seconds"
    assert [line.split(",")[0] for line in lines[1:]] == [str(6 * k) for k in range(1, 9)]
    assert all(line.split(",")[4] == "nan" for line in lines[1:])  # regression: no error rate, also after resume


def test_run_folder_with_other_settings_is_refused(tmp_path):
    experiment.run(config(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="other settings \\(seed\\)"):
        experiment.run(config(seed=1), tmp_path, mode="resume", progress=False)


def test_rerun_without_a_mode_is_refused(tmp_path):
    experiment.run(config(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="--resume .* --overwrite"):
        experiment.run(config(), tmp_path, progress=False)


def test_finished_run_resumes_without_training_and_reads_back(tmp_path):
    first = experiment.run(config(), tmp_path, progress=False)
    again = experiment.run(config(device="auto"), tmp_path, mode="resume", progress=False)  # device may change
    assert again["test_mse"] == pytest.approx(first["test_mse"], rel=1e-5)  # on a GPU: evaluated there
    module, saved = experiments.read_run(tmp_path)
    assert module is experiment and saved == config(device="auto") and saved.kind == "rnn"


def test_config_unknown_task_lists_sources():
    with pytest.raises(ValueError, match="'adding' or a data source"):
        experiment.Config(task="mnist-ish")


def test_config_normal_takes_the_schemes_standard_std():
    assert experiment.Config(init="normal").init_options() == {"std": init.SCHEMES["normal"].defaults()["std"]}
    assert experiment.Config(init="normal", init_std=0.5).init_options() == {"std": 0.5}
    assert experiment.Config(init="identity").init_options() == {}  # LeCun normal input weights
    assert experiment.Config(init="identity", init_std=0.001).init_options() == {"input_std": 0.001}


def test_normal_start_without_std_draws_n_0_001():
    net = experiment.build(config(init="normal", hidden=64), *experiment.load_task(config()), gen())
    assert 0.009 < float(net.rnn.weight_hh_l0.detach().std()) < 0.011


def test_config_init_std_for_a_scheme_without_std():
    with pytest.raises(ValueError, match="--init-std sets"):
        experiment.Config(init="orthogonal", init_std=0.1)


def test_config_unknown_init():
    with pytest.raises(ValueError, match="unknown init scheme 'xavier'"):
        experiment.Config(init="xavier")


def test_config_bad_clip():
    with pytest.raises(ValueError, match="clip"):
        experiment.Config(clip=0.0)


@pytest.mark.parametrize("setting, message", [({"length": 1}, "length .* >= 2"), ({"n_test": 0}, "n_test must be >= 1"),
                                              ({"radius": 0.0}, "radius must be > 0"), ({"lr": -1.0}, "lr must be > 0"),
                                              ({"penalty": -1.0}, "penalty and momentum"),
                                              ({"device": "tpu"}, "device must be one of")])
def test_config_bad_numbers_are_refused_when_made(setting, message):
    with pytest.raises(ValueError, match=message):
        experiment.Config(**setting)


def test_config_bad_steps():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        experiment.Config(steps=0)


def test_config_bad_optimizer():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        experiment.Config(optimizer="lion")


def test_config_scheme_with_unsupported_required_option():
    with pytest.raises(ValueError, match="rnn.start from Python"):
        experiment.Config(init="uniform")


def test_identity_penalty_is_zero_at_the_irnn_start():
    net = rnn.start(rnn.ElmanRNN(2, 7, 1), "identity", generator=gen())
    assert float(init.identity_penalty(net).detach()) == 0.0
    zero = rnn.start(rnn.ElmanRNN(2, 7, 1), "normal", std=0.0)
    assert math.isclose(float(init.identity_penalty(zero, strength=1.0).detach()), 7.0)  # ||0 - I||^2 = 7


def test_any_image_dataset_reads_as_rows():
    from dataclasses import replace
    wide = replace(data.load("digits"), image_shape=(4, 16), name="wide")  # any image_shape that covers the rows
    assert rnn.reading_shape(wide, "row") == (4, 16)
    net = rnn.start(rnn.ElmanRNN(16, 8, 10), "orthogonal", generator=gen())
    result = finetune(net, wide, epochs=1, lr=0.01, optimizer="adam", progress=False, generator=gen())
    assert result.metrics["test_error"] < 90.0
