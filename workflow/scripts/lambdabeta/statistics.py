"""Seed-level tests behind the verdicts: Student t, exact sign-flip and jackknife tests, their
combination over several parts (intersection-union, Bonferroni) and the verdict rules. The
sign-flip test's randomization distribution lives in :mod:`lambdabeta.sign_flip`, the exact
binomial interval of the linear study in :mod:`lambdabeta.binomial`.

**A verdict is a pair of one-sided tests.** A claim says an effect lies above (or below) a
threshold. Its :class:`Evidence` holds two p-values: ``p_claim`` tests the null "the claim is
false" (effect ≤ threshold for "above"), ``p_contrary`` the null "the claim holds". At the level
α (``LEVEL``, one-sided 2.5 %, the two halves of a 95 % interval):

- ``reproduced`` when ``p_claim ≤ α``: with no effect a claim is reproduced at most α of the
  time, whatever the number of seeds, *if the procedure's assumptions hold*;
- ``not reproduced`` when ``p_contrary ≤ α``: a true claim is refuted at most α of the time;
- ``inconclusive`` otherwise, with fewer units than a claim requires, or when the procedure
  cannot reach α with this many units at all (the sign-flip test with 3 seeds: its smallest
  p-value is 2⁻³ = 12.5 %);
- ``not run`` when the grid lacks what the claim compares.

**Procedures** (each returns :class:`Evidence` whose interval is the matching two-sided
1 − 2α interval):

- :func:`t_test`, Student's one-sample t on n values (seed-paired differences, usually):
  t = (x̄ − c)/(s/√n) with n − 1 degrees of freedom; interval x̄ ± t_{n−1, 1−α} s/√n. Exact
  when the values are normal; seed-paired differences of runs whose noise is independent and
  identically distributed are symmetric about their mean, where it stays close (measured by
  ``benchmarks/bench_claims_calibration.py``). Needs n ≥ 2. Identical values (s = 0) decide by
  their side of c alone, and values all equal to c contradict a strict claim ("more than 0"
  when nothing changed).
- :func:`sign_flip_test`, Fisher's randomization test of the mean: under the null the n
  differences d_i = x_i − c are symmetric about 0, so each of the 2ⁿ sign patterns of the |d_i|
  is equally likely; p = #{patterns whose sum ≥ Σ d_i} / 2ⁿ, exact by enumeration (a seeded
  Monte Carlo sample of patterns above ``sign_flip.EXACT_SIGN_FLIP`` units). Free of the normal
  assumption; its smallest p is 2⁻ⁿ, so α = 2.5 % needs n ≥ 6. The interval inverts the test.
- :func:`jackknife_t_test`, for a smooth statistic of several means (a ratio of means, say):
  the statistic θ̂ of all n units, its jackknife standard error
  SE² = (n − 1)/n Σ_i (θ̂_(i) − θ̂_(·))² over the leave-one-unit-out values, and
  t = (θ̂ − c)/SE with n − 1 degrees of freedom (Efron & Stein 1981; Miller 1974). Approximate:
  assumes θ̂ roughly normal.

**One-sample comparisons.** A seed-paired difference of runs with independent, identically
distributed noise is symmetric about its mean, where Student t holds its level closely. A raw
seed value compared with a fixed bound (a control error with its margin, a score with its
permutation null's 95 % point) has no pairing to symmetrise it, and a skewed spread over seeds
inflates t's one-sided error: measured 6-8 % at the nominal 2.5 % for a noise of skewness 1.4
pointing away from the claimed side. Such comparisons are tested at a quarter of the level
(:func:`guarded`, the p-values multiplied by 4), which holds the measured rate below the level
for that skew (``benchmarks/bench_claims_calibration.py``).

**Several parts.** :func:`all_of` (a claim that holds for every part: every high β and λ > 0)
is an intersection-union test on the claim's side (Berger 1982: every part at α, p = max of
the parts' p, no correction needed) and a union test on the contrary side (some part refuted:
Bonferroni, p = k·min). :func:`any_of` (some part: some intermediate β, some λ) is the mirror:
Bonferroni on the claim's side, intersection-union on the contrary. Each keeps a false
``reproduced`` at most α whatever the configuration of the parts; nested combinations
(every β: some λ: NLL and MIG) compose their p-values the same way. The interval reported for a
combination is its deciding part's, at the level that part was judged at (α/k under Bonferroni).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special

from .sign_flip import invert, sign_flip_p, sign_patterns

LEVEL = 0.025
"""α: the one-sided level of every test, the rate of false verdicts each side allows."""

CONFIDENCE = 1.0 - 2.0 * LEVEL

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)

ABOVE, BELOW = "above", "below"
"""The side of the threshold a claim puts its effect on."""

PAIRED_TESTS = ("t", "sign_flip")
"""The procedures a claim on a mean of seed-level values can use (``claims.paired_test``)."""

# From the weakest to the strongest support for a claim; `not run` is handled apart.
_SUPPORT = {NOT_REPRODUCED: 0, INCONCLUSIVE: 1, REPRODUCED: 2}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval, from ``n`` units (seeds or restarts)."""

    estimate: float
    low: float
    high: float
    n: int


NO_INTERVAL = Interval(math.nan, math.nan, math.nan, 0)


@dataclass(frozen=True)
class Evidence:
    """What the data say about one claim (or one part of it): the module docstring.

    ``interval``: the estimate and its two-sided 1 − 2α interval; ``p_claim`` and
    ``p_contrary``: the two one-sided p-values; ``floor``: the smallest ``p_claim`` the
    procedure can reach with these units (0 for the t test, 2⁻ⁿ for the sign-flip test);
    ``part``: for a combination, the index of the part that decided; ``procedure``: its name.
    ``at(α')`` gives the interval at another one-sided level.
    """

    interval: Interval
    p_claim: float
    p_contrary: float
    floor: float = 0.0
    procedure: str = ""
    part: int | None = None
    at: Callable[[float], Interval] | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return self.interval.n

    def interval_at(self, alpha: float) -> Interval:
        """The interval at the one-sided level ``alpha`` (two-sided 1 − 2·alpha)."""
        return self.at(alpha) if self.at is not None else self.interval


def no_evidence(n: int = 0, procedure: str = "") -> Evidence:
    """Evidence that decides nothing (too few units for any test)."""
    return Evidence(replace(NO_INTERVAL, n=n), 1.0, 1.0, 1.0, procedure)


# ---- procedures -------------------------------------------------------------------------------


def _finite(values: np.ndarray | Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def _check_side(side: str) -> None:
    if side not in (ABOVE, BELOW):
        raise ValueError(f"side must be {ABOVE!r} or {BELOW!r}, got {side!r}")


def _oriented(p_greater: float, p_less: float, side: str) -> tuple[float, float]:
    """(p_claim, p_contrary) of a claim on ``side`` from the p-values of "greater" and "less"."""
    return (p_greater, p_less) if side == ABOVE else (p_less, p_greater)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom."""
    return float(special.stdtrit(df, p))


def _t_p_values(
    estimate: float, se: float, threshold: float, df: int, side: str
) -> tuple[float, float]:
    """(p_claim, p_contrary) of t = (estimate − threshold)/se with ``df`` degrees of freedom.
    With se = 0 the estimate is certain: its side of the threshold decides, and an estimate
    exactly at the threshold refutes the strict claim ("more than 0" when nothing changed)."""
    if se > 0.0:
        t = (estimate - threshold) / se
        below = float(special.stdtr(df, t))  # P(T ≤ t), Student t with df degrees of freedom
        return _oriented(float(special.stdtr(df, -t)), below, side)
    claimed = estimate > threshold if side == ABOVE else estimate < threshold
    return (0.0, 1.0) if claimed else (1.0, 0.0)


def t_test(
    values: np.ndarray | Sequence[float],
    threshold: float = 0.0,
    side: str = ABOVE,
    alpha: float = LEVEL,
) -> Evidence:
    """Student's one-sample t test of "the mean of ``values`` lies on ``side`` of
    ``threshold``" (module docstring). Non-finite values are left out; fewer than two left
    decide nothing."""
    _check_side(side)
    x = _finite(values)
    n = x.size
    if n < 2:
        return no_evidence(n, "t")
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    se = sd / math.sqrt(n)

    def interval(level: float) -> Interval:
        half = t_quantile(1.0 - level, n - 1) * se
        return Interval(mean, mean - half, mean + half, n)

    p_claim, p_contrary = _t_p_values(mean, se, threshold, n - 1, side)
    return Evidence(interval(alpha), p_claim, p_contrary, 0.0, "t", at=interval)


def sign_flip_test(
    values: np.ndarray | Sequence[float],
    threshold: float = 0.0,
    side: str = ABOVE,
    alpha: float = LEVEL,
) -> Evidence:
    """Fisher's exact sign-flip test of "the mean of ``values`` lies on ``side`` of
    ``threshold``" (module docstring); the interval is the set of thresholds neither one-sided
    test rejects at ``alpha``."""
    _check_side(side)
    x = _finite(values)
    n = x.size
    if n < 1:
        return no_evidence(0, "sign-flip")
    patterns = sign_patterns(n)
    p_greater, p_less = sign_flip_p(x - threshold, patterns)
    p_claim, p_contrary = _oriented(p_greater, p_less, side)
    if np.all(x == threshold):
        p_claim, p_contrary = 1.0, 0.0  # nothing changed: refutes a strict claim
    floor = 1.0 / len(patterns)

    def interval(level: float) -> Interval:
        low = invert(lambda c: sign_flip_p(x - c, patterns)[0], x, level, floor, lower=True)
        high = invert(lambda c: sign_flip_p(x - c, patterns)[1], x, level, floor, lower=False)
        return Interval(float(x.mean()), low, high, n)

    return Evidence(interval(alpha), p_claim, p_contrary, floor, "sign-flip", at=interval)


def jackknife_t_test(
    units: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    threshold: float = 0.0,
    side: str = ABOVE,
    alpha: float = LEVEL,
) -> Evidence:
    """The jackknife t test of "``statistic(units)`` lies on ``side`` of ``threshold``"
    (module docstring). ``units`` has one row per unit (seed); ``statistic`` maps rows to a
    number. Needs n ≥ 3 (two leave-one-out values say nothing about a spread)."""
    _check_side(side)
    units = np.asarray(units, dtype=float)
    n = units.shape[0]
    if n < 3:
        return no_evidence(n, "jackknife t")
    estimate = float(statistic(units))
    left_out = np.array([statistic(np.delete(units, i, axis=0)) for i in range(n)], dtype=float)
    if not (math.isfinite(estimate) and np.isfinite(left_out).all()):
        return no_evidence(n, "jackknife t")
    se = math.sqrt((n - 1) / n * float(np.sum((left_out - left_out.mean()) ** 2)))

    def interval(level: float) -> Interval:
        half = t_quantile(1.0 - level, n - 1) * se
        return Interval(estimate, estimate - half, estimate + half, n)

    p_claim, p_contrary = _t_p_values(estimate, se, threshold, n - 1, side)
    return Evidence(interval(alpha), p_claim, p_contrary, 0.0, "jackknife t", at=interval)


ONE_SAMPLE_GUARD = 4.0
"""How much stricter a comparison of raw seed values with a fixed bound is tested (module
docstring): at level/4."""


def guarded(evidence: Evidence, factor: float = ONE_SAMPLE_GUARD) -> Evidence:
    """The evidence of a one-sample comparison, tested at 1/``factor`` of the level: both
    p-values multiplied by ``factor`` (capped at 1), the interval at level/``factor``."""
    return replace(
        evidence,
        interval=evidence.interval_at(LEVEL / factor) if evidence.at else evidence.interval,
        p_claim=min(1.0, factor * evidence.p_claim),
        p_contrary=min(1.0, factor * evidence.p_contrary),
        floor=min(1.0, factor * evidence.floor),
        at=(lambda a: evidence.interval_at(a / factor)) if evidence.at else None,
    )


def paired_test(name: str) -> Callable[..., Evidence]:
    """The procedure ``name`` of :data:`PAIRED_TESTS`."""
    if name not in PAIRED_TESTS:
        raise ValueError(f"unknown paired test {name!r}; known: {PAIRED_TESTS}")
    return t_test if name == "t" else sign_flip_test


# ---- several parts ------------------------------------------------------------------------------


def refute_only(evidence: Evidence) -> Evidence:
    """A part that can refute a claim but is not needed to support it (``p_claim`` 0): "no
    step between neighbouring β falls" beside "the NLL rises from the smallest to the largest
    β"."""
    return replace(evidence, p_claim=0.0, floor=0.0)


def all_of(parts: Sequence[Evidence], alpha: float = LEVEL) -> Evidence:
    """The claim holds for every part: p_claim = max_i p_claim_i (intersection-union),
    p_contrary = min(1, k·min_i p_contrary_i) (Bonferroni over the k parts). The deciding part
    is the one that refutes (at α/k) if any does, else the weakest."""
    parts = list(parts)
    if not parts:
        raise ValueError("a claim over no parts")
    k = len(parts)
    contrary = [p.p_contrary for p in parts]
    refuting = int(np.argmin(contrary))
    refuted = k * contrary[refuting] <= alpha
    if refuted:
        decisive, level = refuting, alpha / k
    else:
        decisive, level = int(np.argmax([p.p_claim for p in parts])), alpha
    chosen = parts[decisive]
    shown = chosen.interval_at(level)
    n = min(p.n for p in parts)
    return Evidence(
        replace(shown, n=n),
        max(p.p_claim for p in parts),
        min(1.0, k * contrary[refuting]),
        max(p.floor for p in parts),
        chosen.procedure,
        decisive,
        at=lambda a: replace(chosen.interval_at(a / k if refuted else a), n=n),
    )


def any_of(parts: Sequence[Evidence], alpha: float = LEVEL) -> Evidence:
    """The claim holds for some part: p_claim = min(1, k·min_i p_claim_i) (Bonferroni over the
    k parts), p_contrary = max_i p_contrary_i (intersection-union). The deciding part is the
    best supported, its interval at α/k."""
    parts = list(parts)
    if not parts:
        raise ValueError("a claim over no parts")
    k = len(parts)
    decisive = int(np.argmin([p.p_claim for p in parts]))
    chosen = parts[decisive]
    n = min(p.n for p in parts)
    return Evidence(
        replace(chosen.interval_at(alpha / k), n=n),
        min(1.0, k * chosen.p_claim),
        max(p.p_contrary for p in parts),
        min(1.0, k * min(p.floor for p in parts)),
        chosen.procedure,
        decisive,
        at=lambda a: replace(chosen.interval_at(a / k), n=n),
    )


# ---- verdicts ----------------------------------------------------------------------------------


def verdict(evidence: Evidence, alpha: float = LEVEL, min_units: int = 1) -> str:
    """The verdict the evidence supports at the level ``alpha`` (module docstring)."""
    if evidence.n < min_units:
        return INCONCLUSIVE
    if evidence.p_contrary <= alpha:
        return NOT_REPRODUCED
    if evidence.floor > alpha:
        return INCONCLUSIVE
    return REPRODUCED if evidence.p_claim <= alpha else INCONCLUSIVE


def limitation(evidence: Evidence, alpha: float = LEVEL, min_units: int = 1) -> str:
    """Why the evidence cannot decide at all, or "": too few units for the claim, or a
    procedure whose smallest p-value with these units lies above ``alpha``."""
    if evidence.n < min_units:
        return f"{evidence.n} seeds are fewer than the {min_units} a deep claim needs"
    if evidence.floor > alpha and evidence.p_contrary > alpha:
        return (
            f"{evidence.n} seeds cannot reach {alpha:.3g} with the {evidence.procedure} test "
            f"(its smallest p-value here is {evidence.floor:.3g})"
        )
    return ""


def verdict_all(verdicts: Iterable[str]) -> str:
    """Verdicts of checks without sampling error combined as "every part": reproduced only
    when every part is, not reproduced as soon as one part is."""
    verdicts = list(verdicts)
    if not verdicts or NOT_RUN in verdicts:
        return NOT_RUN
    return min(verdicts, key=_SUPPORT.__getitem__)
