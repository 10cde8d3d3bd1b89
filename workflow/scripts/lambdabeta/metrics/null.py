"""What chance alone gives a representation: the plug-in bias of the mutual information and the
permutation null of MIG, SAP and I_m (factors shuffled against fixed codes), with its upper 95 %
point."""

from __future__ import annotations

import math

import numpy as np

from ._arrays import _as_samples_by_columns
from .information import discrete_entropy, mutual_information_matrix
from .mig import matched_information, mig_per_factor, top_two_gap
from .sap import sap_accuracies


def plug_in_bias(num_bins: int, factor_sizes: np.ndarray, num_samples: int) -> np.ndarray:
    """The expected plug-in MI (nats) of a latent independent of each factor: to first order
    (Miller-Madow), ``(num_bins − 1)(|V_k| − 1) / (2N)`` for a latent spread over ``num_bins``
    bins and a factor with ``|V_k|`` classes. A collapsed latent's estimate sits at this level,
    not at 0."""
    factor_sizes = np.asarray(factor_sizes, dtype=np.float64)
    return (num_bins - 1) * (factor_sizes - 1) / (2.0 * num_samples)


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
