"""The report's statistics: paired t against scipy, Holm against its definition, 1-NN chance."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from scipy import stats as scipy_stats

from neuralsmith.study import stats


def test_paired_matches_scipy_ttest_rel():
    rng = random.Random(0)
    a = [rng.gauss(3.0, 0.5) for _ in range(10)]
    b = [x + rng.gauss(0.4, 0.3) for x in a]
    c = stats.paired(a, b)
    assert c["p"] == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue, rel=1e-10)
    ci = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert c["mean_diff"] == pytest.approx(np.mean(np.subtract(a, b)))


def test_paired_drops_diverged_pairs_and_handles_degenerate_cases():
    c = stats.paired([1.0, math.nan, 3.0], [0.5, 2.0, math.inf])
    assert c["n"] == 1 and c["mean_diff"] == 0.5 and math.isnan(c["p"])
    same = stats.paired([1.0, 2.0], [0.0, 1.0])
    assert same["p"] == 0.0 and same["ci_low"] == same["ci_high"] == 1.0
    assert stats.paired([1.0, 2.0], [1.0, 2.0])["p"] == 1.0


def _holm_by_definition(p):
    """Reject-set definition: adjusted p_i = the smallest level at which Holm rejects H_i."""
    k = len(p)
    order = sorted(range(k), key=lambda i: p[i])
    out = [0.0] * k
    for rank, i in enumerate(order):
        out[i] = min(1.0, max((k - j) * p[order[j]] for j in range(rank + 1)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_its_definition(seed):
    rng = random.Random(seed)
    p = [rng.random() ** 3 for _ in range(rng.randint(1, 12))]
    assert stats.holm(p) == pytest.approx(_holm_by_definition(p))


def test_holm_is_monotone_never_below_raw_and_skips_nan():
    p = [0.001, math.nan, 0.02, 0.5, 0.019]
    adj = stats.holm(p)
    assert math.isnan(adj[1])
    finite = [(x, y) for x, y in zip(p, adj) if not math.isnan(x)]
    assert all(y >= x for x, y in finite)
    assert adj[0] == pytest.approx(4 * 0.001)  # K counts the 4 finite p-values only
    ranked = [y for _, y in sorted(finite)]
    assert ranked == sorted(ranked)


def test_chance_knn_matches_a_label_shuffle():
    sizes = [6, 4]
    n, labels = 10, [0] * 6 + [1] * 4
    # every point's nearest neighbour is a uniformly random other point: average over all of them
    exact = np.mean([labels[i] == labels[j] for i, j in itertools.permutations(range(n), 2)])
    assert stats.chance_knn(sizes) == pytest.approx(exact)
    with pytest.raises(ValueError, match="at least 2"):
        stats.chance_knn([1])
