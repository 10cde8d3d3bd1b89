"""Tests of the FactorVAE score (lambdabeta.metrics.factor_vae): disentanglement_lib's own cases
(factor_vae_test.py) on a ground truth whose "images" are the factor values themselves, and a
vote-by-vote reference that draws, encodes and votes one batch at a time as disentanglement_lib
does."""

import numpy as np
import pytest

from lambdabeta.metrics import factor_vae_score
from lambdabeta.metrics.factor_vae import (
    active_dimensions,
    batch_votes,
    majority_vote_classifier,
    sample_factors,
    vote_accuracy,
)

SIZES = [5, 6, 4]


def images_of(factors):
    return factors.astype(np.float64)


def score(encode, sizes=SIZES, seed=0, batch_size=16, num_train=300, num_eval=200, **kwargs):
    return factor_vae_score(
        encode,
        sizes,
        images_of,
        batch_size,
        num_train,
        num_eval,
        500,
        np.random.RandomState(seed),
        **kwargs,
    )


def reference_score(encode, sizes, batch_size, num_train, num_eval, num_variance, seed, threshold):
    """disentanglement_lib's procedure, one vote at a time (votes over all m dimensions)."""
    random_state = np.random.RandomState(seed)

    def draw(num):
        return np.stack([random_state.randint(size, size=num) for size in sizes], axis=1)

    variances = np.var(encode(images_of(draw(num_variance))), axis=0, ddof=1)
    active = np.sqrt(variances) >= threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}

    def votes(num_votes):
        counts = np.zeros((len(sizes), len(variances)), dtype=np.int64)
        for _ in range(num_votes):
            k = random_state.randint(len(sizes))
            factors = draw(batch_size)
            factors[:, k] = factors[0, k]
            local = np.var(encode(images_of(factors)), axis=0, ddof=1)
            counts[k, np.argmin(local[active] / variances[active])] += 1
        return counts

    train = votes(num_train)
    classifier = np.argmax(train, axis=0)
    evaluation = votes(num_eval)
    columns = np.arange(len(variances))
    return {
        "train_accuracy": train[classifier, columns].sum() / train.sum(),
        "eval_accuracy": evaluation[classifier, columns].sum() / evaluation.sum(),
        "num_active_dims": int(active.sum()),
    }


# ---- disentanglement_lib's FactorVaeTest --------------------------------------------------------


def test_disentanglement_lib_identity_case_scores_near_one():
    """``test_metric``: 10 factors of 10 values, identity code, batch 5, 3000 training votes,
    2000 evaluation votes, 2500 images for the variances, RandomState(0): both in [0.9, 1]."""
    scores = factor_vae_score(
        lambda x: x, [10] * 10, images_of, 5, 3000, 2000, 2500, np.random.RandomState(0)
    )
    assert 0.9 <= scores["train_accuracy"] <= 1.0
    assert 0.9 <= scores["eval_accuracy"] <= 1.0
    assert scores["num_active_dims"] == 10


def test_disentanglement_lib_zero_code_case_scores_low_without_pruning():
    """``test_bad_metric`` runs with ``_prune_dims``' default threshold 0, which keeps the zero
    code's dimensions: every vote goes to the first one, and both scores are in [0, 0.2]."""
    scores = factor_vae_score(
        np.zeros_like,
        [10] * 10,
        images_of,
        5,
        3000,
        2000,
        2500,
        np.random.RandomState(0),
        prune_threshold=0.0,
    )
    assert 0.0 <= scores["train_accuracy"] <= 0.2
    assert 0.0 <= scores["eval_accuracy"] <= 0.2


@pytest.mark.parametrize("encode", [np.zeros_like, lambda x: np.full(x.shape, 7.0)])
def test_collapsed_code_has_no_active_dimension_and_scores_zero(encode):
    scores = score(encode)
    assert scores == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


# ---- behaviour ---------------------------------------------------------------------------------


def test_identity_code_scores_one():
    scores = score(lambda x: x)
    assert scores["train_accuracy"] == pytest.approx(1.0, abs=0.02)
    assert scores["eval_accuracy"] == pytest.approx(1.0, abs=0.02)
    assert scores["num_active_dims"] == 3


def test_permuted_code_scores_the_same():
    assert score(lambda x: x[:, [2, 0, 1]]) == score(lambda x: x)


def test_duplicated_and_collapsed_dimensions():
    """A copy of each dimension does not lower the score (the first copy takes the votes); a
    dimension of standard deviation below 0.05 is pruned."""

    def encode(x):
        return np.hstack([x, x, 0.01 * x[:, :1]])

    scores = score(encode)
    assert scores["train_accuracy"] == pytest.approx(1.0, abs=0.02)
    assert scores["num_active_dims"] == 6


def test_matches_the_vote_by_vote_reference_exactly():
    """Same draws in the same order, whatever the number of images per call, and a pruned
    dimension in the middle of the code."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(3, 5))
    mixing[:, 2] *= 0.001  # collapsed: standard deviation < 0.05

    def encode(x):
        return x @ mixing

    expected = reference_score(encode, SIZES, 16, 300, 200, 500, seed=3, threshold=0.05)
    assert expected["num_active_dims"] == 4
    for images_per_call in (16, 100, 4096):
        scores = score(encode, seed=3, images_per_call=images_per_call)
        assert scores == pytest.approx(expected)


def test_same_random_state_gives_the_same_scores():
    def encode(x):
        return x + np.sin(7 * x.sum(axis=1, keepdims=True))

    first = score(encode, seed=11)
    assert score(encode, seed=11) == first
    assert 0.0 < first["eval_accuracy"] < 1.0


def test_parts():
    random_state = np.random.RandomState(0)
    factors = sample_factors([2, 3], 1000, random_state)
    assert factors.shape == (1000, 2) and factors.dtype == np.int64
    np.testing.assert_array_equal(np.unique(factors[:, 1]), [0, 1, 2])
    again = np.random.RandomState(0)
    np.testing.assert_array_equal(factors[:, 0], again.randint(2, size=1000))
    np.testing.assert_array_equal(factors[:, 1], again.randint(3, size=1000))

    np.testing.assert_array_equal(
        active_dimensions(np.array([0.0, 0.0024, 0.0025, 1.0])), [False, False, True, True]
    )
    # ratios to the global variances: [0.5, (0, inactive), 3] and [0.5, (0), 0.2]
    variances = np.array([[4.0, 0.0, 3.0], [4.0, 0.0, 0.2]])
    np.testing.assert_array_equal(
        batch_votes(variances, np.array([8.0, 1.0, 1.0]), np.array([True, False, True])), [0, 1]
    )
    votes = np.array([[5, 0, 1], [2, 3, 1]])
    np.testing.assert_array_equal(majority_vote_classifier(votes), [0, 1, 0])
    assert vote_accuracy(votes, majority_vote_classifier(votes)) == pytest.approx(9 / 12)


def test_input_checks():
    with pytest.raises(ValueError, match="batch_size must be ≥ 2"):
        score(lambda x: x, batch_size=1)
    with pytest.raises(ValueError, match="factor_sizes"):
        score(lambda x: x, sizes=[3, 0])
    with pytest.raises(ValueError, match="encode must return"):
        score(lambda x: x[:, 0])
