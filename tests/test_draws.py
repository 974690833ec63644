"""Counter-based draws and the fused kernels: the SplitMix64 spec, the numba kernels held to
their torch references, the distribution of the draws, and the path without numba."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from neuralsmith import kernels
from neuralsmith.rbm import draws
from neuralsmith.rbm.draws import CounterDraws, reference_bernoulli, reference_bits

needs_numba = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")
MASK = (1 << 64) - 1


def splitmix64(seed: int, n: int) -> list[int]:
    """SplitMix64 in plain Python integers (Steele, Lea & Flood, 2014)."""
    out = []
    for _ in range(n):
        seed = (seed + 0x9E3779B97F4A7C15) & MASK
        z = ((seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


@pytest.mark.parametrize("key", [0, 1, 12345, (1 << 63) - 1])
def test_reference_bits_are_splitmix64s_top_24_bits(key):
    assert reference_bits(key, 50).tolist() == [z >> 40 for z in splitmix64(key, 50)]


@needs_numba
@pytest.mark.parametrize("shape", [(1,), (7, 3), (100, 784), (33, 500)])
def test_the_kernel_draws_what_the_reference_draws(shape):
    g = torch.Generator().manual_seed(1)
    p = torch.rand(shape, generator=g).to(torch.bfloat16)
    for key in (0, 987654321, (1 << 63) - 1):
        assert torch.equal(kernels.bernoulli_bf16(p, key), reference_bernoulli(p, key))


@needs_numba
def test_a_transposed_view_is_drawn_in_its_logical_order():
    p = torch.rand(500, 100).to(torch.bfloat16).t()  # (100, 500), columns contiguous
    assert torch.equal(kernels.bernoulli_bf16(p, 7), reference_bernoulli(p.contiguous(), 7))


def test_draws_are_bernoulli_p_for_every_p():
    """Over 200 000 units per probability, each frequency is within 5 standard errors."""
    probs = torch.tensor([0.0, 2 ** -12, 0.01, 0.25, 0.5, 0.9, 1.0])
    p = probs.repeat_interleave(200_000).to(torch.bfloat16)
    s = CounterDraws(torch.Generator().manual_seed(0)).bernoulli(p).float().view(len(probs), -1)
    for prob, freq in zip(probs.tolist(), s.mean(1).tolist()):
        se = math.sqrt(max(prob * (1 - prob), 1e-12) / s.shape[1])
        assert abs(freq - prob) <= 5 * se + 1e-12, (prob, freq)


def test_uniforms_fill_their_bins_and_neighbours_are_uncorrelated():
    """Chi-square over 256 bins of 2^20 uniforms (p > 1e-4 under uniformity), lag-1 correlation."""
    u = reference_bits(2024, 1 << 20).double() / 2 ** 24
    counts = torch.bincount((u * 256).long(), minlength=256).double()
    expected = len(u) / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 350, chi2  # 255 degrees of freedom: P(chi2 > 350) ~ 1e-4
    r = torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1]
    assert abs(float(r)) < 5 / math.sqrt(len(u))


def test_each_draw_takes_a_new_key_from_the_generator():
    g = torch.Generator().manual_seed(3)
    d = CounterDraws(g)
    p = torch.full((1000,), 0.5, dtype=torch.bfloat16)
    a, b = d.bernoulli(p), d.bernoulli(p)
    assert not torch.equal(a, b)
    again = CounterDraws(torch.Generator().manual_seed(3))
    assert torch.equal(again.bernoulli(p), a) and torch.equal(again.bernoulli(p), b)


def test_without_numba_the_same_draws_come_from_torch(monkeypatch):
    p = torch.rand(40, 30).to(torch.bfloat16)
    with_kernel = CounterDraws(torch.Generator().manual_seed(5)).bernoulli(p)
    monkeypatch.setattr(kernels, "_compiled", lambda: None)
    assert not kernels.available() and not kernels.takes_bernoulli(p)
    assert torch.equal(CounterDraws(torch.Generator().manual_seed(5)).bernoulli(p), with_kernel)


def test_fp32_probabilities_are_drawn_by_the_reference():
    p = torch.rand(20, 10)
    s = CounterDraws(torch.Generator().manual_seed(0)).bernoulli(p)
    key = draws.CounterDraws(torch.Generator().manual_seed(0)).key()
    assert s.dtype == torch.float32 and torch.equal(s, reference_bernoulli(p, key))


@pytest.mark.parametrize("beta", [1.0, 0.9])
def test_add_bf16_matches_torch_to_one_rounding(beta):
    g = torch.Generator().manual_seed(0)
    target, x = torch.randn(500, 784, generator=g), torch.randn(500, 784, generator=g).to(torch.bfloat16)
    beta32, alpha32 = (float(torch.tensor(v)) for v in (beta, 0.05))  # the kernel's float32s
    terms = target.double() * beta32, alpha32 * x.double()
    kernels.add_bf16(target, x, beta, 0.05)
    error = (target.double() - terms[0] - terms[1]).abs()
    assert bool((error <= 2 ** -23 * (terms[0].abs() + terms[1].abs())).all())  # three roundings


def test_add_bf16_takes_views_and_other_dtypes_through_torch():
    target = torch.zeros(4, 6)
    x = torch.ones(6, 4, dtype=torch.bfloat16).t()  # not contiguous
    kernels.add_bf16(target, x, 1.0, 2.0)
    assert torch.equal(target, torch.full((4, 6), 2.0))
    target64 = torch.ones(3, dtype=torch.float64)
    assert kernels.add_bf16(target64, torch.ones(3), 0.5, 1.0).tolist() == [1.5, 1.5, 1.5]


@pytest.mark.parametrize("contiguous", [True, False])
def test_combine_bf16_is_the_heavy_ball_sum_and_its_copy_rounds_as_torch(contiguous):
    """Kernel (contiguous) and torch fallback (a view): the sum to a few roundings, and the copy
    exactly ``target.to(bfloat16)`` (round to nearest, ties to even)."""
    g = torch.Generator().manual_seed(1)
    target, other = (torch.randn(3, 64, 100, generator=g) for _ in range(2))
    x = torch.randn(3, 64, 100, generator=g).to(torch.bfloat16)
    if not contiguous:
        target, other, x = (t.transpose(1, 2) for t in (target, other, x))
    copy = torch.empty(target.shape, dtype=torch.bfloat16)
    beta, alpha, gamma = (float(torch.tensor(v)) for v in (-0.5, 0.01, 1.4999))  # as float32s
    terms = [beta * target.double(), alpha * x.double(), gamma * other.double()]
    kernels.combine_bf16(target, other, x, copy, -0.5, 0.01, 1.4999)
    error = (target.double() - sum(terms)).abs()
    assert bool((error <= 2 ** -22 * sum(t.abs() for t in terms)).all())  # up to five roundings
    assert torch.equal(copy.view(torch.int16), target.to(torch.bfloat16).view(torch.int16))
    ties = torch.tensor([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -1.0 - 2 ** -8, 1.0 + 2 ** -8 + 2 ** -20, 1e-40])
    copy = torch.empty_like(ties, dtype=torch.bfloat16)
    kernels.combine_bf16(ties.clone(), torch.zeros_like(ties), torch.zeros_like(copy), copy, 1.0, 0.0, 0.0)
    assert torch.equal(copy.view(torch.int16), ties.to(torch.bfloat16).view(torch.int16))


@needs_numba
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs for numba's pool to differ from 1 thread")
def test_the_first_kernel_leaves_torchs_thread_count_as_it_was():
    """numba's pool starts at the first kernel and sets the OpenMP thread count to every CPU,
    torch's too where both share its libgomp: a process held to one thread must stay there
    (a fresh interpreter, so that the pool starts inside it)."""
    script = ("import torch\nfrom neuralsmith import kernels\ntorch.set_num_threads(1)\n"
              "kernels.add_bf16(torch.ones(4), torch.ones(4, dtype=torch.bfloat16), 1.0, 1.0)\n"
              "print(torch.get_num_threads())")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NUMBA_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1"]
