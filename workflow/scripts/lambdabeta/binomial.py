"""The exact binomial interval of a proportion (Clopper-Pearson), for the linear study, whose
claims are statements about every restart: k of n restarts pass, and the interval bounds the
rate at which a restart passes. The binomial distribution function is summed in log space.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .statistics import CONFIDENCE, Interval


def _binomial_log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p), summed in log space (exact for any n of this project)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    terms = [_binomial_log_pmf(i, n, p) for i in range(k + 1)]
    top = max(terms)
    if top == -math.inf:
        return 0.0
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _bisect(increasing: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the non-decreasing ``increasing(p)`` crosses ``target``."""
    low, high = 0.0, 1.0
    for _ in range(80):  # 2⁻⁸⁰: far below any difference that matters
        middle = (low + high) / 2.0
        if increasing(middle) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def clopper_pearson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The exact (Clopper-Pearson) interval of a binomial proportion, k = ``successes`` of n.

    low solves P(X ≥ k; n, low) = α/2 and high solves P(X ≤ k; n, high) = α/2, α = 1 − c;
    low = 0 when k = 0 and high = 1 when k = n. So for k = n: low = (α/2)^(1/n). The estimate
    is k/n. With n = 0 every field is NaN.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in 0 … n, got {successes} of {n}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    tail = (1.0 - confidence) / 2.0
    low = 0.0
    if successes > 0:
        # P(X ≥ k; p) = 1 − cdf(k − 1; p) grows with p
        low = _bisect(lambda p: 1.0 - binomial_cdf(successes - 1, n, p), tail)
    high = 1.0
    if successes < n:
        # −cdf(k; p) grows with p; it reaches −α/2 at the upper bound
        high = _bisect(lambda p: -binomial_cdf(successes, n, p), -tail)
    return Interval(successes / n, low, high, n)
