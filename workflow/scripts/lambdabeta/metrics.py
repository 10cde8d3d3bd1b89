"""Disentanglement metrics of a representation against discrete ground-truth factors.

The definitions follow disentanglement_lib (Locatello et al., 2019) exactly; only the layout and
the speed differ:

- **Orientation.** Every array here has one row per sample: codes are N × L (L latents), factors
  N × K (K factor class indices). disentanglement_lib stores the transposes (L × N, K × N), so
  its examples read with rows as variables; pass ``array.T`` to use them here.
- **Discretisation.** Each latent is cut into ``num_bins`` equal-width bins over its own observed
  range, with the edges of ``np.histogram``; bin ids start at 1 (``np.digitize`` on the left
  edges), the maximum falls into the last bin, and a constant latent falls into a single bin.
- **Information.** Entropies and mutual informations are plug-in estimates in nats on the
  empirical joint distribution of discrete labels (sklearn's ``mutual_info_score``), computed
  for all (latent, factor) pairs from contingency tables built with one ``np.bincount`` per
  factor.
- **Scores.** MIG is the mean over factors of the gap between the two most informative latents,
  divided by the factor's entropy; SAP the mean over factors of the gap between the two best
  one-latent classifiers' test accuracies; I_m the maximum-weight matching of latents to factors
  in the mutual information matrix.

Edge cases have defined, finite values (disentanglement_lib gives NaN or fails on them):
a zero-entropy factor contributes 0 to MIG; with one latent the top-two gap is the top value
itself (the missing runner-up counts as 0); a factor with a single training class is predicted
as that class by every latent.
"""

from __future__ import annotations

import logging
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import product

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

logger = logging.getLogger(__name__)

__all__ = [
    "discrete_entropy",
    "discrete_mutual_information",
    "discretize",
    "im_score",
    "matched_information",
    "mig_per_factor",
    "mutual_information_gap",
    "mutual_information_matrix",
    "null_upper_point",
    "permutation_null",
    "plug_in_bias",
    "sap_accuracies",
    "sap_matrix",
    "sap_predictions",
    "sap_score",
    "top_two_gap",
]


# ---- discrete information ---------------------------------------------------------------------


def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each latent (column) of ``codes`` (N × L) into ``num_bins`` equal-width bins.

    For latent ``l`` with observed range [a, b] the edges are ``e = linspace(a, b, num_bins + 1)``
    (``np.histogram``'s edges; a constant latent uses [a − ½, a + ½]) and the bin id of a value
    ``x`` is ``#{i < num_bins : e_i ≤ x}``, i.e. ``np.digitize(x, e[:-1])``: ids run from 1 to
    ``num_bins`` and the maximum lands in the last bin. Returns N × L int64.

    Example (disentanglement_lib's test, whose rows are latents, hence the transposes)::

        >>> discretize(np.array([[.1, .2, .3, .4, .5, .6], [.6, .5, .4, .3, .2, .1]]).T, 3).T
        array([[1, 1, 2, 2, 3, 3],
               [3, 3, 2, 2, 1, 1]])
    """
    codes = _as_samples_by_columns(codes, "codes", dtype=np.float64)
    if num_bins < 1:
        raise ValueError(f"num_bins must be ≥ 1, got {num_bins}")
    if not np.isfinite(codes).all():
        bad = np.flatnonzero(~np.isfinite(codes).all(axis=0)).tolist()
        raise ValueError(f"codes contain NaN or inf in latent column(s) {bad}; cannot discretize")
    low, high = codes.min(axis=0), codes.max(axis=0)
    constant = low == high
    low, high = np.where(constant, low - 0.5, low), np.where(constant, high + 0.5, high)
    left_edges = np.linspace(low, high, num_bins + 1, axis=1)[:, :-1]  # L × num_bins
    # np.digitize per column, for all latents at once: count the left edges at or below x
    return (codes[:, :, None] >= left_edges[None, :, :]).sum(axis=2, dtype=np.int64)


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of each column of discrete ``factors`` (N × K, any labels).

    ``H(v) = −Σ_c p_c log p_c`` with ``p_c`` the fraction of samples of class ``c``; a constant
    column has entropy 0. Returns a length-K float64 vector.
    """
    dense, sizes = _dense_labels(_as_samples_by_columns(factors, "factors"))
    num_samples = dense.shape[0]
    entropy = np.empty(dense.shape[1])
    for k, size in enumerate(sizes):
        counts = np.bincount(dense[:, k], minlength=size)
        entropy[k] = -np.sum(_xlogx(counts / num_samples))
    return entropy


def mutual_information_matrix(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats) of every (code column, factor column) pair.

    Both arguments hold discrete labels (any integer or float values; only equality matters),
    N × L and N × K. With ``n_ab`` the number of samples where the code takes value ``a`` and the
    factor value ``b``, and ``n_a``, ``n_b`` its marginals,

        I(code; factor) = Σ_ab (n_ab / N) · log(N · n_ab / (n_a · n_b)),

    the same estimate as ``sklearn.metrics.mutual_info_score`` (never negative). Use
    ``discrete_mutual_information`` for continuous codes. Returns L × K float64.
    """
    codes = _as_samples_by_columns(discrete_codes, "discrete_codes")
    factors = _as_samples_by_columns(factors, "factors")
    _check_same_samples(codes, factors, "discrete_codes", "factors")
    code_labels, code_sizes = _dense_labels(codes)
    factor_labels, factor_sizes = _dense_labels(factors)
    num_samples, num_latents = code_labels.shape
    code_cells = int(code_sizes.max())
    mutual_information = np.empty((num_latents, factor_labels.shape[1]))
    for k, factor_size in enumerate(factor_sizes):
        # one contingency table per latent, all filled by a single bincount: pair (latent l,
        # code a, factor b) goes to cell (l · code_cells + a) · factor_size + b
        cells = code_labels + np.arange(num_latents) * code_cells
        joint = np.bincount(
            (cells * factor_size + factor_labels[:, k : k + 1]).ravel(),
            minlength=num_latents * code_cells * factor_size,
        ).reshape(num_latents, code_cells, factor_size)
        expected = joint.sum(axis=2, keepdims=True) * joint.sum(axis=1, keepdims=True)
        observed = joint > 0
        # N · n_ab and n_a · n_b are exact integers (< 2^53), so an independent cell gives a
        # ratio of exactly 1 and a constant latent exactly 0
        ratio = np.divide(joint * num_samples, expected, out=np.ones(joint.shape), where=observed)
        mutual_information[:, k] = np.sum(joint * np.log(ratio), axis=(1, 2)) / num_samples
    # rounding can leave −1e-17 for independent pairs; the estimate itself is never negative
    return np.maximum(mutual_information, 0.0)


def discrete_mutual_information(
    codes: np.ndarray, factors: np.ndarray, num_bins: int = 20
) -> np.ndarray:
    """Mutual information (nats, L × K) of the discretised continuous ``codes`` with ``factors``.

    ``mutual_information_matrix(discretize(codes, num_bins), factors)``: the matrix that MIG,
    I_m and the MI heatmaps share. A constant latent falls into one bin and has MI 0 with
    every factor.
    """
    return mutual_information_matrix(discretize(codes, num_bins), factors)


# ---- scores ------------------------------------------------------------------------------------


def top_two_gap(scores: np.ndarray) -> np.ndarray:
    """Per column of ``scores`` (L × K), the largest entry minus the second largest.

    With a single row (L = 1) the runner-up is taken as 0, so the gap is the top entry itself.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"scores must be a non-empty L × K matrix, got shape {scores.shape}")
    if scores.shape[0] == 1:
        return scores[0].copy()
    top_two = np.sort(scores, axis=0)[-2:]
    return top_two[1] - top_two[0]


def mig_per_factor(mutual_information: np.ndarray, factor_entropies: np.ndarray) -> np.ndarray:
    """Normalised mutual information gap of each factor: ``(I_top − I_second) / H(factor)``.

    ``mutual_information`` is L × K (latents × factors), ``factor_entropies`` length K. A
    zero-entropy (constant) factor carries no information to capture: its gap is defined as 0
    (disentanglement_lib would give 0/0 = NaN). With one latent the gap is ``I_top / H``.
    """
    gap = top_two_gap(mutual_information)
    factor_entropies = np.asarray(factor_entropies, dtype=np.float64)
    if factor_entropies.shape != gap.shape:
        raise ValueError(
            f"factor_entropies has shape {factor_entropies.shape}, expected {gap.shape} "
            "(one entropy per column of the mutual information matrix)"
        )
    informative = factor_entropies > 0
    return np.divide(gap, factor_entropies, out=np.zeros_like(gap), where=informative)


def mutual_information_gap(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    """MIG (Chen et al., 2018) of continuous ``codes`` (N × L) for discrete ``factors`` (N × K).

    ``MIG = (1/K) Σ_k (I(z_{j_k}; v_k) − I(z_{j'_k}; v_k)) / H(v_k)`` where ``j_k`` and ``j'_k``
    are the latents with the largest and second largest discretised mutual information with
    factor ``k``. A zero-entropy factor contributes 0 (it still counts in the mean of K terms);
    with a single latent the gap is its mutual information itself.
    """
    mutual_information = discrete_mutual_information(codes, factors, num_bins)
    return float(mig_per_factor(mutual_information, discrete_entropy(factors)).mean())


def matched_information(mutual_information: np.ndarray) -> float:
    """Maximum total mutual information of a one-to-one matching of latents (rows) to factors.

    ``I_m = max_π Σ_k I(z_π(k); v_k)`` over injective assignments: with L ≥ K every factor gets
    its own latent, with L < K every latent its own factor (Hungarian algorithm, max-sum).
    """
    mutual_information = np.asarray(mutual_information, dtype=np.float64)
    rows, columns = linear_sum_assignment(mutual_information, maximize=True)
    return float(mutual_information[rows, columns].sum())


def im_score(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    """I_m (nats): the matched information of the discretised mutual information matrix.

    ``matched_information(discrete_mutual_information(codes, factors, num_bins))``; at most the
    sum of the factor entropies, reached by a code holding each factor in its own latent.
    """
    return matched_information(discrete_mutual_information(codes, factors, num_bins))


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
    train_codes = _as_samples_by_columns(train_codes, "train_codes", dtype=np.float64)
    test_codes = _as_samples_by_columns(test_codes, "test_codes", dtype=np.float64)
    train_factors = _as_samples_by_columns(train_factors, "train_factors")
    test_factors = _as_samples_by_columns(test_factors, "test_factors")
    _check_same_samples(train_codes, train_factors, "train_codes", "train_factors")
    _check_same_samples(test_codes, test_factors, "test_codes", "test_factors")
    if train_codes.shape[1] != test_codes.shape[1]:
        raise ValueError(
            f"train_codes has {train_codes.shape[1]} latents but test_codes {test_codes.shape[1]}"
        )
    if train_factors.shape[1] != test_factors.shape[1]:
        raise ValueError(
            f"train_factors has {train_factors.shape[1]} factors but test_factors "
            f"{test_factors.shape[1]}"
        )
    for name, codes in (("train_codes", train_codes), ("test_codes", test_codes)):
        if not np.isfinite(codes).all():
            raise ValueError(f"{name} contain NaN or inf; cannot fit the SAP classifiers")
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


def plug_in_bias(num_bins: int, factor_sizes: np.ndarray, num_samples: int) -> np.ndarray:
    """The expected plug-in MI (nats) of a latent independent of each factor: to first order
    (Miller-Madow), ``(num_bins − 1)(|V_k| − 1) / (2N)`` for a latent spread over ``num_bins``
    bins and a factor with ``|V_k|`` classes. A collapsed latent's estimate sits at this level,
    not at 0."""
    factor_sizes = np.asarray(factor_sizes, dtype=np.float64)
    return (num_bins - 1) * (factor_sizes - 1) / (2.0 * num_samples)


# ---- permutation null -------------------------------------------------------------------------


def permutation_null(
    discrete_codes: np.ndarray,
    factors: np.ndarray,
    predictions: np.ndarray,
    test_factors: np.ndarray,
    shuffles: int,
    seed: int | np.random.SeedSequence,
) -> dict[str, np.ndarray]:
    """MIG, SAP and I_m of the same codes with the factors shuffled: ``shuffles`` values each.

    Shuffle r permutes the rows of ``factors`` (the N samples the discretised codes, N × L,
    were binned from) and of ``test_factors`` (N_test × K) with permutations drawn from
    ``numpy.random.default_rng(seed)``, which breaks every link between codes and factors and
    keeps both marginals. MIG and I_m are recomputed from the mutual information of the codes
    with the shuffled factors; SAP from the fixed classifiers' test ``predictions``
    (L × K × N_test, :func:`sap_predictions`) scored against the shuffled test factors, a
    permutation test conditional on the trained classifiers (refitting them would cost L × K
    fits per shuffle and answer the same question: do the predictions carry information about
    the factors?). A score is then compared with what chance alone gives these very codes.
    """
    factors = _as_samples_by_columns(factors, "factors")
    test_factors = _as_samples_by_columns(test_factors, "test_factors")
    if shuffles < 1:
        raise ValueError(f"shuffles must be ≥ 1, got {shuffles}")
    rng = np.random.default_rng(seed)
    entropies = discrete_entropy(factors)
    null = {"mig": np.empty(shuffles), "sap": np.empty(shuffles), "im": np.empty(shuffles)}
    for r in range(shuffles):
        shuffled = factors[rng.permutation(len(factors))]
        test_shuffled = test_factors[rng.permutation(len(test_factors))]
        information = mutual_information_matrix(discrete_codes, shuffled)
        null["mig"][r] = mig_per_factor(information, entropies).mean()
        null["im"][r] = matched_information(information)
        null["sap"][r] = top_two_gap(sap_accuracies(predictions, test_shuffled)).mean()
    return null


def null_upper_point(null: np.ndarray) -> float:
    """The upper 95 % point of a permutation null of S values: its ⌈0.95 (S + 1)⌉-th smallest.

    A score above it has a permutation p-value (1 + #{null ≥ score}) / (S + 1) of at most 0.05;
    with S = 19 it is the largest of the 19. Needs S ≥ 19.
    """
    null = np.sort(np.asarray(null, dtype=float))
    rank = math.ceil(0.95 * (len(null) + 1))
    if rank > len(null):
        raise ValueError(f"an upper 95 % point needs at least 19 shuffles, got {len(null)}")
    return float(null[rank - 1])


# ---- helpers -----------------------------------------------------------------------------------


def _as_samples_by_columns(array: np.ndarray, name: str, dtype: type | None = None) -> np.ndarray:
    array = np.asarray(array, dtype=dtype)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty N × columns array (one row per sample), "
            f"got shape {array.shape}"
        )
    return array


def _check_same_samples(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{name_a} has {a.shape[0]} samples (rows) but {name_b} has {b.shape[0]}")


def _dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel every column to 0..n_k − 1 (n_k distinct values): N × K int64 and the n_k."""
    dense = np.empty(labels.shape, dtype=np.int64)
    sizes = np.empty(labels.shape[1], dtype=np.int64)
    for k in range(labels.shape[1]):
        values, dense[:, k] = np.unique(labels[:, k], return_inverse=True)
        sizes[k] = values.size
    return dense, sizes


def _xlogx(p: np.ndarray) -> np.ndarray:
    """``p · log p`` with the limit 0 at p = 0."""
    return p * np.log(p, out=np.zeros_like(p), where=p > 0)
