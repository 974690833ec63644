import pytest
import torch

from neuralsmith import checkpoint


def test_round_trip_with_generator_state(tmp_path):
    g = torch.Generator().manual_seed(5)
    torch.rand(3, generator=g)
    tensors = {"weight": torch.randn(4, 3), "gen": checkpoint.generator_state(g)}
    checkpoint.save(tmp_path, "c", tensors, {"epoch": 2})
    loaded, meta = checkpoint.load(tmp_path, "c")
    assert meta == {"epoch": 2} and torch.equal(loaded["weight"], tensors["weight"])
    g2 = checkpoint.restore_generator(torch.Generator(), loaded["gen"])
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=g2))


def test_missing_checkpoint(tmp_path):
    assert not checkpoint.exists(tmp_path, "c")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path, "c")


def test_corrupt_tensors_refused(tmp_path):
    checkpoint.save(tmp_path, "c", {"w": torch.ones(1)}, {})
    (tmp_path / "c.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        checkpoint.load(tmp_path, "c")


# --- saved models: every kind through checkpoint.save_module / load_module ---------------------

import json  # noqa: E402

from neuralsmith import hybrid, stack  # noqa: E402
from neuralsmith.rbm import RBM, classrbm, model as rbm_model  # noqa: E402


def gen():
    return torch.Generator().manual_seed(0)


# (make, save, load, JSON entry naming the kind, an output to compare)
KINDS = {
    "rbm": (lambda: RBM(6, 4, visible="gaussian", learn_std=True, generator=gen(), dtype=torch.float64),
            rbm_model.save, rbm_model.load, "rbm", lambda m, x: m.free_energy(x)),
    "classrbm": (lambda: classrbm.ClassRBM(6, 4, 3, generator=gen()),
                 classrbm.save, classrbm.load, "classrbm", lambda m, x: m.log_proba(x)),
    "dhbm": (lambda: hybrid.DHBM([6, 4, 3], 3, generator=gen(), dtype=torch.float64),
             hybrid.save, hybrid.load, "hybrid", lambda m, x: m.log_proba(x)),
    "dhda": (lambda: hybrid.DHDA([6, 4, 3], 3, level=0.4, combine="product", generator=gen()),
             hybrid.save, hybrid.load, "hybrid", lambda m, x: m.log_proba(x)),
    "dbn": (lambda: stack.DBN([6, 4, 3], visible="gaussian", generator=gen()),
            lambda m, d: stack.save_stack(m, d), lambda d: stack.load_stack(d)[0], "kind",
            lambda m, x: m(x)),
    "sda": (lambda: stack.StackedDAE([6, 4, 3], tied=False, generator=gen()),
            lambda m, d: stack.save_stack(m, d), lambda d: stack.load_stack(d)[0], "kind",
            lambda m, x: m(x)),
}
FILE = {"dbn": "stack", "sda": "stack"}


@pytest.mark.parametrize("kind", KINDS)
def test_saved_model_loads_with_identical_state_and_outputs(tmp_path, kind):
    make, save_fn, load_fn, _, output = KINDS[kind]
    model = make()
    save_fn(model, tmp_path)
    back = load_fn(tmp_path)
    assert type(back) is type(model) and back.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert back.state_dict()[key].dtype == value.dtype and torch.equal(back.state_dict()[key], value)
    x = torch.rand(5, 6, generator=gen(), dtype=next(model.parameters()).dtype)
    assert torch.equal(output(back, x), output(model, x))


@pytest.mark.parametrize("kind", KINDS)
def test_json_layout_names_the_kind(tmp_path, kind):
    make, save_fn, _, key, _ = KINDS[kind]
    model = make()
    save_fn(model, tmp_path)
    meta = json.loads((tmp_path / f"{FILE.get(kind, 'model')}.json").read_text())
    expected = model.config() if key != "kind" else model.config()["kind"]
    assert meta[key] == expected


def test_old_stack_json_still_loads(tmp_path):
    sda = stack.StackedDAE([6, 4], generator=gen())
    checkpoint.save(tmp_path, "stack", sda.state_dict(), {"kind": "sda", "sizes": [6, 4], "data": "digits"})
    back, meta = stack.load_stack(tmp_path)
    assert meta["data"] == "digits" and torch.equal(back.layers[0].weight, sda.layers[0].weight)


def test_rbm_training_checkpoint_loads_as_an_rbm(tmp_path):
    from neuralsmith.rbm import train

    rbm = RBM(6, 4, generator=gen())
    train(rbm, (torch.rand(20, 6, generator=gen()) > 0.5).float(), epochs=1, batch_size=10,
          generator=gen(), progress=False, checkpoint_dir=tmp_path)
    assert torch.equal(rbm_model.load(tmp_path, "last").weight, rbm.weight)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("missing", ["json", "safetensors"])
def test_missing_file_names_what_writes_it(tmp_path, kind, missing):
    make, save_fn, load_fn, _, _ = KINDS[kind]
    save_fn(make(), tmp_path)
    (tmp_path / f"{FILE.get(kind, 'model')}.{missing}").unlink()
    with pytest.raises(FileNotFoundError, match="here .expected .*written by `neuralsmith"):
        load_fn(tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_kind_refused(tmp_path, kind):
    make, save_fn, load_fn, key, _ = KINDS[kind]
    name = FILE.get(kind, "model")
    checkpoint.save(tmp_path, name, {"w": torch.ones(1)}, {"something": {}})
    with pytest.raises(ValueError, match=f"holds no .*no '{key}' entry.*give a folder written by"):
        load_fn(tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_safetensors_refused(tmp_path, kind):
    make, save_fn, load_fn, _, _ = KINDS[kind]
    save_fn(make(), tmp_path)
    (tmp_path / f"{FILE.get(kind, 'model')}.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ValueError, match="safetensors|write it again"):
        load_fn(tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_tensors_that_do_not_fit_the_config_refused(tmp_path, kind):
    make, save_fn, load_fn, _, _ = KINDS[kind]
    model = make()
    save_fn(model, tmp_path)
    name = FILE.get(kind, "model")
    tensors, meta = checkpoint.load(tmp_path, name)
    tensors = {k: v[..., :1] if v.dim() else v for k, v in tensors.items()}  # wrong shapes
    checkpoint.save(tmp_path, name, tensors, meta)
    with pytest.raises(ValueError, match="damaged .*write it again with `neuralsmith"):
        load_fn(tmp_path)


def test_unknown_stack_kind_refused(tmp_path):
    checkpoint.save(tmp_path, "stack", {"w": torch.ones(1)}, {"kind": "vae", "sizes": [6, 4]})
    with pytest.raises(ValueError, match=r"stack\.json: unknown stack kind 'vae' .expected dbn, sda or dbm"):
        stack.load_stack(tmp_path)
