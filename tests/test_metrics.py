"""Tests of lambdabeta.metrics: exact values, agreement with the reference estimators, behaviour."""

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from lambdabeta.metrics import (
    discrete_entropy,
    discrete_mutual_information,
    discretize,
    im_score,
    matched_information,
    mig_per_factor,
    mutual_information_gap,
    mutual_information_matrix,
    null_upper_point,
    permutation_null,
    sap_accuracies,
    sap_matrix,
    sap_predictions,
    sap_score,
    top_two_gap,
)

# disentanglement_lib's test arrays have one row per variable; ours have one row per sample.
LATENT_ROWS = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])


def uniform_factors(rng, num_samples, sizes):
    return np.stack([rng.integers(0, size, num_samples) for size in sizes], axis=1)


# ---- exact values ------------------------------------------------------------------------------


def test_discretize_example_into_three_bins():
    discrete = discretize(LATENT_ROWS.T, num_bins=3)
    np.testing.assert_array_equal(discrete.T, [[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]])
    assert discrete.dtype == np.int64


def test_entropy_of_discretized_example_is_log_three():
    entropy = discrete_entropy(discretize(LATENT_ROWS.T, num_bins=3))
    np.testing.assert_allclose(entropy, [math.log(3), math.log(3)], rtol=1e-12)


def test_mutual_information_example():
    xs = np.array([[1, 2, 1, 2], [1, 1, 2, 2]])
    ys = np.array([[1, 2, 1, 2], [2, 2, 1, 1]])
    mi = mutual_information_matrix(xs.T, ys.T)
    np.testing.assert_allclose(mi, [[math.log(2), 0.0], [0.0, math.log(2)]], atol=1e-12)


# ---- agreement with numpy / scikit-learn on random data ----------------------------------------


def test_discretize_equals_histogram_edges_and_digitize():
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(500, 6)) * rng.uniform(0.01, 10, size=6) + rng.normal(size=6)
    codes[:, 2] = 3.7  # constant latent: np.histogram uses the range [3.2, 4.2]
    discrete = discretize(codes, num_bins=20)
    reference = np.stack(
        [np.digitize(column, np.histogram(column, bins=20)[1][:-1]) for column in codes.T], axis=1
    )
    np.testing.assert_array_equal(discrete, reference)
    assert discrete.min() >= 1 and discrete.max() == 20
    assert np.unique(discrete[:, 2]).size == 1


def test_discretize_rejects_non_finite_codes():
    codes = np.zeros((10, 3))
    codes[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in latent column\(s\) \[1\]"):
        discretize(codes)


def test_mutual_information_and_entropy_match_sklearn():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 7, size=(800, 4)) * 3 - 5  # labels need not be 0..n-1
    factors = uniform_factors(rng, 800, (2, 5, 11))
    factors[:, 1] = (codes[:, 0] + rng.integers(0, 2, 800)) % 5  # a dependent pair
    mi = mutual_information_matrix(codes, factors)
    reference = [[mutual_info_score(f, c) for f in factors.T] for c in codes.T]
    np.testing.assert_allclose(mi, reference, rtol=1e-10, atol=1e-14)
    entropies = [mutual_info_score(f, f) for f in factors.T]
    np.testing.assert_allclose(discrete_entropy(factors), entropies, rtol=1e-12)


def test_mutual_information_input_checks():
    with pytest.raises(ValueError, match=r"discrete_codes has 4 samples .* factors has 3"):
        mutual_information_matrix(np.zeros((4, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one row per sample"):
        mutual_information_matrix(np.zeros(4), np.zeros((4, 1)))


# ---- behaviour of the scores -------------------------------------------------------------------


def test_identity_code_of_uniform_factors_has_mig_near_one():
    rng = np.random.default_rng(3)
    factors = uniform_factors(rng, 5000, [4] * 10)
    mig = mutual_information_gap(factors.astype(float), factors)
    assert 0.9 <= mig <= 1.0


def test_zero_code_scores_zero():
    rng = np.random.default_rng(4)
    factors = uniform_factors(rng, 600, (3, 5))
    codes = np.zeros((600, 4))
    assert mutual_information_gap(codes, factors) == 0.0
    assert im_score(codes, factors) == 0.0
    assert sap_score(codes[:400], factors[:400], codes[400:], factors[400:]) == 0.0


def test_duplicated_latents_drive_mig_and_sap_to_zero():
    rng = np.random.default_rng(5)
    factors = uniform_factors(rng, 900, (3, 6))
    identity = factors.astype(float) + rng.normal(scale=0.05, size=factors.shape)
    duplicated = np.repeat(identity, 2, axis=1)  # every latent twice
    train, test = slice(0, 600), slice(600, None)
    assert mutual_information_gap(identity, factors) > 0.9
    assert sap_score(identity[train], factors[train], identity[test], factors[test]) > 0.3
    assert mutual_information_gap(duplicated, factors) == pytest.approx(0.0, abs=1e-12)
    assert sap_score(
        duplicated[train], factors[train], duplicated[test], factors[test]
    ) == pytest.approx(0.0, abs=1e-12)


def test_rotating_two_latents_lowers_mig():
    rng = np.random.default_rng(6)
    factors = uniform_factors(rng, 4000, (10, 10))
    codes = factors + rng.uniform(-0.5, 0.5, size=factors.shape)
    angle = math.pi / 4
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    aligned = mutual_information_gap(codes, factors)
    rotated = mutual_information_gap(codes @ rotation.T, factors)
    assert rotated < aligned - 0.3


def test_im_of_identity_code_is_sum_of_factor_entropies():
    rng = np.random.default_rng(7)
    factors = uniform_factors(rng, 3000, (2, 5, 20))  # ≤ 20 classes: one bin per class
    extra = rng.normal(size=(3000, 2))  # more latents than factors: two stay unmatched
    codes = np.concatenate([extra[:, :1], factors.astype(float), extra[:, 1:]], axis=1)
    assert im_score(codes, factors) == pytest.approx(discrete_entropy(factors).sum(), rel=1e-12)


def test_matched_information_is_a_one_to_one_matching():
    mi = np.array([[0.9, 0.8, 0.0], [0.7, 0.1, 0.0]])  # 2 latents, 3 factors: latents match once
    assert matched_information(mi) == pytest.approx(0.8 + 0.7)
    assert matched_information(mi.T) == pytest.approx(0.8 + 0.7)


def test_constant_latent_and_zero_entropy_factor_give_finite_scores_without_warnings():
    rng = np.random.default_rng(8)
    factors = uniform_factors(rng, 600, (4, 1, 3))  # factor 1 is constant
    codes = np.concatenate([factors.astype(float), np.full((600, 1), 2.5)], axis=1)
    train, test = slice(0, 400), slice(400, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mi = discrete_mutual_information(codes, factors)
        entropies = discrete_entropy(factors)
        mig = mig_per_factor(mi, entropies)
        sap = sap_matrix(codes[train], factors[train], codes[test], factors[test])
        im = im_score(codes, factors)
    assert np.isfinite(mi).all() and np.isfinite(mig).all() and np.isfinite(sap).all()
    np.testing.assert_array_equal(mi[3], 0.0)  # the constant latent carries nothing
    assert entropies[1] == 0.0 and mig[1] == 0.0  # the constant factor contributes 0
    np.testing.assert_array_equal(sap[:, 1], 1.0)  # its single class is always predicted
    assert mig[0] > 0.9 and mig[2] > 0.9
    assert math.isfinite(im)


def test_single_latent_gap_is_the_top_value_itself():
    rng = np.random.default_rng(9)
    factors = uniform_factors(rng, 1000, (4, 3))
    code = factors[:, :1].astype(float)
    mi = discrete_mutual_information(code, factors)
    expected = mi[0] / discrete_entropy(factors)
    np.testing.assert_allclose(mig_per_factor(mi, discrete_entropy(factors)), expected)
    assert mutual_information_gap(code, factors) == pytest.approx(expected.mean())
    np.testing.assert_array_equal(top_two_gap(np.array([[0.3, 0.5]])), [0.3, 0.5])


def test_top_two_gap_per_column():
    scores = np.array([[0.1, 0.9], [0.5, 0.2], [0.4, 0.9]])
    np.testing.assert_allclose(top_two_gap(scores), [0.1, 0.0])


def test_sap_matrix_is_the_plain_definition_and_independent_of_threads():
    rng = np.random.default_rng(10)
    factors = uniform_factors(rng, 900, (3, 8))
    codes = np.stack(
        [factors[:, 0] + rng.normal(scale=0.4, size=900), rng.normal(size=900) * 5, factors[:, 1]],
        axis=1,
    )
    train, test = slice(0, 600), slice(600, None)
    reference = np.empty((3, 2))
    for latent in range(3):
        for factor in range(2):
            classifier = LinearSVC(C=0.01, class_weight="balanced")
            classifier.fit(codes[train, latent : latent + 1], factors[train, factor])
            prediction = classifier.predict(codes[test, latent : latent + 1])
            reference[latent, factor] = np.mean(prediction == factors[test, factor])
    one_thread = sap_matrix(codes[train], factors[train], codes[test], factors[test], C=0.01)
    two_threads = sap_matrix(
        codes[train], factors[train], codes[test], factors[test], C=0.01, n_jobs=2
    )
    np.testing.assert_array_equal(one_thread, reference)
    np.testing.assert_array_equal(two_threads, reference)
    expected_sap = np.mean(np.sort(reference, axis=0)[-1] - np.sort(reference, axis=0)[-2])
    assert sap_score(codes[train], factors[train], codes[test], factors[test]) == pytest.approx(
        expected_sap
    )


def test_sap_input_checks():
    codes, factors = np.zeros((10, 2)), np.zeros((10, 1), dtype=int)
    with pytest.raises(ValueError, match="train_codes has 2 codes but test_codes 3"):
        sap_matrix(codes, factors, np.zeros((5, 3)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"test_codes has 5 samples .* test_factors has 4"):
        sap_matrix(codes, factors, np.zeros((5, 2)), np.zeros((4, 1)))


# ---- permutation null ------------------------------------------------------------------------


def null_of(codes, factors, shuffles=19, seed=0):
    """The permutation null of ``codes`` with their first 300 rows as the train set."""
    train, test = slice(0, 300), slice(300, None)
    predictions = sap_predictions(codes[train], factors[train], codes[test], factors[test])
    binned = discretize(codes[train], 20)
    return permutation_null(binned, factors[train], predictions, factors[test], shuffles, seed)


def test_permutation_null_of_an_identity_code_lies_far_below_its_scores():
    rng = np.random.default_rng(0)
    factors = uniform_factors(rng, 400, (4, 5))
    codes = factors + 0.01 * rng.standard_normal(factors.shape)
    null = null_of(codes, factors)
    assert set(null) == {"mig", "sap", "im"} and all(len(v) == 19 for v in null.values())
    train = slice(0, 300)
    assert (
        null_upper_point(null["mig"]) < 0.1 < mutual_information_gap(codes[train], factors[train])
    )
    assert null_upper_point(null["im"]) < 0.3 < im_score(codes[train], factors[train])
    assert (
        null_upper_point(null["sap"])
        < 0.1
        < sap_score(codes[train], factors[train], codes[300:], factors[300:])
    )
    # seeded: the same shuffles again, others with another seed
    again = null_of(codes, factors)
    assert all(np.array_equal(null[k], again[k]) for k in null)
    assert not np.array_equal(null["im"], null_of(codes, factors, seed=1)["im"])


def test_permutation_null_of_an_uninformative_code_covers_its_score():
    """A code independent of the factors scores like its shuffles: its permutation p-value is
    uniform, so over many codes it exceeds the upper 95 % point about 1 time in 20."""
    rng = np.random.default_rng(1)
    above = 0
    for _ in range(40):
        factors = uniform_factors(rng, 400, (3, 4))
        codes = rng.standard_normal((400, 3))
        null = null_of(codes, factors)
        mutual = discrete_mutual_information(codes[:300], factors[:300], 20)
        above += matched_information(mutual) > null_upper_point(null["im"])
    assert above <= 6  # 40 × 5 % = 2 expected; 6 or more has probability < 1.5 %


def test_null_upper_point_is_the_permutation_tests_critical_value():
    assert null_upper_point(np.arange(19.0)) == 18.0  # ⌈0.95 · 20⌉ = 19th smallest: the largest
    assert null_upper_point(np.arange(39.0)[::-1]) == 37.0  # the 38th smallest of 39
    with pytest.raises(ValueError, match="at least 19 shuffles"):
        null_upper_point(np.arange(10.0))


def test_sap_predictions_give_the_sap_matrix():
    rng = np.random.default_rng(2)
    factors = uniform_factors(rng, 200, (3, 2))
    codes = factors + rng.standard_normal(factors.shape)
    predictions = sap_predictions(codes[:150], factors[:150], codes[150:], factors[150:])
    assert predictions.shape == (2, 2, 50)
    np.testing.assert_array_equal(
        sap_accuracies(predictions, factors[150:]),
        sap_matrix(codes[:150], factors[:150], codes[150:], factors[150:]),
    )
