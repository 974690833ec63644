r"""Paired comparisons of starts over seeds, corrected for multiple comparisons (Holm).

Seed ``s`` of every start visits the data in the same order (:mod:`neuralsmith.study.runner`),
so the test errors of starts A and B at seed s form a pair. For the differences
:math:`d_s = e_{A,s} - e_{B,s}` over the n seeds where both are finite:

.. math::
    \bar d \pm t_{0.975,\,n-1}\,\frac{s_d}{\sqrt n} \quad\text{(95\% confidence interval)},
    \qquad t = \frac{\bar d}{s_d / \sqrt n} \quad\text{(paired t-test, two-sided)}

A page of K such tests is corrected by Holm's step-down method (Holm 1979): with the p-values
sorted, :math:`p_{(1)} \le \dots \le p_{(K)}`, the adjusted value is
:math:`\tilde p_{(i)} = \max_{j \le i} \min(1, (K - j + 1)\, p_{(j)})`, which keeps the
family-wise error rate at the chosen level under any dependence between the tests.

Example:
    >>> c = paired([1.0, 2.0, 3.0, 4.0], [2.0, 3.1, 3.9, 5.2])
    >>> round(c["mean_diff"], 2), c["n"]
    (-1.05, 4)
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

CONFIDENCE = 0.95  # the level of every interval on the report


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean paired difference a - b, its 95% t-interval and the paired t-test's p-value.

    Pairs where either value is non-finite (a diverged member) are dropped. With fewer than
    two pairs the interval and p are NaN; with identical differences the interval has zero
    width and p is 0 (a nonzero difference) or 1 (none).
    """
    from scipy.stats import t as student

    d = [x - y for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    n = len(d)
    if n < 2:
        mean = d[0] if d else math.nan
        return {"n": n, "mean_diff": mean, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan}
    mean, sd = statistics.fmean(d), statistics.stdev(d)
    half = student.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
    if sd == 0.0:
        p = 0.0 if mean != 0.0 else 1.0
    else:
        p = float(2 * student.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {"n": n, "mean_diff": mean, "ci_low": mean - half, "ci_high": mean + half, "p": p}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values in the input's order; NaN stays NaN and is not counted in K."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    k, running = len(order), 0.0
    adjusted = [math.nan] * len(pvalues)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p))
        adjusted[i] = running
    return adjusted


def chance_knn(sizes: Sequence[int]) -> float:
    r"""Expected leave-one-out 1-NN accuracy when labels carry no information.

    A point's nearest other point has its label with probability :math:`(n_i - 1)/(n - 1)`:
    chance is :math:`\sum_i \frac{n_i}{n}\frac{n_i - 1}{n - 1}` (just under 1/2 for two equal groups).

    Example:
        >>> round(chance_knn([10, 10]), 3)
        0.474
    """
    n = sum(sizes)
    if n < 2:
        raise ValueError(f"need at least 2 points; got {n}")
    return sum(s / n * (s - 1) / (n - 1) for s in sizes)
