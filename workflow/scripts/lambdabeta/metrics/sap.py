"""SAP (Kumar et al., 2018) for discrete factors: one-latent linear classifiers' test accuracies.

``A[l, k]`` is the test accuracy of a ``LinearSVC`` that predicts factor ``k`` from latent ``l``
alone; SAP is the mean over factors of the gap between the two best latents' accuracies. A factor
with a single training class is predicted as that class by every latent.
"""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import product

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from ._arrays import _as_samples_by_columns, _classifier_split
from .mig import top_two_gap

logger = logging.getLogger(__name__)


def sap_predictions(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    C: float = 0.01,
    n_jobs: int = 1,
) -> np.ndarray:
    """The test-set predictions of every one-latent SAP classifier: (L, K, N_test).

    Entry (l, k) holds the classes that ``LinearSVC(C=C, class_weight="balanced")``
    (one-vs-rest squared hinge, scikit-learn's defaults otherwise), fitted on the train set with
    latent ``l`` as its only feature and factor ``k`` as the class, predicts for the test set.
    The feature is used as is: liblinear regularises the intercept too, so rescaling it would
    change the classifier. A factor with a single class in the train set is predicted as that
    class by every latent. The L × K fits are independent and run on ``n_jobs`` threads
    (liblinear releases the GIL); the result does not depend on ``n_jobs``.
    """
    train_codes, test_codes, train_factors, test_factors = _classifier_split(
        (train_codes, test_codes),
        (train_factors, test_factors),
        ("train_codes", "test_codes", "train_factors", "test_factors"),
        "SAP",
    )
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be ≥ 1, got {n_jobs}")

    def predict(pair: tuple[int, int]) -> np.ndarray:
        latent, factor = pair
        classes = np.unique(train_factors[:, factor])
        if classes.size == 1:
            return np.full(len(test_codes), classes[0], dtype=train_factors.dtype)
        classifier = LinearSVC(C=C, class_weight="balanced", dual="auto")
        classifier.fit(train_codes[:, latent : latent + 1], train_factors[:, factor])
        return classifier.predict(test_codes[:, latent : latent + 1])

    num_latents, num_factors = train_codes.shape[1], train_factors.shape[1]
    pairs = list(product(range(num_latents), range(num_factors)))
    # Warnings are collected here, in the calling thread, because the warnings filters are
    # process-wide; a poorly converged fit is reported once for the whole matrix.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            predictions = np.stack(list(pool.map(predict, pairs)))
    not_converged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if not_converged:
        logger.warning(
            "SAP: %d of %d LinearSVC fits stopped at max_iter before converging",
            len(not_converged),
            len(pairs),
        )
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return predictions.reshape(num_latents, num_factors, len(test_codes))


def sap_accuracies(predictions: np.ndarray, test_factors: np.ndarray) -> np.ndarray:
    """Test accuracy (L × K) of the SAP classifiers' ``predictions`` (L × K × N) against the
    ``test_factors`` (N × K): the fraction of test samples each one classifies right."""
    test_factors = _as_samples_by_columns(test_factors, "test_factors")
    return np.mean(predictions == test_factors.T[None, :, :], axis=2)


def sap_matrix(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    C: float = 0.01,
    n_jobs: int = 1,
) -> np.ndarray:
    """Test accuracy of predicting each factor from each single latent (L × K, discrete factors):
    :func:`sap_accuracies` of :func:`sap_predictions`."""
    predictions = sap_predictions(
        train_codes, train_factors, test_codes, test_factors, C=C, n_jobs=n_jobs
    )
    return sap_accuracies(predictions, test_factors)


def sap_score(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    C: float = 0.01,
    n_jobs: int = 1,
) -> float:
    """SAP (Kumar et al., 2018) for discrete factors: mean over factors of the top-two gap.

    ``SAP = (1/K) Σ_k (A_{j_k, k} − A_{j'_k, k})`` with ``A = sap_matrix(...)`` the L × K test
    accuracies of one-latent linear classifiers and ``j_k``, ``j'_k`` the best and second best
    latents for factor ``k``. With a single latent the gap is its accuracy itself.
    """
    scores = sap_matrix(train_codes, train_factors, test_codes, test_factors, C=C, n_jobs=n_jobs)
    return float(top_two_gap(scores).mean())
