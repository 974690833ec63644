"""Sample-quality diagnostics: autocorrelation time of AR(1) series, ESS, class mixing, classifier."""

import math

import pytest
import torch

from neuralsmith.data import load
from neuralsmith.rbm.mixing import (autocorrelation, class_mixing, effective_sample_size,
                                    fit_classifier, integrated_autocorrelation_time, label)


def ar1(phi, steps, chains, seed=0):
    """x_t = phi x_{t-1} + e_t, stationary start: tau = (1 + phi) / (1 - phi), rho_t = phi^t."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(steps, chains, generator=g, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for t in range(1, steps):
        x[t] = phi * x[t - 1] + noise[t]
    return x


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_tau_of_ar1_series_is_the_known_value(phi):
    tau = (1 + phi) / (1 - phi)  # 3 and 19
    x = ar1(phi, 20000, 8)
    assert integrated_autocorrelation_time(x) == pytest.approx(tau, rel=0.1)
    assert effective_sample_size(x) == pytest.approx(x.numel() / tau, rel=0.1)


def test_autocorrelation_of_ar1_is_phi_to_the_lag():
    rho = autocorrelation(ar1(0.7, 20000, 8, seed=1))
    assert torch.allclose(rho[:5], 0.7 ** torch.arange(5, dtype=torch.float64), atol=0.02)


def test_independent_draws_are_worth_their_number():
    x = torch.randn(5000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert effective_sample_size(x) == pytest.approx(20000, rel=0.1)


def test_chains_stuck_in_different_modes_have_a_small_ess():
    """Each chain mixes well within its mode, but the chains disagree: between-chain variance shows it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 4, generator=g, dtype=torch.float64) * 0.1 + torch.tensor([0.0, 0.0, 5.0, 5.0])
    within_one = effective_sample_size(x[:, :1])
    assert within_one > 1000 and effective_sample_size(x) < 100


@pytest.mark.parametrize("bad", [torch.ones(10), torch.zeros(3), torch.tensor([1.0, math.nan, 0.0, 2.0])])
def test_bad_series(bad):
    with pytest.raises(ValueError):
        integrated_autocorrelation_time(bad)


def test_class_mixing_of_a_cycling_and_a_stuck_chain():
    steps = torch.arange(100)
    cycling = class_mixing((steps % 4)[:, None], 4, thin=10)
    assert cycling.switches_per_1000 == pytest.approx(100.0)  # one switch per record, 10 steps apart
    assert cycling.visited == cycling.visited_per_chain == 1.0
    assert cycling.entropy == pytest.approx(math.log(4)) and cycling.entropy_ratio == pytest.approx(1.0)
    stuck = class_mixing(torch.full((100, 3), 2), 4)
    assert stuck.switches_per_1000 == 0.0 and stuck.visited == 0.25 and stuck.entropy == 0.0
    assert stuck.frequencies == (0.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize("labels, n_classes, message", [
    (torch.zeros(1, 3), 4, r"records >= 2"),
    (torch.zeros(5, 3), 1, r"n_classes must be >= 2"),
])
def test_bad_class_mixing_input(labels, n_classes, message):
    with pytest.raises(ValueError, match=message):
        class_mixing(labels, n_classes)


def test_the_classifier_learns_digits():
    ds = load("digits", seed=0)
    clf = fit_classifier(ds.x_train, ds.y_train, ds.n_classes)
    assert float((label(clf, ds.x_test) == ds.y_test).double().mean()) > 0.9
    assert label(clf, ds.x_test[:6].reshape(2, 3, -1)).shape == (2, 3)
