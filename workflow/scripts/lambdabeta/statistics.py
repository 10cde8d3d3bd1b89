"""Seed-level uncertainty: seeded bootstrap intervals, exact binomial intervals, verdicts.

Every interval here is reproducible bit for bit: a bootstrap draws its resamples from
``numpy.random.default_rng(seed)`` created afresh for each interval, so an interval depends only
on its own data, the number of resamples and the seed (never on which intervals were computed
before it).

Verdicts are one of :data:`VERDICTS`. A claim is judged from a 95 % interval of its effect
against a threshold: ``reproduced`` when the whole interval lies on the claimed side,
``not reproduced`` when the whole interval lies on the other side (or reaches the threshold only
from there, as [0, 0] does for "more than 0"), ``inconclusive`` when the interval straddles the
threshold or there are fewer units (seeds, restarts) than the test needs, and ``not run`` when
the grid lacks the settings the claim compares.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)

# From the weakest to the strongest support for a claim; `not run` is handled apart.
_SUPPORT = {NOT_REPRODUCED: 0, INCONCLUSIVE: 1, REPRODUCED: 2}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval, from ``n`` units (seeds or restarts)."""

    estimate: float
    low: float
    high: float
    n: int


# ---- bootstrap over seeds --------------------------------------------------------------------


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` × ``n`` indices drawn uniformly with replacement from 0 … n − 1.

    Row r is one bootstrap resample of the n units. Drawn from a generator seeded with ``seed``
    alone, so the same (n, resamples, seed) always gives the same matrix.
    """
    if n < 1:
        raise ValueError(f"cannot resample fewer than one unit, got n = {n}")
    if resamples < 1:
        raise ValueError(f"the number of bootstrap resamples must be positive, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def percentile_interval(
    samples: np.ndarray | Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The (1 − c)/2 and (1 + c)/2 quantiles of the finite ``samples`` (linear interpolation).

    Non-finite samples (a statistic undefined on some resample) are left out; with none left the
    interval is (NaN, NaN).
    """
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_statistic(
    units: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    resamples: int,
    seed: int,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over the units (rows) of ``units``.

    ``units`` has one row per unit (a seed): shape (n, …). ``statistic`` maps an array of shape
    (…, n, …) — the units on axis −(units.ndim) — to one value per leading index, so it is
    evaluated on the data itself (shape (n, …)) and on all resamples at once (shape
    (resamples, n, …)). Resampling whole rows keeps everything measured on one seed together:
    comparisons between settings stay paired by seed.
    """
    units = np.asarray(units, dtype=float)
    n = units.shape[0]
    estimate = float(statistic(units))
    replicates = statistic(units[bootstrap_indices(n, resamples, seed)])
    low, high = percentile_interval(replicates, confidence)
    return Interval(estimate, low, high, n)


def mean_over_units(values: np.ndarray) -> np.ndarray:
    """The mean over the unit axis of (…, n) values: the statistic of :func:`bootstrap_mean`."""
    return np.mean(values, axis=-1)


def bootstrap_mean(
    values: np.ndarray | Sequence[float],
    resamples: int,
    seed: int,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Mean of ``values`` (one per unit) with its percentile bootstrap interval.

    estimate = (1/n) Σ_i x_i; interval = the quantiles of the means of ``resamples`` resamples
    of the n values drawn with replacement. Non-finite values are dropped first (n counts the
    rest); with none left every field is NaN and n is 0.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    return bootstrap_statistic(values, mean_over_units, resamples, seed, confidence)


# ---- exact binomial interval -----------------------------------------------------------------


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


# ---- verdicts ----------------------------------------------------------------------------------


def verdict_above(interval: Interval, threshold: float, min_units: int) -> str:
    """Verdict on "the effect exceeds ``threshold``": reproduced when the interval lies wholly
    above it, not reproduced when it lies wholly at or below it, else (or with fewer than
    ``min_units`` units, or no interval) inconclusive."""
    if interval.n < min_units or not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return INCONCLUSIVE
    if interval.low > threshold:
        return REPRODUCED
    # an interval that reaches the threshold only from below (e.g. [0, 0] for "more than 0")
    # contradicts the claim as much as one wholly below it
    if interval.high <= threshold:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def verdict_below(interval: Interval, threshold: float, min_units: int) -> str:
    """Verdict on "the effect is below ``threshold``" (the mirror of :func:`verdict_above`)."""
    mirrored = Interval(-interval.estimate, -interval.high, -interval.low, interval.n)
    return verdict_above(mirrored, -threshold, min_units)


def verdict_all(verdicts: Iterable[str]) -> str:
    """A claim that holds for every part: reproduced only when every part is, not reproduced as
    soon as one part is (an intersection-union test: each part at the 95 % level)."""
    verdicts = list(verdicts)
    if not verdicts or NOT_RUN in verdicts:
        return NOT_RUN
    return min(verdicts, key=_SUPPORT.__getitem__)


def verdict_any(verdicts: Iterable[str]) -> str:
    """A claim that some part holds: reproduced as soon as one part is, not reproduced only when
    every part is not."""
    verdicts = [v for v in verdicts if v != NOT_RUN]
    if not verdicts:
        return NOT_RUN
    return max(verdicts, key=_SUPPORT.__getitem__)


def weakest(verdicts: Sequence[str]) -> int:
    """Index of the part with the least support (the first of equals): the part that decides a
    :func:`verdict_all`, and so the one a claim reports."""
    return min(range(len(verdicts)), key=lambda i: _SUPPORT.get(verdicts[i], -1))


def strongest(verdicts: Sequence[str]) -> int:
    """Index of the part with the most support (the first of equals): the part that decides a
    :func:`verdict_any`."""
    return max(range(len(verdicts)), key=lambda i: (_SUPPORT.get(verdicts[i], -1), -i))
