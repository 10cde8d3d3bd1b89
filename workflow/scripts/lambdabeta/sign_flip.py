"""The randomization distribution behind :func:`lambdabeta.statistics.sign_flip_test`
(Fisher's sign-flip test of a mean): the sign patterns (all 2ⁿ, or a seeded sample of them
above ``EXACT_SIGN_FLIP`` units), the one-sided p-values of a sum over them, and the inversion
of a one-sided p-value into an interval's bound. Arrays in, numbers out: the test itself, with
its :class:`~lambdabeta.statistics.Evidence`, stays beside the other procedures in
:mod:`lambdabeta.statistics`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

EXACT_SIGN_FLIP = 20
"""Up to this many units the sign-flip test enumerates all 2ⁿ patterns; above, it samples."""
SIGN_FLIP_DRAWS = 1 << 16
SIGN_FLIP_SEED = 0


def sign_patterns(n: int) -> np.ndarray:
    """All 2ⁿ sign vectors (n ≤ ``EXACT_SIGN_FLIP``), or a seeded sample of them with the
    identity first, as a (patterns, n) array of ±1."""
    if n <= EXACT_SIGN_FLIP:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    rng = np.random.default_rng(SIGN_FLIP_SEED)
    drawn = rng.choice((1.0, -1.0), size=(SIGN_FLIP_DRAWS, n))
    return np.vstack([np.ones((1, n)), drawn])


def sign_flip_p(differences: np.ndarray, patterns: np.ndarray) -> tuple[float, float]:
    """P(sum ≥ observed) and P(sum ≤ observed) over the sign patterns of |differences|."""
    sums = patterns @ np.abs(differences)
    observed = differences.sum()
    # a relative tolerance keeps patterns equal to the observed one (up to rounding) in the count
    tolerance = 1e-12 * max(1.0, float(np.abs(differences).sum()))
    return float(np.mean(sums >= observed - tolerance)), float(
        np.mean(sums <= observed + tolerance)
    )


def invert(
    p_of: Callable[[float], float], x: np.ndarray, level: float, floor: float, lower: bool
) -> float:
    """The threshold where the one-sided p-value ``p_of(c)`` crosses ``level``: the lower bound
    of the interval from the test of "greater" (its p falls as c falls, to ``floor`` below
    min x), the upper bound from the test of "less". Infinite when ``floor`` exceeds
    ``level``: no threshold is ever rejected."""
    if floor > level:
        return -math.inf if lower else math.inf
    span = float(x.max() - x.min()) + 1.0
    # kept: the far side of the sample (p ≥ ½); rejected: beyond the near side (p = floor)
    kept, rejected = (
        (float(x.max()), float(x.min()) - span)
        if lower
        else (
            float(x.min()),
            float(x.max()) + span,
        )
    )
    for _ in range(60):
        middle = (kept + rejected) / 2.0
        if p_of(middle) > level:
            kept = middle
        else:
            rejected = middle
    return rejected
