"""The tests behind the verdicts, on exact cases: Student t against scipy, sign-flip p-values by
enumeration, the jackknife of a mean, their combination over parts, the one-sample guard, the
verdicts and the exact binomial interval."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from lambdabeta.binomial import binomial_cdf, clopper_pearson
from lambdabeta.statistics import (
    BELOW,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    all_of,
    any_of,
    guarded,
    jackknife_t_test,
    limitation,
    paired_test,
    refute_only,
    sign_flip_test,
    t_test,
    verdict,
)

VALUES = np.array([0.3, -0.1, 0.8, 0.25, 0.4])


def test_t_test_matches_scipy_p_values_and_intervals():
    evidence = t_test(VALUES, threshold=0.1)
    above = stats.ttest_1samp(VALUES, 0.1, alternative="greater").pvalue
    below = stats.ttest_1samp(VALUES, 0.1, alternative="less").pvalue
    assert (evidence.p_claim, evidence.p_contrary) == pytest.approx((above, below), rel=1e-12)
    low, high = stats.t.interval(0.95, len(VALUES) - 1, VALUES.mean(), stats.sem(VALUES))
    assert (evidence.interval.low, evidence.interval.high) == pytest.approx((low, high))
    assert evidence.interval.n == 5 and evidence.floor == 0.0
    mirrored = t_test(VALUES, threshold=0.1, side=BELOW)
    assert (mirrored.p_claim, mirrored.p_contrary) == pytest.approx((below, above), rel=1e-12)
    wider = evidence.interval_at(0.005)
    assert (wider.low, wider.high) == pytest.approx(
        stats.t.interval(0.99, 4, VALUES.mean(), stats.sem(VALUES))
    )


def test_t_test_edge_cases():
    assert verdict(t_test([2.0, 2.0, 2.0])) == REPRODUCED  # certain and above
    assert verdict(t_test([0.0, 0.0, 0.0])) == NOT_REPRODUCED  # "more than 0" when nothing changed
    assert verdict(t_test([-1.0, -1.0])) == NOT_REPRODUCED
    one = t_test([5.0])
    assert verdict(one) == INCONCLUSIVE and one.n == 1 and math.isnan(one.interval.low)
    assert t_test([1.0, np.nan, 2.0, 3.0]).n == 3  # non-finite values are left out
    with pytest.raises(ValueError, match="side"):
        t_test(VALUES, side="sideways")


def sign_flip_by_hand(values, threshold):
    """P(Σ s_i |d_i| ≥ Σ d_i) over all 2ⁿ sign vectors, counted one by one."""
    d = np.asarray(values) - threshold
    sums = [sum(s * abs(x) for s, x in zip(signs, d, strict=True))
            for signs in itertools.product((1, -1), repeat=len(d))]  # fmt: skip
    return sum(total >= d.sum() - 1e-12 for total in sums) / len(sums)


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], [3.0, -1.0, 2.0, 0.5], VALUES, [1, -2, 3, -4]])
def test_sign_flip_p_values_by_enumeration(values):
    evidence = sign_flip_test(values)
    assert evidence.p_claim == pytest.approx(sign_flip_by_hand(values, 0.0))
    flipped = -np.asarray(values, dtype=float)
    assert evidence.p_contrary == pytest.approx(sign_flip_by_hand(flipped, 0.0))
    assert evidence.floor == 2.0 ** -len(values)


def test_sign_flip_cannot_reach_the_level_with_few_seeds():
    three = sign_flip_test([1.0, 2.0, 3.0])
    assert three.p_claim == 1 / 8 and verdict(three) == INCONCLUSIVE
    assert limitation(three) == (
        "3 seeds cannot reach 0.025 with the sign-flip test (its smallest p-value here is 0.125)"
    )
    assert math.isinf(three.interval.low)  # no threshold is ever rejected
    six = sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert six.p_claim == 1 / 64 and verdict(six) == REPRODUCED and limitation(six) == ""
    # the interval inverts the test: every threshold below the smallest value is rejected
    assert six.interval.low == pytest.approx(1.0, abs=1e-9)
    assert six.interval.high == pytest.approx(6.0, abs=1e-9)
    assert paired_test("sign_flip") is sign_flip_test and paired_test("t") is t_test
    with pytest.raises(ValueError, match="unknown paired test"):
        paired_test("wilcoxon")


def test_jackknife_of_a_mean_is_the_t_test():
    units = VALUES[:, None]
    jackknife = jackknife_t_test(units, lambda rows: float(rows.mean()), threshold=0.1)
    plain = t_test(VALUES, threshold=0.1)
    assert jackknife.p_claim == pytest.approx(plain.p_claim)
    assert jackknife.interval.low == pytest.approx(plain.interval.low)
    assert verdict(jackknife_t_test(VALUES[:2, None], lambda r: float(r.mean()))) == INCONCLUSIVE


def test_every_part_and_some_part():
    strong = t_test([1.0, 1.1, 0.9, 1.05])
    weak = t_test([0.2, -0.1, 0.3, 0.0])
    refuted = t_test([-1.0, -1.1, -0.9, -1.05])
    both = all_of([strong, weak])
    assert both.p_claim == max(strong.p_claim, weak.p_claim) and both.part == 1
    assert both.p_contrary == min(1.0, 2 * min(strong.p_contrary, weak.p_contrary))
    assert verdict(both) == INCONCLUSIVE
    # the weak part decides without refuting (it is also the least contrary): its interval at α,
    # both as shown and when an enclosing claim asks for it at α again
    assert both.interval.low == pytest.approx(weak.interval.low)
    assert both.interval_at(0.025).low == pytest.approx(weak.interval.low)
    against = all_of([strong, refuted])
    assert verdict(against) == NOT_REPRODUCED and against.part == 1
    # the refuting part's interval is shown at the level it was judged at (α/2 here)
    assert against.interval.low == pytest.approx(refuted.interval_at(0.0125).low)
    some = any_of([weak, strong])
    assert some.p_claim == pytest.approx(2 * strong.p_claim) and some.part == 1
    assert some.p_contrary == max(weak.p_contrary, strong.p_contrary)
    assert some.interval.low == pytest.approx(strong.interval_at(0.0125).low)
    assert verdict(any_of([refuted, refuted])) == NOT_REPRODUCED
    # a part that can only refute does not need to be shown
    assert all_of([strong, refute_only(weak)]).p_claim == strong.p_claim
    assert verdict(all_of([strong, refute_only(refuted)])) == NOT_REPRODUCED
    with pytest.raises(ValueError, match="no parts"):
        all_of([])


def test_bonferroni_holds_a_false_reproduced_rate_over_many_parts():
    """Some of 8 parts without effect: uncorrected, 1 − 0.975⁸ ≈ 18 % say reproduced."""
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((2000, 8, 5))
    corrected = np.mean(
        [verdict(any_of([t_test(part) for part in table])) == REPRODUCED for table in samples]
    )
    assert corrected <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / 2000)


def test_the_one_sample_guard_tests_at_a_quarter_of_the_level():
    evidence = t_test([0.9, 1.1, 1.0, 0.95], threshold=0.8)
    kept = guarded(evidence)
    assert kept.p_claim == pytest.approx(4 * evidence.p_claim)
    assert kept.interval.low == pytest.approx(evidence.interval_at(0.025 / 4).low)
    assert guarded(t_test([5.0, 1.0, 9.0])).p_contrary == 1.0  # capped


def test_verdict_requires_the_units_a_claim_needs():
    assert verdict(t_test([1.0, 1.1]), min_units=3) == INCONCLUSIVE
    assert limitation(t_test([1.0, 1.1]), min_units=3) == (
        "2 seeds are fewer than the 3 a deep claim needs"
    )


def test_clopper_pearson_matches_the_closed_forms_and_a_known_interval():
    every = clopper_pearson(8, 8)
    assert (every.estimate, every.high, every.n) == (1.0, 1.0, 8)
    assert every.low == pytest.approx(0.025 ** (1 / 8), rel=1e-9)  # (α/2)^(1/n)
    none = clopper_pearson(0, 50)
    assert none.low == 0.0 and none.high == pytest.approx(1 - 0.025 ** (1 / 50), rel=1e-9)
    half = clopper_pearson(5, 10)  # the textbook exact interval of 5/10
    assert (half.low, half.high) == pytest.approx((0.187086, 0.812914), abs=1e-6)
    assert binomial_cdf(5, 10, 0.5) == pytest.approx(638 / 1024)
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(3, 2)
