"""FactorVAE score (Kim & Mnih, 2018): how well the code dimension that varies least in a batch
with one factor held fixed names that factor.

As disentanglement_lib computes it (``evaluation/metrics/factor_vae.py``, with its studies'
``prune_dims.threshold = 0.05``): the codes of ``num_variance_estimate`` random images give each
dimension's global variance; dimensions whose global standard deviation is below 0.05 have
collapsed and are pruned. A vote draws a factor ``k`` uniformly, a batch of ``batch_size`` random
factor values with factor ``k`` set to the batch's first value, and pairs ``k`` with the active
dimension of least variance over the batch divided by its global variance. The majority-vote
classifier maps each dimension to the factor it was paired with most often in ``num_train``
votes; the scores are its accuracy on those votes and on ``num_eval`` fresh ones. With no active
dimension both scores are 0. Codes have one row per image (N × m), factors one row per sample
(N × K), as in the rest of ``lambdabeta.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: disentanglement_lib's studies prune a dimension whose standard deviation (not variance) over
#: the data is below this.
PRUNE_THRESHOLD = 0.05


def sample_factors(
    factor_sizes: Sequence[int], num: int, random_state: np.random.RandomState
) -> np.ndarray:
    """``num`` × K factor values, column ``k`` uniform on {0, …, |V_k| − 1}.

    One ``random_state.randint(|V_k|, size=num)`` per factor, in factor order, as
    disentanglement_lib's ground-truth data sample their factors.
    """
    columns = [random_state.randint(size, size=num) for size in factor_sizes]
    return np.stack(columns, axis=1).astype(np.int64)


def code_variances(codes: np.ndarray) -> np.ndarray:
    """Unbiased variance of each dimension over the samples (axis −2, n rows):
    ``s²_d = Σ_i (z_id − z̄_d)² / (n − 1)``. For a stack of batches (… × n × m), one row of
    variances per batch."""
    return np.var(codes, axis=-2, ddof=1)


def active_dimensions(
    global_variances: np.ndarray, threshold: float = PRUNE_THRESHOLD
) -> np.ndarray:
    """Mask of the dimensions that have not collapsed: ``√(s²_d) ≥ threshold``."""
    return np.sqrt(np.asarray(global_variances, dtype=np.float64)) >= threshold


def batch_votes(
    batch_variances: np.ndarray, global_variances: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """The dimension each batch votes for: ``argmin_{d active} s²_batch,d / s²_d``.

    ``batch_variances`` is B × m (one row per batch), ``global_variances`` length m and
    ``active`` the mask of :func:`active_dimensions`; the result counts among the active
    dimensions only (0 … a − 1), the first on ties.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # only reachable with threshold 0
        normalised = batch_variances[:, active] / global_variances[active]
    return np.argmin(normalised, axis=1)


def vote_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    """Accuracy of the majority-vote ``classifier`` (factor per dimension) on ``votes`` (K × a,
    ``votes[k, d]`` the votes pairing factor ``k`` with dimension ``d``):
    ``Σ_d votes[classifier_d, d] / Σ votes``."""
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


def majority_vote_classifier(votes: np.ndarray) -> np.ndarray:
    """The factor each dimension was paired with most often: ``argmax_k votes[k, d]`` (the first
    factor on ties; a dimension with no vote maps to factor 0)."""
    return np.argmax(votes, axis=0)


def factor_vae_votes(
    encode: Callable[[Any], np.ndarray],
    factor_sizes: Sequence[int],
    images_of: Callable[[np.ndarray], Any],
    batch_size: int,
    num_votes: int,
    random_state: np.random.RandomState,
    global_variances: np.ndarray,
    active: np.ndarray,
    images_per_call: int = 4096,
) -> np.ndarray:
    """Votes matrix (K × a, int64) of ``num_votes`` batches, each with one factor held fixed.

    Vote ``v`` draws ``k = random_state.randint(K)``, then ``batch_size`` factor values
    (:func:`sample_factors`) whose column ``k`` is set to its first value, and adds one to
    ``votes[k, batch_votes(...)]``, in disentanglement_lib's order of draws. The batches of
    ``⌊images_per_call / batch_size⌋`` consecutive votes (at least one) go to ``images_of`` and
    ``encode`` together: fewer calls, the same votes.
    """
    num_factors, num_active = len(factor_sizes), int(np.sum(active))
    votes = np.zeros((num_factors, num_active), dtype=np.int64)
    per_call = max(1, images_per_call // batch_size)
    for start in range(0, num_votes, per_call):
        fixed = np.empty(min(per_call, num_votes - start), dtype=np.int64)
        batches = []
        for v in range(len(fixed)):
            fixed[v] = random_state.randint(num_factors)
            factors = sample_factors(factor_sizes, batch_size, random_state)
            factors[:, fixed[v]] = factors[0, fixed[v]]
            batches.append(factors)
        codes = _encode(encode, images_of(np.concatenate(batches)), len(fixed) * batch_size)
        variances = code_variances(codes.reshape(len(fixed), batch_size, -1))
        np.add.at(votes, (fixed, batch_votes(variances, global_variances, active)), 1)
    return votes


def factor_vae_score(
    encode: Callable[[Any], np.ndarray],
    factor_sizes: Sequence[int],
    images_of: Callable[[np.ndarray], Any],
    batch_size: int,
    num_train: int,
    num_eval: int,
    num_variance_estimate: int,
    random_state: np.random.RandomState,
    *,
    prune_threshold: float = PRUNE_THRESHOLD,
    images_per_call: int = 4096,
) -> dict[str, float | int]:
    """FactorVAE score of the representation ``encode`` on the ground truth ``images_of``.

    ``factor_sizes[k]`` is the number of values of factor ``k``; ``images_of(f)`` returns the
    images of the N × K integer factor values ``f`` and ``encode(images)`` their N × m codes.
    Steps, all drawing from ``random_state`` (a ``numpy.random.RandomState``; an int seeds one):
    ``s² = code_variances(encode(images_of(sample_factors(..., num_variance_estimate, ...))))``,
    ``active = active_dimensions(s², prune_threshold)``; if none is active, both accuracies and
    ``num_active_dims`` are 0. Otherwise ``c = majority_vote_classifier(T)`` of the training
    votes ``T`` (:func:`factor_vae_votes`, ``num_train`` of them) and
    ``train_accuracy = vote_accuracy(T, c)``, ``eval_accuracy = vote_accuracy(E, c)`` with ``E``
    the ``num_eval`` votes drawn next. ``num_active_dims`` is the number of active dimensions.
    The same seed gives the same scores. At most ``images_per_call`` images go to one call
    of ``images_of`` and ``encode`` (at least one batch).
    """
    if not isinstance(random_state, np.random.RandomState):
        random_state = np.random.RandomState(random_state)
    factor_sizes = [int(size) for size in factor_sizes]
    if not factor_sizes or min(factor_sizes) < 1:
        raise ValueError(f"factor_sizes must be ≥ 1 values, one per factor, got {factor_sizes}")
    for name, value, least in (
        ("batch_size", batch_size, 2),
        ("num_train", num_train, 1),
        ("num_eval", num_eval, 1),
        ("num_variance_estimate", num_variance_estimate, 2),
        ("images_per_call", images_per_call, 1),
    ):
        if value < least:
            raise ValueError(f"{name} must be ≥ {least}, got {value}")

    factors = sample_factors(factor_sizes, num_variance_estimate, random_state)
    codes = [
        _encode(encode, images_of(chunk), len(chunk))
        for chunk in np.array_split(factors, range(images_per_call, len(factors), images_per_call))
    ]
    global_variances = code_variances(np.concatenate(codes))
    active = active_dimensions(global_variances, prune_threshold)
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}

    def votes(num_votes: int) -> np.ndarray:
        return factor_vae_votes(
            encode,
            factor_sizes,
            images_of,
            batch_size,
            num_votes,
            random_state,
            global_variances,
            active,
            images_per_call,
        )

    train_votes = votes(num_train)
    classifier = majority_vote_classifier(train_votes)
    eval_votes = votes(num_eval)
    return {
        "train_accuracy": vote_accuracy(train_votes, classifier),
        "eval_accuracy": vote_accuracy(eval_votes, classifier),
        "num_active_dims": int(active.sum()),
    }


def _encode(encode: Callable[[Any], np.ndarray], images: Any, num: int) -> np.ndarray:
    codes = np.asarray(encode(images), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != num or codes.shape[1] == 0:
        raise ValueError(f"encode must return {num} × m codes, got shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("encode returned NaN or inf codes")
    return codes
