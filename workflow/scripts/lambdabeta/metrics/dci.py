"""DCI (Eastwood & Williams, 2018): disentanglement, completeness and informativeness of codes.

As disentanglement_lib computes it (``evaluation/metrics/dci.py``): one
``sklearn.ensemble.GradientBoostingClassifier`` (scikit-learn's defaults) per factor, fitted on
all codes to predict that factor, gives the m × K importance matrix ``R`` (codes × factors,
``R[j, k]`` the absolute ``feature_importances_`` of code ``j`` in factor ``k``'s classifier).
Disentanglement weighs each code's one-minus-normalised-entropy over the factors, completeness
each factor's over the codes; informativeness is the classifiers' mean accuracy, on the training
and on the test samples. Arrays have one row per sample, as in the rest of ``lambdabeta.metrics``
(codes N × m, factors N × K; disentanglement_lib stores their transposes).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from ._arrays import _classifier_split

#: Added to every importance before normalising, as disentanglement_lib does, so that a code
#: (or factor) with no importance at all has the uniform distribution, not 0/0.
IMPORTANCE_OFFSET = 1e-11


def dci_importance(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    random_state: int | np.random.RandomState | None,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The importance matrix (m × K) and each factor's train and test accuracy (length K).

    For factor ``k`` a ``GradientBoostingClassifier(random_state=random_state)`` is fitted on
    ``codes_train`` (N × m) to predict ``factors_train[:, k]``;
    ``R[:, k] = |feature_importances_|`` and the accuracies are the fractions of training and test
    samples whose factor it predicts right. The K classifiers are fitted in factor order, so a
    ``RandomState`` passed as ``random_state`` is drawn from in that order (an int seeds each
    classifier alike). A factor with a single class in the training set is predicted as that
    class and has no importance (disentanglement_lib's classifier refuses one class).
    """
    codes_train, codes_test, factors_train, factors_test = _classifier_split(
        (codes_train, codes_test),
        (factors_train, factors_test),
        ("codes_train", "codes_test", "factors_train", "factors_test"),
        "DCI",
    )

    if n_jobs < 1:
        raise ValueError(f"n_jobs must be ≥ 1, got {n_jobs}")
    if n_jobs > 1 and isinstance(random_state, np.random.RandomState):
        raise ValueError("a shared RandomState is drawn from in factor order: use n_jobs = 1")

    def fit(k: int) -> tuple[np.ndarray, float, float]:
        classes = np.unique(factors_train[:, k])
        if classes.size == 1:
            return np.zeros(codes_train.shape[1]), 1.0, np.mean(factors_test[:, k] == classes[0])
        classifier = GradientBoostingClassifier(random_state=random_state)
        classifier.fit(codes_train, factors_train[:, k])
        return (
            np.abs(classifier.feature_importances_),
            np.mean(classifier.predict(codes_train) == factors_train[:, k]),
            np.mean(classifier.predict(codes_test) == factors_test[:, k]),
        )

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        fits = list(pool.map(fit, range(factors_train.shape[1])))
    importance = np.stack([fitted[0] for fitted in fits], axis=1)
    train_accuracy = np.array([fitted[1] for fitted in fits], dtype=float)
    test_accuracy = np.array([fitted[2] for fitted in fits], dtype=float)
    return importance, train_accuracy, test_accuracy


def normalised_entropy(importance: np.ndarray, axis: int) -> np.ndarray:
    """Entropy, in base n, of the offset importances normalised along ``axis`` (n entries).

    ``p_i = (R_i + ε) / Σ_i' (R_i' + ε)`` with ``ε = 1e-11`` and
    ``H_n(p) = −Σ_i p_i log p_i / log n`` (``scipy.stats.entropy(R + ε, base=n, axis=axis)``): 0
    for all importance on one entry, 1 for equal importances. With a single entry (n = 1) it is 0
    (scipy would give 0/0).
    """
    importance = _as_importance(importance)
    size = importance.shape[axis]
    offset = importance + IMPORTANCE_OFFSET
    p = offset / offset.sum(axis=axis, keepdims=True)
    entropy = -np.sum(p * np.log(p), axis=axis)
    if size == 1:
        return np.zeros_like(entropy)
    return entropy / np.log(size)


def dci_disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """Disentanglement of each code (length m): ``D_j = 1 − H_K(P_j·)``, the entropy in base K
    (number of factors) of code ``j``'s importances over the factors, offset by 1e-11."""
    return 1.0 - normalised_entropy(importance, axis=1)


def dci_completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """Completeness of each factor (length K): ``C_k = 1 − H_m(P_·k)``, the entropy in base m
    (number of codes) of factor ``k``'s importances over the codes, offset by 1e-11."""
    return 1.0 - normalised_entropy(importance, axis=0)


def dci_disentanglement(importance: np.ndarray) -> float:
    """Disentanglement of the importance matrix ``R`` (m codes × K factors): ``Σ_j ρ_j D_j``.

    ``D_j = 1 − H_K(P_j·)`` (:func:`dci_disentanglement_per_code`) and ``ρ_j = Σ_k R_jk / Σ R``
    the share of the total importance that code ``j`` holds; an all-zero ``R`` weighs the codes
    equally (``ρ_j = 1/m``), which gives 0 (up to rounding). A code that matters for no factor
    weighs nothing.
    """
    importance = _as_importance(importance)
    per_code = dci_disentanglement_per_code(importance)
    return float(np.sum(per_code * _shares(importance, axis=1)))


def dci_completeness(importance: np.ndarray) -> float:
    """Completeness of the importance matrix ``R`` (m codes × K factors): ``Σ_k ρ_k C_k``.

    ``C_k = 1 − H_m(P_·k)`` (:func:`dci_completeness_per_factor`) and ``ρ_k = Σ_j R_jk / Σ R``
    the share of the total importance that factor ``k`` receives; an all-zero ``R`` weighs the
    factors equally (``ρ_k = 1/K``), which gives 0 (up to rounding).
    """
    importance = _as_importance(importance)
    per_factor = dci_completeness_per_factor(importance)
    return float(np.sum(per_factor * _shares(importance, axis=0)))


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    random_state: int | np.random.RandomState | None,
    n_jobs: int = 1,
) -> dict[str, float]:
    """DCI of continuous codes (N × m, one row per sample) for discrete factors (N × K).

    With ``R, a_train, a_test = dci_importance(...)`` (one gradient-boosted classifier per
    factor, seeded by ``random_state``): ``disentanglement = dci_disentanglement(R)``,
    ``completeness = dci_completeness(R)``, ``informativeness_train = mean_k a_train[k]`` and
    ``informativeness_test = mean_k a_test[k]`` (accuracies, not errors, as in
    disentanglement_lib). The same ``random_state`` (an int, or a ``RandomState`` in the same
    state) gives the same numbers; ``n_jobs`` as in :func:`dci_importance`.
    """
    importance, train_accuracy, test_accuracy = dci_importance(
        codes_train, factors_train, codes_test, factors_test, random_state, n_jobs
    )
    return {
        "disentanglement": dci_disentanglement(importance),
        "completeness": dci_completeness(importance),
        "informativeness_train": float(np.mean(train_accuracy)),
        "informativeness_test": float(np.mean(test_accuracy)),
    }


def _as_importance(importance: np.ndarray) -> np.ndarray:
    importance = np.asarray(importance, dtype=np.float64)
    if importance.ndim != 2 or 0 in importance.shape:
        raise ValueError(
            f"importance must be a non-empty codes × factors matrix, got shape {importance.shape}"
        )
    if not np.isfinite(importance).all() or (importance < 0).any():
        raise ValueError("importance must be finite and non-negative")
    return importance


def _shares(importance: np.ndarray, axis: int) -> np.ndarray:
    """Each row's (axis=1) or column's (axis=0) share of the total importance; equal shares when
    the total is 0."""
    if importance.sum() == 0:
        importance = np.ones_like(importance)
    return importance.sum(axis=axis) / importance.sum()
