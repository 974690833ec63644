"""neuralsmith.linear_depth: the task, deep linear nets, Saxe's starts, learning time; experiments.linear_depth: the sweep."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from neuralsmith import experiments
from neuralsmith import linear_depth as ld
from neuralsmith.experiments import linear_depth as experiment


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def task():
    return ld.linear_task(8, n_train=256, n_test=64, generator=gen())


def product(net):
    w = net[0].weight
    for layer in list(net)[1:]:
        w = layer.weight @ w
    return w.detach()


# --- the task ------------------------------------------------------------------------------------


def test_task_is_an_exact_linear_map(task):
    solution = torch.linalg.lstsq(task.x_train.double(), task.y_train.double()).solution
    assert torch.allclose(task.x_train.double() @ solution, task.y_train.double(), atol=1e-5)
    assert torch.allclose(task.x_test.double() @ solution, task.y_test.double(), atol=1e-4)


def test_task_inputs_share_the_teachers_input_singular_vectors():
    ds = ld.linear_task(6, n_train=50_000, n_test=1, generator=gen())
    x, y = ds.x_train.double(), ds.y_train.double()
    teacher = torch.linalg.lstsq(x, y).solution.T  # (out, in)
    _, _, vh = torch.linalg.svd(teacher)
    eigenvalues, axes = torch.linalg.eigh(x.T @ x / x.shape[0])
    overlap = (vh @ axes.flip(1)).abs()  # |<v_i, e_j>|: the identity up to sampling noise
    assert torch.allclose(overlap, torch.eye(6, dtype=overlap.dtype), atol=0.1)


def test_task_contract(task):
    assert task.x_train.dtype == torch.float32 and task.y_train.shape == (256, 8) and task.n_classes == 0


def test_task_bad_size_is_refused():
    with pytest.raises(ValueError, match="width, n_train and n_test must be >= 1"):
        ld.linear_task(0)


# --- networks and starts --------------------------------------------------------------------------


def test_deep_linear_has_no_biases_and_draws_nothing():
    state = torch.random.get_rng_state()
    net = ld.deep_linear(5, 4)
    assert len(net) == 4 and all(isinstance(m, nn.Linear) and m.bias is None for m in net)
    assert torch.equal(torch.random.get_rng_state(), state) and all(float(m.weight.detach().abs().sum()) == 0 for m in net)


def test_deep_linear_bad_depth_is_refused():
    with pytest.raises(ValueError, match="depth"):
        ld.deep_linear(5, 0)


def test_orthogonal_product_is_orthogonal_at_any_depth(task):
    net = ld.start(ld.deep_linear(8, 32), "orthogonal", task.x_train, generator=gen())
    p = product(net)
    assert torch.allclose(p @ p.T, torch.eye(8), atol=1e-4)


def test_scaled_gaussian_product_is_badly_conditioned(task):
    net = ld.start(ld.deep_linear(8, 32), "normal", task.x_train, generator=gen())
    singular = torch.linalg.svdvals(product(net))
    assert float(singular[0] / singular[-1]) > 1e3  # vs exactly 1 for the orthogonal start


def test_pretrained_starts_as_the_identity_map(task):
    net = ld.pretrain_(ld.deep_linear(8, 5), task.x_train)
    assert torch.allclose(net(task.x_train), task.x_train, atol=1e-4)


def test_pretrained_first_layer_decorrelates_its_input(task):
    net = ld.pretrain_(ld.deep_linear(8, 3), task.x_train)
    h = net[0](task.x_train).detach()
    cov = torch.cov(h.T)
    variances = cov.diagonal()
    assert torch.allclose(cov, torch.diag(variances), atol=1e-4)
    assert torch.all(variances[:-1] >= variances[1:])  # largest principal direction first
    for layer in list(net)[1:-1]:  # later layers see decorrelated input: identity up to signs
        assert torch.allclose(layer.weight.abs(), torch.eye(8), atol=1e-4)


def test_pretrained_is_deterministic(task):
    a = ld.pretrain_(ld.deep_linear(8, 3), task.x_train)
    b = ld.pretrain_(ld.deep_linear(8, 3), task.x_train)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_pretrain_refuses_one_layer(task):
    with pytest.raises(ValueError, match="2 or more square, bias-free"):
        ld.pretrain_(ld.deep_linear(8, 1), task.x_train)


def test_pretrain_refuses_biases(task):
    with pytest.raises(ValueError, match="bias-free"):
        ld.pretrain_(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8)), task.x_train)


def test_start_unknown_scheme_is_refused(task):
    with pytest.raises(ValueError, match="unknown init scheme"):
        ld.start(ld.deep_linear(8, 2), "saxe", task.x_train)


# --- learning time ---------------------------------------------------------------------------------


def test_learning_time_reaches_the_threshold(task):
    net = ld.start(ld.deep_linear(8, 2), "orthogonal", task.x_train, generator=gen())
    epochs, losses = ld.learning_time(net, task, lr=0.5, threshold=0.05, max_epochs=200, generator=gen())
    assert epochs == len(losses) - 1 and losses[-1] <= 0.05 * float(task.y_train.pow(2).mean())
    assert all(a > b for a, b in zip(losses[:5], losses[1:6]))  # the loss falls


def test_learning_time_none_when_out_of_budget(task):
    net = ld.start(ld.deep_linear(8, 2), "orthogonal", task.x_train, generator=gen())
    epochs, losses = ld.learning_time(net, task, lr=0.01, max_epochs=2, generator=gen())
    assert epochs is None and len(losses) == 3


def test_learning_time_divergence_stops(task, caplog):
    net = ld.start(ld.deep_linear(8, 4), "orthogonal", task.x_train, generator=gen())
    epochs, losses = ld.learning_time(net, task, lr=50.0, max_epochs=50, generator=gen())
    assert epochs is None and len(losses) < 51 and "diverged" in caplog.text


def test_learning_time_bad_lr_is_refused(task):
    with pytest.raises(ValueError, match="lr and threshold must be > 0"):
        ld.learning_time(ld.deep_linear(8, 2), task, lr=0.0)


def test_orthogonal_learns_a_deep_net_where_the_scaled_gaussian_stalls(task):
    config = experiment.Config(depths=(2, 16), inits=("orthogonal", "normal"), width=8, n_train=256,
                               thresholds=(0.05,), max_epochs=60, device="cpu")
    epochs = {(r["init"], r["depth"]): r["epochs"]["0.05"] for r in experiment.run(config, progress=False)["records"]}
    assert epochs[("orthogonal", 16)] is not None and epochs[("orthogonal", 16)] <= 4 * epochs[("orthogonal", 2)]
    assert epochs[("normal", 16)] is None


# --- the sweep -------------------------------------------------------------------------------------


def small(**kw):
    return experiment.Config(**{**dict(depths=(2, 3), inits=("orthogonal", "pretrained"), width=4, n_train=64,
                                       max_epochs=40, thresholds=(0.1, 0.02), device="cpu"), **kw})


def test_sweep_run_folder(tmp_path):
    results = experiment.run(small(), tmp_path, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [(r["depth"], r["init"]) for r in saved["records"]] == [(2, "orthogonal"), (2, "pretrained"),
                                                                   (3, "orthogonal"), (3, "pretrained")]
    assert set(saved["depth_ratio"]) == {"0.1", "0.02"} and saved["seed"] == 0
    assert results["records"][0]["lr"] == 0.5  # lr / depth
    assert (tmp_path / "figures" / "learning_time.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "metrics.csv").read_text().startswith("init,depth,epoch,loss")


def test_sweep_looser_threshold_is_reached_first(tmp_path):
    for record in experiment.run(small(), progress=False)["records"]:
        loose, tight = record["epochs"]["0.1"], record["epochs"]["0.02"]
        assert loose is not None and (tight is None or loose <= tight)


def test_sweep_resumes_by_cell(tmp_path, monkeypatch):
    first = experiment.run(small(), tmp_path, progress=False)
    calls = []
    monkeypatch.setattr(experiment, "_cell", lambda *args: calls.append(args))
    again = experiment.run(small(), tmp_path, mode="resume", progress=False)
    assert calls == [] and again["records"] == first["records"]


def test_sweep_is_deterministic():
    assert experiment.run(small(), progress=False) == experiment.run(small(), progress=False)


def test_sweep_folder_with_other_settings_is_refused(tmp_path):
    experiment.run(small(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="other settings \\(lr\\)"):
        experiment.run(small(lr=0.5), tmp_path, mode="resume", progress=False)


def test_sweep_rerun_without_a_mode_is_refused_and_overwrite_starts_afresh(tmp_path, monkeypatch):
    first = experiment.run(small(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="--resume .* --overwrite"):
        experiment.run(small(), tmp_path, progress=False)
    (tmp_path / "checkpoints" / "orthogonal-depth2.json").write_text("{}")  # overwrite must not read it
    assert experiment.run(small(), tmp_path, mode="overwrite", progress=False) == {
        **first, "figure": str(tmp_path / "figures" / "learning_time.png")}


def test_sweep_run_reads_back_by_kind(tmp_path):
    experiment.run(small(), tmp_path, progress=False)
    module, saved = experiments.read_run(tmp_path)
    assert module is experiment and saved == small() and saved.kind == "linear-depth"


def test_lr_scaling_none_keeps_the_rate():
    assert small(lr_scaling="none").layer_lr(8) == 1.0 and small().layer_lr(8) == 0.125


def test_config_empty_depths_is_refused():
    with pytest.raises(ValueError, match="depths must be"):
        experiment.Config(depths=())


def test_config_pretrained_depth_one_is_refused():
    with pytest.raises(ValueError, match="depth >= 2"):
        experiment.Config(depths=(1, 2))


def test_config_unknown_start_is_refused():
    with pytest.raises(ValueError, match="unknown start 'xavier'"):
        experiment.Config(inits=("xavier",))


def test_config_bad_threshold_is_refused():
    with pytest.raises(ValueError, match="thresholds"):
        experiment.Config(thresholds=(0.0,))


def test_config_bad_lr_scaling_is_refused():
    with pytest.raises(ValueError, match="lr_scaling"):
        experiment.Config(lr_scaling="sqrt")


@pytest.mark.parametrize("setting, message", [({"width": 0}, "width must be >= 1"), ({"lr": 0.0}, "lr must be > 0"),
                                              ({"inits": ()}, "at least one start"),
                                              ({"device": "tpu"}, "device must be one of")])
def test_config_bad_numbers_are_refused(setting, message):
    with pytest.raises(ValueError, match=message):
        experiment.Config(**setting)
