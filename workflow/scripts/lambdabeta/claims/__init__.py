"""The paper's claims, each judged from this run's own tables with seed-level uncertainty.

Every claim is a small function that takes tables and returns claim rows (:data:`COLUMNS`): one
row per (claim, scope), the scope being a linear instance and method (``n30_m6_s3 adamw``) or a
dataset. The verdict rules live in :mod:`lambdabeta.statistics`:

- Linear claims are statements about every restart (Theorem 3.2 holds for any start). The effect
  is the fraction of restarts that satisfy the claim, with its exact 95 % Clopper-Pearson
  interval; one restart that does not satisfy it makes the claim ``not reproduced``.
- Deep claims compare settings paired by seed (the same seed at another β, or the same seed and
  β at another λ): the effect is a mean over seeds with a 95 % percentile bootstrap interval over
  seeds, and the verdict is read from the interval against the claim's threshold.
- A claim that holds "for every" part (every high β, every λ > 0) is ``reproduced`` only when
  every part is, and ``not reproduced`` as soon as one part is (an intersection-union test); the
  row reports the part that decided it and ``detail`` lists them all.
- Fewer seeds (restarts) than ``min_seeds`` (``min_restarts``) make a claim ``inconclusive``
  whatever its interval; a grid without the settings a claim compares makes it ``not run``.

Modules: ``registry`` (the claims, their settings, the rows), ``linear``, ``deep``, ``selection``
and ``qualitative`` (the claim tests), ``report`` (Markdown and reStructuredText renderings);
:func:`judge_claims` runs them all.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ..selection import MIG_COLUMN
from .deep import (
    deep_collapse_strongest_on_mpi3d,
    deep_disentanglement_peaks,
    deep_lambda_improves_reconstruction,
    deep_lambda_preserves_disentanglement,
    deep_nll_rises_with_beta,
    peak_contrast,
    relative_deterioration,
)
from .linear import (
    LINEAR_INFORMATION,
    TRIVIAL_DISTANCES,
    late_contraction_factor,
    linear_collapse,
    linear_contraction_rate,
    linear_lambda_prevents_collapse,
    linear_no_collapse_at_beta_1,
    linear_trivial_solution,
)
from .qualitative import mi_concentration, qualitative_mi_concentrated
from .registry import CLAIMS, COLUMNS, ClaimSettings, high_betas, not_run, require_columns
from .report import claims_markdown, claims_rst, verdict_counts, verdict_groups, verdict_sentence
from .selection import selection_lambda_recovers_nll, selection_optimum_moves_to_high_beta

__all__ = [
    "CLAIMS",
    "COLUMNS",
    "DEEP_CLAIMS",
    "LINEAR_CLAIMS",
    "ClaimSettings",
    "claims_markdown",
    "claims_rst",
    "deep_collapse_strongest_on_mpi3d",
    "deep_disentanglement_peaks",
    "deep_lambda_improves_reconstruction",
    "deep_lambda_preserves_disentanglement",
    "deep_nll_rises_with_beta",
    "high_betas",
    "judge_claims",
    "late_contraction_factor",
    "linear_collapse",
    "linear_contraction_rate",
    "linear_lambda_prevents_collapse",
    "linear_no_collapse_at_beta_1",
    "linear_trivial_solution",
    "mi_concentration",
    "peak_contrast",
    "qualitative_mi_concentrated",
    "relative_deterioration",
    "selection_lambda_recovers_nll",
    "selection_optimum_moves_to_high_beta",
    "verdict_counts",
    "verdict_groups",
    "verdict_sentence",
]


def _not_run_all(claim_ids: Iterable[str], scope: str, reason: str) -> list[dict]:
    return [not_run(claim_id, scope, "", reason) for claim_id in claim_ids]


LINEAR_CLAIMS = [c for c in CLAIMS if c.startswith("linear.")]
DEEP_CLAIMS = [c for c in CLAIMS if not c.startswith("linear.")]


def judge_claims(
    settings: ClaimSettings,
    linear: pd.DataFrame | None = None,
    traces: pd.DataFrame | None = None,
    metrics: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
    concentration: pd.DataFrame | None = None,
    mpi3d_dataset: str | None = None,
    rho: float = 1e-3,
    figure_seed: int | None = None,
) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` judged from the tables given, in that order.

    ``linear``: linear_metrics (per restart, with ``mi_total``, ``a_norm``, ``b_norm``,
    ``sigma_w_dist``, ``sigma_z_dist``); ``traces``: the contraction traces with ``n, m, s``;
    ``metrics``: deep_metrics; ``selection``: selection.csv; ``concentration``: see
    :func:`qualitative_mi_concentrated`. A missing study makes its claims ``not run``.
    """
    rows: list[dict] = []
    if linear is None:
        rows += _not_run_all(LINEAR_CLAIMS, "linear study", "the config has no linear study")
    else:
        require_columns(
            linear,
            [
                "n",
                "m",
                "s",
                "method",
                "beta",
                "lambda",
                "restart",
                *LINEAR_INFORMATION,
                *TRIVIAL_DISTANCES,
            ],
            "linear metrics",
        )
        rows += linear_collapse(linear, settings)
        rows += linear_no_collapse_at_beta_1(linear, settings)
        rows += linear_trivial_solution(linear, settings)
        if traces is None or traces.empty:
            rows += _not_run_all(
                ["linear.contraction_rate"], "linear study", "no contraction traces"
            )
        else:
            require_columns(
                traces,
                ["n", "m", "s", "beta", "lambda", "restart", "iteration", "b_norm"],
                "contraction traces",
            )
            rows += linear_contraction_rate(traces, settings)
        rows += linear_lambda_prevents_collapse(linear, settings)
    if metrics is None or metrics.empty:
        rows += _not_run_all(DEEP_CLAIMS, "deep study", "the config trains no deep models")
    else:
        require_columns(
            metrics,
            [
                "dataset",
                "phase",
                "beta",
                "lambda",
                "seed",
                settings.nll,
                MIG_COLUMN,
                "sap",
                "im",
                "active_latents",
            ],
            "deep metrics",
        )
        rows += deep_nll_rises_with_beta(metrics, settings)
        rows += deep_disentanglement_peaks(metrics, settings)
        rows += deep_collapse_strongest_on_mpi3d(metrics, settings, mpi3d_dataset)
        rows += deep_lambda_improves_reconstruction(metrics, settings)
        rows += deep_lambda_preserves_disentanglement(metrics, settings)
        if selection is None:
            rows += _not_run_all(
                ["selection.optimum_moves_to_high_beta"], "deep study", "no selection table"
            )
        else:
            rows += selection_optimum_moves_to_high_beta(metrics, selection, settings, rho)
        rows += selection_lambda_recovers_nll(metrics, settings)
        rows += qualitative_mi_concentrated(concentration, settings, figure_seed)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["n"] = table["n"].astype(int)
    return table
