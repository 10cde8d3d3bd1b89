"""Tests of DCI (lambdabeta.metrics.dci): disentanglement_lib's own cases (dci_test.py), with the
factors drawn here instead of its dummy ground-truth data and fewer samples, so that each fit of
the gradient-boosted classifiers takes a second or two."""

import math

import numpy as np
import pytest
import scipy.stats

from lambdabeta.metrics import (
    dci,
    dci_completeness,
    dci_completeness_per_factor,
    dci_disentanglement,
    dci_disentanglement_per_code,
    dci_importance,
)
from lambdabeta.metrics.dci import normalised_entropy

DIAGONAL = np.diag(5.0 * np.ones(5))
SIZES = (5, 6, 4)


def uniform_factors(random_state, num_samples, sizes=SIZES):
    return np.stack([random_state.randint(size, size=num_samples) for size in sizes], axis=1)


def dci_of(representation, num_train=300, num_test=200, seed=0):
    """DCI of ``representation(factors)`` on factors drawn as disentanglement_lib draws them."""
    random_state = np.random.RandomState(seed)
    train, test = uniform_factors(random_state, num_train), uniform_factors(random_state, num_test)
    return dci(representation(train), train, representation(test), test, random_state)


# ---- importance matrices: disentanglement_lib's DisentanglementTest and CompletenessTest --------


@pytest.mark.parametrize(
    ("importance", "disentanglement", "completeness"),
    [
        pytest.param(DIAGONAL, 1.0, 1.0, id="diagonal"),
        pytest.param(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0, id="empty-code"),
        pytest.param(np.zeros((10, 10)), 0.0, 0.0, id="zero"),
        pytest.param(
            np.vstack([DIAGONAL, DIAGONAL]), 1.0, 1 - math.log(2) / math.log(10), id="redundant"
        ),
        pytest.param(DIAGONAL[:2, :], 1.0, 1.0, id="missed-factors"),
        pytest.param(
            np.hstack([DIAGONAL, DIAGONAL]),
            1 - math.log(2) / math.log(10),
            1.0,
            id="one-code-two-factors",
        ),
    ],
)
def test_disentanglement_lib_importance_cases(importance, disentanglement, completeness):
    # disentanglement_lib's tolerances: assert_allclose's rtol 1e-7, and atol 1e-7 for a zero
    # completeness
    np.testing.assert_allclose(dci_disentanglement(importance), disentanglement, rtol=1e-7)
    np.testing.assert_allclose(dci_completeness(importance), completeness, rtol=1e-7, atol=1e-7)


def test_normalised_entropy_is_scipys_with_the_offset():
    importance = np.random.default_rng(0).random((7, 4))
    importance[2] = 0.0
    np.testing.assert_allclose(
        normalised_entropy(importance, axis=1),
        scipy.stats.entropy(importance.T + 1e-11, base=4),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        normalised_entropy(importance, axis=0),
        scipy.stats.entropy(importance + 1e-11, base=7),
        rtol=1e-12,
    )


def test_scores_are_the_importance_weighted_means_of_the_per_code_and_per_factor_scores():
    importance = np.random.default_rng(1).random((6, 3))
    code_weights = importance.sum(axis=1) / importance.sum()
    factor_weights = importance.sum(axis=0) / importance.sum()
    assert dci_disentanglement(importance) == pytest.approx(
        np.sum(code_weights * dci_disentanglement_per_code(importance)), rel=1e-12
    )
    assert dci_completeness(importance) == pytest.approx(
        np.sum(factor_weights * dci_completeness_per_factor(importance)), rel=1e-12
    )


def test_a_single_factor_or_code_has_zero_entropy_not_nan():
    column = np.array([[0.2], [0.0], [0.8]])
    assert dci_disentanglement(column) == pytest.approx(1.0)
    assert dci_completeness(column.T) == pytest.approx(1.0)


def test_importance_checks():
    with pytest.raises(ValueError, match="codes × factors"):
        dci_disentanglement(np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        dci_completeness(-np.eye(2))


# ---- whole metric: disentanglement_lib's DCITest ------------------------------------------------


def test_identity_code_scores_near_one():
    scores = dci_of(lambda factors: factors.astype(np.float64))
    assert 0.9 <= scores["disentanglement"] <= 1.0
    assert 0.9 <= scores["completeness"] <= 1.0
    assert scores["informativeness_train"] == scores["informativeness_test"] == 1.0


def test_permuted_code_columns_score_the_same():
    scores = dci_of(lambda factors: factors[:, ::-1].astype(np.float64))
    assert 0.9 <= scores["disentanglement"] <= 1.0
    assert 0.9 <= scores["completeness"] <= 1.0


def test_codes_shuffled_per_sample_score_low():
    """disentanglement_lib's ``test_bad_metric``: each sample's factor values in random order."""
    shuffler = np.random.RandomState(0)

    def representation(factors):
        return np.stack([shuffler.permutation(row) for row in factors]).astype(np.float64)

    scores = dci_of(representation)
    assert 0.0 <= scores["disentanglement"] <= 0.2
    assert 0.0 <= scores["completeness"] <= 0.2


def test_duplicated_code_keeps_disentanglement_and_halves_completeness():
    """disentanglement_lib's ``test_duplicated_latent_space``: each factor's importance split over
    two of the 2K codes gives completeness ``1 − log 2 / log 2K`` (base 2K: the number of codes)."""
    scores = dci_of(lambda factors: np.hstack([factors, factors]).astype(np.float64))
    assert 0.9 <= scores["disentanglement"] <= 1.0
    target = 1 - math.log(2) / math.log(2 * len(SIZES))
    assert target - 0.1 <= scores["completeness"] <= target + 0.1


def test_constant_code_scores_zero_and_predicts_the_majority_class():
    random_state = np.random.RandomState(2)
    train, test = uniform_factors(random_state, 300), uniform_factors(random_state, 200)
    codes_train, codes_test = np.full((300, 4), 3.0), np.full((200, 4), 3.0)
    importance, train_accuracy, test_accuracy = dci_importance(
        codes_train, train, codes_test, test, 0
    )
    np.testing.assert_array_equal(importance, 0.0)
    majority = [np.bincount(column).argmax() for column in train.T]
    np.testing.assert_allclose(train_accuracy, np.mean(train == majority, axis=0))
    np.testing.assert_allclose(test_accuracy, np.mean(test == majority, axis=0))
    assert dci_disentanglement(importance) == pytest.approx(0.0, abs=1e-7)
    assert dci_completeness(importance) == pytest.approx(0.0, abs=1e-7)


def test_a_factor_with_one_training_class_has_no_importance():
    random_state = np.random.RandomState(3)
    train = uniform_factors(random_state, 200, (4, 1))
    test = uniform_factors(random_state, 100, (4, 2))
    importance, train_accuracy, test_accuracy = dci_importance(
        train.astype(float), train, test.astype(float), test, 0
    )
    np.testing.assert_array_equal(importance[:, 1], 0.0)
    assert train_accuracy[1] == 1.0
    assert test_accuracy[1] == np.mean(test[:, 1] == 0)


def test_same_random_state_gives_the_same_scores():
    shuffled = np.random.RandomState(4)
    train, test = uniform_factors(shuffled, 120, (4, 3)), uniform_factors(shuffled, 60, (4, 3))
    noisy_train = train + shuffled.normal(scale=1.0, size=train.shape)
    noisy_test = test + shuffled.normal(scale=1.0, size=test.shape)

    def run(random_state):
        return dci(noisy_train, train, noisy_test, test, random_state)

    first = run(np.random.RandomState(7))
    assert first == run(np.random.RandomState(7))
    assert 0.0 < first["disentanglement"] < 1.0 and first["informativeness_test"] < 1.0


def test_input_checks():
    codes, factors = np.zeros((10, 2)), np.zeros((10, 3), dtype=int)
    with pytest.raises(ValueError, match="codes_test has 9 samples"):
        dci(codes, factors, codes[:9], factors, 0)
    with pytest.raises(ValueError, match="2 codes but codes_test 3"):
        dci(codes, factors, np.zeros((10, 3)), factors, 0)
    with pytest.raises(ValueError, match="NaN or inf"):
        dci(codes + np.nan, factors, codes, factors, 0)
