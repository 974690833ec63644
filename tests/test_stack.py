import shutil

import pytest
import torch
from torch import nn

from neuralsmith import checkpoint
from neuralsmith.stack import StackedDAE, greedy_pretrain_sda, stack_to_mlp


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_to_mlp_copies_encoders_exactly():
    sda = StackedDAE([12, 8, 5], generator=gen())
    mlp = sda.to_mlp(3)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(8, 12), (5, 8), (3, 5)]
    assert torch.equal(linears[0].weight, sda.layers[0].weight)
    assert torch.equal(linears[1].bias, sda.layers[1].hidden_bias)
    x = torch.rand(4, 12)
    assert torch.allclose(mlp[:4](x), sda(x))  # the MLP's hidden layers compute the stack's code


def test_levels_per_layer():
    sda = StackedDAE([10, 8, 6, 4], levels=[0.1, 0.2, 0.3])
    assert [d.level for d in sda.layers] == [0.1, 0.2, 0.3]


def test_each_layer_trains_on_the_codes_below():
    x = torch.rand(60, 12)
    sda = StackedDAE([12, 8, 5], generator=gen())
    histories = greedy_pretrain_sda(sda, x, epochs=3, lr=0.1, generator=gen(), progress=False)
    assert len(histories) == 2 and all(len(h) == 3 for h in histories)


def test_interrupted_stack_resumes_to_the_same_result(tmp_path):
    x = torch.rand(60, 12)
    straight = StackedDAE([12, 8, 5], generator=gen())
    greedy_pretrain_sda(straight, x, epochs=2, generator=gen(1), progress=False)
    first = StackedDAE([12, 8, 5], generator=gen())
    greedy_pretrain_sda(first, x, epochs=2, generator=gen(1), progress=False, checkpoint_dir=tmp_path)
    (tmp_path / "layer-1.json").unlink()  # as if killed while training layer 1
    resumed = StackedDAE([12, 8, 5], generator=gen())  # a rerun builds the same initial stack
    greedy_pretrain_sda(resumed, x, epochs=2, generator=gen(99), progress=False, checkpoint_dir=tmp_path)
    assert checkpoint.exists(tmp_path, "layer-1")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_stack_interrupted_mid_layer_resumes_within_the_layer(tmp_path):
    x = torch.rand(60, 12)
    straight = StackedDAE([12, 8, 5], generator=gen())
    greedy_pretrain_sda(straight, x, epochs=2, generator=gen(1), progress=False)
    first = StackedDAE([12, 8, 5], generator=gen())
    greedy_pretrain_sda(first, x, epochs=1, generator=gen(1), progress=False, checkpoint_dir=tmp_path)
    for done in [*tmp_path.glob("layer-0.*"), *tmp_path.glob("layer-1.*")]:
        done.unlink()  # as if killed in layer 0 after its first epoch: only that epoch's state is left
    shutil.rmtree(tmp_path / "layer-1-epochs")
    resumed = StackedDAE([12, 8, 5], generator=gen())  # a rerun builds the same initial stack
    greedy_pretrain_sda(resumed, x, epochs=2, generator=gen(99), progress=False, checkpoint_dir=tmp_path)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("sizes", [[10], [10, 0], []])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        StackedDAE(sizes)


def test_levels_must_match_layers():
    with pytest.raises(ValueError, match="one corruption level per layer"):
        StackedDAE([10, 8, 6], levels=[0.1])


def test_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        stack_to_mlp([(torch.zeros(2, 3), torch.zeros(2))], 2, activation="swish")


# --- Deep Belief Networks ------------------------------------------------------------------

from neuralsmith import data  # noqa: E402
from neuralsmith.stack import DBN, greedy_pretrain_dbn  # noqa: E402


def binary_digits():
    return data.load("digits", binarize="threshold").x_train


def test_dbn_to_mlp_copies_each_rbm():
    dbn = DBN([64, 20, 10], generator=gen())
    mlp = dbn.to_mlp(10)
    assert torch.equal(mlp[0].weight, dbn.rbms[0].weight) and torch.equal(mlp[2].bias, dbn.rbms[1].hidden_bias)
    x = torch.rand(3, 64)
    assert torch.allclose(mlp[:4](x), dbn(x))


def test_greedy_dbn_trains_layer_two_on_layer_one_codes():
    x = binary_digits()
    dbn = DBN([64, 32, 16], generator=gen())
    histories = greedy_pretrain_dbn(dbn, x, epochs=4, lr=0.1, batch_size=20, generator=gen(), progress=False)
    assert len(histories) == 2 and all(len(h) == 4 for h in histories)
    for h in histories:  # each RBM learns its own inputs: the data, then the first layer's codes
        assert h[-1]["reconstruction_error"] < 0.8 * h[0]["reconstruction_error"]


def test_dbn_samples_are_images_in_the_unit_interval():
    dbn = DBN([64, 16, 8], generator=gen())
    greedy_pretrain_dbn(dbn, binary_digits(), epochs=1, batch_size=50, generator=gen(), progress=False)
    samples = dbn.sample(5, gibbs_steps=10, generator=gen(3))
    assert samples.shape == (5, 64) and samples.min() >= 0 and samples.max() <= 1


def test_dbn_resumes_mid_stack_to_the_same_result(tmp_path):
    x = binary_digits()[:300]
    straight = DBN([64, 16, 8], generator=gen())
    greedy_pretrain_dbn(straight, x, epochs=2, batch_size=50, generator=gen(1), progress=False)
    first = DBN([64, 16, 8], generator=gen())
    greedy_pretrain_dbn(first, x, epochs=2, batch_size=50, generator=gen(1), progress=False,
                        checkpoint_dir=tmp_path)
    (tmp_path / "layer-1.json").unlink()  # as if killed while training layer 1
    resumed = DBN([64, 16, 8], generator=gen())
    greedy_pretrain_dbn(resumed, x, epochs=2, batch_size=50, generator=gen(99), progress=False,
                        checkpoint_dir=tmp_path)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b)
