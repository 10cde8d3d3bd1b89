"""Scores of a latent × factor information matrix: the top-two gap, MIG and I_m.

MIG (Chen et al., 2018) is the mean over factors of the gap between the two most informative
latents, divided by the factor's entropy; I_m the maximum-weight one-to-one matching of latents to
factors in the mutual information matrix. A zero-entropy factor contributes 0 to MIG; with one
latent the top-two gap is the top value itself (the missing runner-up counts as 0).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .information import discrete_entropy, discrete_mutual_information


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
