"""Selection of (β, λ) by augmented Tchebycheff scalarization (paper §6).

Over the finetuned grid G of one dataset two objectives are minimised: the reconstruction error
f1 = the mean over seeds of the chosen reconstruction metric (``deep.reconstruction_metric``:
``train_bce``, the paper's NLL, the mean training BCE over the last steps; or ``eval_nll``, the
Bernoulli NLL of the decoded encoder means on the evaluation images) and the entanglement
f2 = 1 − mean MIG over seeds (``mig_mean``). Each is min-max normalised over G,

    f̄_i(β, λ) = (f_i(β, λ) − min_G f_i) / (max_G f_i − min_G f_i),

and a preference w1 ∈ [0, 1] (w2 = 1 − w1) scores every grid point by

    S(β, λ; w) = max(w1 f̄1, w2 f̄2) + ρ (w1 f̄1 + w2 f̄2).

The selected point minimises S. Ties, to ``tie_tolerance``, go to the smallest β, then the
smallest λ: the least regularised of the equally good models. The Pareto front is the set of
grid points that no other point beats in both objectives (:func:`pareto_front`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .aggregate import sort_runs
from .grid import FINETUNE

RHO = 1e-3
# Scores closer than this count as a tie; S lies in [0, 1 + ρ], so it is far below any real gap.
TIE_TOLERANCE = 1e-12
MIG_COLUMN = "mig"

RECONSTRUCTION_COLUMNS = {"train_bce": "train_bce", "eval_nll": "recon_nll"}
"""The deep table column of each ``deep.reconstruction_metric``."""
PAPER_RECONSTRUCTION_METRIC = "train_bce"
"""The paper's deep "NLL": the mean training BCE over the last steps (the authors' code)."""


def reconstruction_column(metric: str) -> str:
    """The column (``train_bce`` or ``recon_nll``) of a ``deep.reconstruction_metric`` value."""
    try:
        return RECONSTRUCTION_COLUMNS[metric]
    except KeyError:
        raise ValueError(
            f"unknown reconstruction metric {metric!r}: expected one of "
            f"{sorted(RECONSTRUCTION_COLUMNS)}"
        ) from None


def minmax_normalize(values: np.ndarray | Sequence[float], axis: int | None = None) -> np.ndarray:
    """(f − min f) / (max f − min f), in [0, 1], over all entries or along ``axis``.

    A constant objective does not discriminate between grid points: it normalises to all zeros
    (and so contributes nothing to S), never to NaN. Non-finite values raise ``ValueError``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("cannot normalise an empty set of objective values")
    if not np.isfinite(values).all():
        raise ValueError(f"objective values must be finite, got {values}")
    low = values.min(axis=axis, keepdims=True)
    span = values.max(axis=axis, keepdims=True) - low
    return np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)


def first_minimum(scores: np.ndarray, tie_tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Index along the last axis of the least score, ties (to ``tie_tolerance``) to the first.

    With the grid points in (β, λ) order on the last axis this is the selection rule: least S,
    then the smallest β, then the smallest λ. Works on one grid (shape (G,)) or many at once
    (shape (…, G), e.g. one grid per simulated table).
    """
    scores = np.asarray(scores, dtype=float)
    best = scores.min(axis=-1, keepdims=True)
    return np.argmax(scores <= best + tie_tolerance, axis=-1)


def augmented_tchebycheff(
    f1_norm: np.ndarray | float,
    f2_norm: np.ndarray | float,
    w1: float,
    rho: float = RHO,
) -> np.ndarray:
    """S = max(w1 f̄1, w2 f̄2) + ρ (w1 f̄1 + w2 f̄2) with w2 = 1 − w1, elementwise.

    Lower is better. With ρ > 0 every minimiser is Pareto-optimal for 0 < w1 < 1; at w1 = 0 or 1
    one objective is ignored and a minimiser is only weakly Pareto-optimal.
    """
    if not 0.0 <= w1 <= 1.0:
        raise ValueError(f"the weight w1 must lie in [0, 1], got {w1}")
    if rho < 0:
        raise ValueError(f"the augmentation ρ must be non-negative, got {rho}")
    weighted_1 = w1 * np.asarray(f1_norm, dtype=float)
    weighted_2 = (1.0 - w1) * np.asarray(f2_norm, dtype=float)
    return np.maximum(weighted_1, weighted_2) + rho * (weighted_1 + weighted_2)


def objectives(
    summary: pd.DataFrame, dataset: str, reconstruction: str = PAPER_RECONSTRUCTION_METRIC
) -> pd.DataFrame:
    """The finetuned grid of ``dataset`` with its objectives, raw and min-max normalised.

    Columns ``beta, lambda, <r>, mig, f1_norm, f2_norm``, where f1 = <r>, the column of the
    ``reconstruction`` metric (``train_bce`` or ``recon_nll``), and f2 = 1 − ``mig`` (means over
    seeds), sorted by β and λ.
    """
    columns = [reconstruction_column(reconstruction), MIG_COLUMN]
    means = {f"{column}_mean": column for column in columns}
    missing = [c for c in ("dataset", "phase", "beta", "lambda", *means) if c not in summary]
    if missing:
        raise ValueError(f"summary table lacks the columns {missing}")
    grid = summary[(summary["dataset"] == dataset) & (summary["phase"] == FINETUNE)]
    if grid.empty:
        raise ValueError(f"the summary has no finetuned models of the dataset {dataset!r}")
    grid = grid.rename(columns=means)
    grid = sort_runs(grid[["beta", "lambda", *columns]], ["beta", "lambda"])
    not_finite = grid[~np.isfinite(grid[columns]).all(axis=1)]
    if not not_finite.empty:
        points = list(zip(not_finite["beta"], not_finite["lambda"], strict=True))
        raise ValueError(
            f"{dataset}: the objectives are not finite at (β, λ) = {points}; "
            "fix or exclude those runs"
        )
    return grid.assign(
        f1_norm=minmax_normalize(grid[columns[0]]),
        f2_norm=minmax_normalize(1.0 - grid[MIG_COLUMN]),
    )


def score_grid(
    summary: pd.DataFrame,
    weights: Sequence[float],
    rho: float = RHO,
    tie_tolerance: float = TIE_TOLERANCE,
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC,
) -> pd.DataFrame:
    """S at every finetuned grid point of every dataset, for every w1 in ``weights``.

    A long table with columns ``dataset, w1, beta, lambda, <r>, mig, f1_norm, f2_norm, score,
    minimizer`` (<r> as in :func:`objectives`); ``minimizer`` marks the one selected point per
    (dataset, w1) under the tie rule of the module docstring (:func:`first_minimum`).
    """
    if len(weights) == 0:
        raise ValueError("no weights w1 were given")
    datasets = summary.loc[summary["phase"] == FINETUNE, "dataset"].unique()
    if len(datasets) == 0:
        raise ValueError("the summary has no finetuned models")
    tables = []
    for dataset in datasets:
        grid = objectives(summary, dataset, reconstruction)
        for w1 in weights:
            score = augmented_tchebycheff(grid["f1_norm"], grid["f2_norm"], float(w1), rho)
            minimizer = np.zeros(len(grid), dtype=bool)
            minimizer[first_minimum(score, tie_tolerance)] = True  # grid is in (β, λ) order
            tables.append(
                grid.assign(dataset=dataset, w1=float(w1), score=score, minimizer=minimizer)
            )
    scores = pd.concat(tables, ignore_index=True)
    columns = ["dataset", "w1", "beta", "lambda", reconstruction_column(reconstruction), MIG_COLUMN]
    return scores[[*columns, "f1_norm", "f2_norm", "score", "minimizer"]]


def tchebycheff_scores(
    summary: pd.DataFrame,
    dataset: str,
    w1: float,
    rho: float = RHO,
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC,
) -> pd.DataFrame:
    """S over the finetuned grid of ``dataset`` as a β × λ table (index β, columns λ).

    A (β, λ) missing from the grid is NaN; normalisation uses the points present.
    """
    grid = objectives(summary, dataset, reconstruction)
    grid["score"] = augmented_tchebycheff(grid["f1_norm"], grid["f2_norm"], w1, rho)
    return grid.pivot(index="beta", columns="lambda", values="score")


def pareto_front(
    summary: pd.DataFrame, dataset: str, reconstruction: str = PAPER_RECONSTRUCTION_METRIC
) -> pd.DataFrame:
    """The non-dominated finetuned (β, λ) of ``dataset`` for minimising (f1, f2).

    A point p is dominated when some q has f1(q) ≤ f1(p) and f2(q) ≤ f2(p) with at least one
    inequality strict; identical points do not dominate each other. Columns as
    :func:`objectives`, sorted by f1 (along the front from the best reconstruction).
    """
    grid = objectives(summary, dataset, reconstruction)
    f1 = reconstruction_column(reconstruction)
    f = np.column_stack([grid[f1], 1.0 - grid[MIG_COLUMN]])
    # dominates[q, p]: q is no worse than p in both objectives and better in one
    no_worse = (f[:, None, :] <= f[None, :, :]).all(axis=2)
    better = (f[:, None, :] < f[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    front = grid[~dominated].assign(dataset=dataset)
    front = front.sort_values([f1, "beta", "lambda"], ignore_index=True)
    return front[["dataset", *grid.columns]]


def select(
    summary: pd.DataFrame,
    weights: Sequence[float],
    rho: float = RHO,
    tie_tolerance: float = TIE_TOLERANCE,
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC,
) -> pd.DataFrame:
    """The selected (β, λ) per dataset and w1 in ``weights`` (the ``selection.csv`` table).

    Columns ``dataset, w1, beta, lambda, score, <r>, mig, f1_norm, f2_norm, pareto_optimal``:
    the minimiser of S, its score, its objectives (f1 = <r>, the reconstruction column as in
    :func:`objectives`; f2 = 1 − ``mig``) and whether it lies on the Pareto front of its dataset.
    """
    scores = score_grid(summary, weights, rho, tie_tolerance, reconstruction)
    chosen = scores[scores["minimizer"]]
    fronts = pd.concat(
        [pareto_front(summary, dataset, reconstruction) for dataset in chosen["dataset"].unique()]
    )
    on_front = pd.MultiIndex.from_frame(fronts[["dataset", "beta", "lambda"]])
    pareto_optimal = pd.MultiIndex.from_frame(chosen[["dataset", "beta", "lambda"]]).isin(on_front)
    f1 = reconstruction_column(reconstruction)
    columns = ["dataset", "w1", "beta", "lambda", "score", f1, MIG_COLUMN, "f1_norm", "f2_norm"]
    return chosen[columns].assign(pareto_optimal=pareto_optimal).reset_index(drop=True)
