"""Discrete information of codes and factors: binning, entropies, mutual information matrices.

Each latent is cut into ``num_bins`` equal-width bins over its own observed range, with the edges
of ``np.histogram``; bin ids start at 1 (``np.digitize`` on the left edges), the maximum falls into
the last bin, and a constant latent falls into a single bin. Entropies and mutual informations are
plug-in estimates in nats on the empirical joint distribution of discrete labels (sklearn's
``mutual_info_score``), computed for all (latent, factor) pairs from contingency tables built with
one ``np.bincount`` per factor. Arrays have one row per sample (codes N × L, factors N × K).
"""

from __future__ import annotations

import numpy as np

from ._arrays import _as_samples_by_columns, _check_same_samples


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
