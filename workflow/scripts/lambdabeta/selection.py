"""Selection of (β, λ) by augmented Tchebycheff scalarization (paper §6).

Over the finetuned grid G of one dataset two objectives are minimised: the reconstruction error
f1 = mean reconstruction NLL over seeds (``recon_nll_mean``) and the entanglement
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

RHO = 1e-3
# Scores closer than this count as a tie; S lies in [0, 1 + ρ], so it is far below any real gap.
TIE_TOLERANCE = 1e-12
FINETUNE = "finetune"
OBJECTIVE_COLUMNS = {"recon_nll": "recon_nll_mean", "mig": "mig_mean"}


def minmax_normalize(values: np.ndarray | Sequence[float]) -> np.ndarray:
    """(f − min f) / (max f − min f) over all entries, in [0, 1].

    A constant objective does not discriminate between grid points: it normalises to all zeros
    (and so contributes nothing to S), never to NaN. Non-finite values raise ``ValueError``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("cannot normalise an empty set of objective values")
    if not np.isfinite(values).all():
        raise ValueError(f"objective values must be finite, got {values}")
    span = values.max() - values.min()
    if span == 0:
        return np.zeros_like(values)
    return (values - values.min()) / span


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


def objectives(summary: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The finetuned grid of ``dataset`` with its objectives, raw and min-max normalised.

    Columns ``beta, lambda, recon_nll, mig, f1_norm, f2_norm``, where f1 = ``recon_nll`` and
    f2 = 1 − ``mig`` (means over seeds), sorted by β and λ.
    """
    missing = [
        c
        for c in ("dataset", "phase", "beta", "lambda", *OBJECTIVE_COLUMNS.values())
        if c not in summary
    ]
    if missing:
        raise ValueError(f"summary table lacks the columns {missing}")
    grid = summary[(summary["dataset"] == dataset) & (summary["phase"] == FINETUNE)]
    if grid.empty:
        raise ValueError(f"the summary has no finetuned models of the dataset {dataset!r}")
    grid = grid.rename(columns={v: k for k, v in OBJECTIVE_COLUMNS.items()})
    grid = sort_runs(grid[["beta", "lambda", *OBJECTIVE_COLUMNS]], ["beta", "lambda"])
    not_finite = grid[~np.isfinite(grid[list(OBJECTIVE_COLUMNS)]).all(axis=1)]
    if not not_finite.empty:
        points = list(zip(not_finite["beta"], not_finite["lambda"], strict=True))
        raise ValueError(
            f"{dataset}: the objectives are not finite at (β, λ) = {points}; "
            "fix or exclude those runs"
        )
    return grid.assign(
        f1_norm=minmax_normalize(grid["recon_nll"]),
        f2_norm=minmax_normalize(1.0 - grid["mig"]),
    )


def score_grid(
    summary: pd.DataFrame,
    weights: Sequence[float],
    rho: float = RHO,
    tie_tolerance: float = TIE_TOLERANCE,
) -> pd.DataFrame:
    """S at every finetuned grid point of every dataset, for every w1 in ``weights``.

    A long table with columns ``dataset, w1, beta, lambda, recon_nll, mig, f1_norm, f2_norm,
    score, minimizer``; ``minimizer`` marks the one selected point per (dataset, w1) under the
    tie rule of the module docstring.
    """
    if len(weights) == 0:
        raise ValueError("no weights w1 were given")
    datasets = summary.loc[summary["phase"] == FINETUNE, "dataset"].unique()
    if len(datasets) == 0:
        raise ValueError("the summary has no finetuned models")
    tables = []
    for dataset in datasets:
        grid = objectives(summary, dataset)
        for w1 in weights:
            score = augmented_tchebycheff(grid["f1_norm"], grid["f2_norm"], float(w1), rho)
            tables.append(grid.assign(dataset=dataset, w1=float(w1), score=score))
    scores = pd.concat(tables, ignore_index=True)
    scores["minimizer"] = _minimizers(scores, tie_tolerance)
    columns = ["dataset", "w1", "beta", "lambda", "recon_nll", "mig", "f1_norm", "f2_norm"]
    return scores[[*columns, "score", "minimizer"]]


def _minimizers(scores: pd.DataFrame, tie_tolerance: float) -> np.ndarray:
    """Boolean mask of the selected row per (dataset, w1): least S, ties to least β, then λ."""
    keys = ["dataset", "w1"]
    best = scores.groupby(keys, sort=False)["score"].transform("min")
    tied = scores[scores["score"] <= best + tie_tolerance]
    chosen = tied.sort_values([*keys, "beta", "lambda"]).groupby(keys, sort=False).head(1)
    return scores.index.isin(chosen.index)


def tchebycheff_scores(
    summary: pd.DataFrame,
    dataset: str,
    w1: float,
    rho: float = RHO,
) -> pd.DataFrame:
    """S over the finetuned grid of ``dataset`` as a β × λ table (index β, columns λ).

    A (β, λ) missing from the grid is NaN; normalisation uses the points present.
    """
    grid = objectives(summary, dataset)
    grid["score"] = augmented_tchebycheff(grid["f1_norm"], grid["f2_norm"], w1, rho)
    return grid.pivot(index="beta", columns="lambda", values="score")


def pareto_front(summary: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The non-dominated finetuned (β, λ) of ``dataset`` for minimising (f1, f2).

    A point p is dominated when some q has f1(q) ≤ f1(p) and f2(q) ≤ f2(p) with at least one
    inequality strict; identical points do not dominate each other. Columns as
    :func:`objectives`, sorted by f1 (along the front from the best reconstruction).
    """
    grid = objectives(summary, dataset)
    f = np.column_stack([grid["recon_nll"], 1.0 - grid["mig"]])
    # dominates[q, p]: q is no worse than p in both objectives and better in one
    no_worse = (f[:, None, :] <= f[None, :, :]).all(axis=2)
    better = (f[:, None, :] < f[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    front = grid[~dominated].assign(dataset=dataset)
    front = front.sort_values(["recon_nll", "beta", "lambda"], ignore_index=True)
    return front[["dataset", *grid.columns]]


def select(
    summary: pd.DataFrame,
    weights: Sequence[float],
    rho: float = RHO,
    tie_tolerance: float = TIE_TOLERANCE,
) -> pd.DataFrame:
    """The selected (β, λ) per dataset and w1 in ``weights`` (the ``selection.csv`` table).

    Columns ``dataset, w1, beta, lambda, score, recon_nll, mig, f1_norm, f2_norm,
    pareto_optimal``: the minimiser of S, its score, its objectives (f1 = ``recon_nll``,
    f2 = 1 − ``mig``) and whether it lies on the Pareto front of its dataset.
    """
    scores = score_grid(summary, weights, rho, tie_tolerance)
    chosen = scores[scores["minimizer"]]
    fronts = pd.concat([pareto_front(summary, dataset) for dataset in chosen["dataset"].unique()])
    on_front = pd.MultiIndex.from_frame(fronts[["dataset", "beta", "lambda"]])
    pareto_optimal = pd.MultiIndex.from_frame(chosen[["dataset", "beta", "lambda"]]).isin(on_front)
    columns = ["dataset", "w1", "beta", "lambda", "score", "recon_nll", "mig", "f1_norm", "f2_norm"]
    return chosen[columns].assign(pareto_optimal=pareto_optimal).reset_index(drop=True)
