"""Small models and data shared by the RBM tests."""

import pytest
import torch

from neuralsmith.rbm import RBM


def _random_rbm(n_visible, n_hidden, *, scale=1.0, seed=0, dtype=torch.float64, **kwargs):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden, dtype=dtype, generator=g, **kwargs)
    with torch.no_grad():
        for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias):
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * scale)
    return rbm


@pytest.fixture(autouse=True)
def _one_thread():
    """The models here are tiny: one thread avoids OpenMP barrier stalls on a shared machine."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(2)


@pytest.fixture
def make_rbm():
    """Factory: an RBM with N(0, scale^2) weights and biases, so every term matters."""
    return _random_rbm


@pytest.fixture
def binary_data():
    """200 binary rows of 16 units: two noisy prototypes."""
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(2, 16, generator=g) > 0.5).float()
    rows = protos[torch.randint(0, 2, (200,), generator=g)]
    flips = (torch.rand(200, 16, generator=g) < 0.1).float()
    return (rows + flips) % 2
