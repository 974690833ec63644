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
