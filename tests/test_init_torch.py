"""neuralsmith.init is a drop-in superset of torch.nn.init: every name torch exports is here, with
the same signature, and fills the same values given the same generator (or, where torch draws
from its global generator, the same torch.manual_seed). The lecture's symmetric forms have names
of their own, and the scheme names keep their meaning."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
from torch import nn

from neuralsmith import init

G = object()  # in a case's arguments: put the generator here (positionally or by keyword)

DEPRECATED = ("uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
              "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse")
SHARED = tuple(n for n in nn.init.__all__ if n.endswith("_"))  # uniform_, normal_, ..., sparse_

CONV = (8, 3, 3, 3)
CASES = [  # (name, shape, args, kwargs), argument for argument
    ("uniform_", (20, 30), (), {}),
    ("uniform_", (20, 30), (0.1,), {}),
    ("uniform_", (20, 30), (-0.5, 0.5), {}),
    ("uniform_", (20, 30), (), {"a": 2.0, "b": 3.0}),
    ("uniform_", (20, 30), (0.0, 1.0, G), {}),
    ("normal_", (20, 30), (), {}),
    ("normal_", (20, 30), (1.0,), {}),
    ("normal_", (20, 30), (1.0, 0.01), {}),
    ("normal_", (20, 30), (), {"std": 0.5}),
    ("normal_", (20, 30), (-1.0, 2.0, G), {}),
    ("trunc_normal_", (20, 30), (), {}),
    ("trunc_normal_", (20, 30), (0.0, 0.02, -0.04, 0.04), {}),
    ("trunc_normal_", (20, 30), (), {"mean": 1.0, "std": 3.0, "a": -1.0, "b": 5.0, "generator": G}),
    ("constant_", (20, 30), (0.3,), {}),
    ("constant_", (20, 30), (), {"val": -2.0}),
    ("ones_", (20, 30), (), {}),
    ("zeros_", (20, 30), (), {}),
    ("eye_", (3, 5), (), {}),
    ("eye_", (4, 4), (), {}),
    ("dirac_", CONV, (), {}),
    ("dirac_", (4, 2, 3, 3), (2,), {}),
    ("dirac_", (6, 2, 5), (), {"groups": 3}),
    ("xavier_uniform_", (20, 30), (), {}),
    ("xavier_uniform_", CONV, (2.0,), {}),
    ("xavier_uniform_", (20, 30), (), {"gain": 0.5, "generator": G}),
    ("xavier_normal_", (20, 30), (), {}),
    ("xavier_normal_", CONV, (1.5, G), {}),
    ("kaiming_uniform_", (20, 30), (), {}),
    ("kaiming_uniform_", CONV, (math.sqrt(5),), {}),
    ("kaiming_uniform_", (20, 30), (0.2, "fan_out", "leaky_relu"), {}),
    ("kaiming_uniform_", (20, 30), (), {"nonlinearity": "relu"}),
    ("kaiming_uniform_", (20, 30), (), {"mode": "fan_out", "nonlinearity": "tanh", "generator": G}),
    ("kaiming_normal_", (20, 30), (), {}),
    ("kaiming_normal_", CONV, (0.1, "fan_in", "leaky_relu", G), {}),
    ("kaiming_normal_", (20, 30), (), {"mode": "fan_out", "nonlinearity": "relu"}),
    ("orthogonal_", (20, 30), (), {}),
    ("orthogonal_", (30, 20), (2.0,), {}),
    ("orthogonal_", CONV, (), {"gain": 0.5, "generator": G}),
    ("sparse_", (20, 30), (0.1,), {}),
    ("sparse_", (20, 30), (0.5, 0.2), {}),
    ("sparse_", (20, 30), (), {"sparsity": 0.3, "std": 1.0, "generator": G}),
    ("uniform", (20, 30), (0.1, 0.2), {}),
    ("normal", (20, 30), (), {"std": 0.1}),
    ("constant", (20, 30), (0.5,), {}),
    ("eye", (3, 5), (), {}),
    ("dirac", CONV, (), {}),
    ("xavier_uniform", (20, 30), (), {}),
    ("xavier_normal", (20, 30), (), {}),
    ("kaiming_uniform", (20, 30), (), {"a": 0.3}),
    ("kaiming_normal", (20, 30), (), {}),
    ("orthogonal", (20, 30), (), {}),
    ("sparse", (20, 30), (0.1,), {}),
]


def takes_generator(name: str) -> bool:
    return "generator" in inspect.signature(getattr(nn.init, name.rstrip("_") + "_")).parameters


def fill(module, name, shape, args, kwargs, seed, with_generator):
    """Call ``module.name`` on a fresh tensor with torch's global seed set (G -> a fresh generator)."""
    g = torch.Generator().manual_seed(seed) if with_generator else None
    args = tuple(g if a is G else a for a in args)
    kwargs = {k: g if v is G else v for k, v in kwargs.items()}
    if with_generator and takes_generator(name) and g not in args and g not in kwargs.values():
        kwargs["generator"] = g
    torch.manual_seed(seed + 1)  # for draws torch makes from its global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the deprecated names say so
        return getattr(module, name)(torch.empty(*shape), *args, **kwargs)


def case_id(case) -> str:
    name, shape, args, kwargs = case
    shown = [("G" if a is G else repr(a)) for a in args] + [
        f"{k}={'G' if v is G else repr(v)}" for k, v in kwargs.items()]
    return f"{name}{list(shape)}({', '.join(shown)})"


def test_every_torch_name_is_here():
    assert set(nn.init.__all__) <= set(init.__all__)
    assert all(callable(getattr(init, name)) for name in nn.init.__all__)


def test_every_torch_function_is_compared():
    assert {case[0] for case in CASES} == set(nn.init.__all__) - {"calculate_gain"}


@pytest.mark.parametrize("name", SHARED + ("calculate_gain",))
def test_same_signature_as_torch(name):
    def shape_of(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape_of(getattr(init, name)) == shape_of(getattr(nn.init, name))


@pytest.mark.parametrize("name", DEPRECATED)
def test_deprecated_forms_are_torchs(name):
    assert getattr(init, name) is getattr(nn.init, name)


@pytest.mark.parametrize("with_generator", [True, False], ids=["generator", "manual_seed"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_same_values_as_torch(case, with_generator):
    ours = fill(init, *case, seed=3, with_generator=with_generator)
    theirs = fill(nn.init, *case, seed=3, with_generator=with_generator)
    assert ours.shape == case[1] and torch.equal(ours, theirs)
    if case[0] not in ("constant_", "constant", "ones_", "zeros_", "eye_", "eye", "dirac_", "dirac"):
        other = fill(init, *case, seed=4, with_generator=with_generator)
        assert not torch.equal(ours, other)  # the comparison is of random draws, not of constants


@pytest.mark.parametrize("nonlinearity", init.NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0.2, 1])
def test_same_gain_as_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity) == nn.init.calculate_gain(nonlinearity)


@pytest.mark.parametrize("args", [("rectifier",), ("leaky_relu", "steep")])
def test_gain_refuses_what_torch_refuses(args):
    with pytest.raises(ValueError):
        nn.init.calculate_gain(*args)
    with pytest.raises(ValueError):
        init.calculate_gain(*args)


def test_swapping_the_import_builds_the_same_network():
    def build(lib, seed):
        g = torch.Generator().manual_seed(seed)
        net = nn.Sequential(nn.Linear(30, 20), nn.ReLU(), nn.Linear(20, 10))
        lib.uniform_(net[0].weight, 0.1, generator=g)  # U(0.1, 1) in both
        lib.normal_(net[2].weight, 0.01, generator=g)  # mean 0.01 in both
        lib.zeros_(net[0].bias)
        lib.constant_(net[2].bias, 0.5)
        return net

    ours, theirs = build(init, 0), build(nn.init, 0)
    assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), theirs.parameters()))
    assert ours[0].weight.min() >= 0.1


# --- the lecture's forms: their own names, and the scheme names keep their meaning ------------


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_symmetric_forms_are_not_torchs():
    w = init.symmetric_uniform_(torch.empty(200, 200), 0.1, generator=gen())
    assert w.min() < -0.09 and w.max() <= 0.1
    w = init.gaussian_(torch.empty(200, 200), 0.01, generator=gen())
    assert abs(w.mean().item()) < 1e-3 and w.std().item() == pytest.approx(0.01, rel=0.02)
    w = init.sparse_martens_(torch.empty(20, 50), 15, generator=gen())
    assert ((w != 0).sum(dim=1) == 15).all()


@pytest.mark.parametrize("scheme, options, fill_one", [
    ("uniform", {"a": 0.1}, lambda w, g: init.symmetric_uniform_(w, 0.1, generator=g)),
    ("normal", {"std": 0.01}, lambda w, g: init.gaussian_(w, 0.01, generator=g)),
    ("sparse", {}, lambda w, g: init.sparse_martens_(w, 15, 1.0, generator=g)),
    ("sparse", {"n_nonzero": 3, "std": 0.5}, lambda w, g: init.sparse_martens_(w, 3, 0.5, generator=g)),
    ("orthogonal", {"gain": 2.0}, lambda w, g: init.svd_orthogonal_(w, 2.0, generator=g)),
])
def test_scheme_names_keep_their_meaning(scheme, options, fill_one):
    layer = init.apply(nn.Linear(30, 20), scheme, generator=gen(), **options)
    assert torch.equal(layer.weight, fill_one(torch.empty(20, 30), gen()))


def test_scheme_normal_standard_std_is_hinton():
    assert init.SCHEMES["normal"].defaults() == {"std": 0.01}
    assert init.SCHEMES["uniform"].required() == ["a"]
    assert init.SCHEMES["sparse"].options() == ["n_nonzero", "std"]
    assert init.SCHEMES["uniform"].formula == "Fill from U(-a, a)"
    assert init.SCHEMES["normal"].formula == "Fill from N(0, std^2)"


def test_svd_orthogonal_has_the_distribution_of_torchs():
    """The scheme's SVD construction and torch's QR one draw from one law (Haar): same moments."""
    ours = torch.stack([init.svd_orthogonal_(torch.empty(4, 4), generator=gen(s)) for s in range(2000)])
    theirs = torch.stack([init.orthogonal_(torch.empty(4, 4), generator=gen(s)) for s in range(2000)])
    assert torch.allclose(ours @ ours.transpose(1, 2), torch.eye(4).expand(2000, 4, 4), atol=1e-5)
    for stat in (lambda w: w.mean(0), lambda w: w.square().mean(0)):  # E[w_ij] = 0, E[w_ij^2] = 1/4
        assert torch.allclose(stat(ours), stat(theirs), atol=0.05)
