"""Claims of the adaptive λ (``deep.adaptive``, ``lambdabeta.control``): it holds its target,
it is as good a choice as the best static λ of the grid, and on the linear model it finds the
closed form's λ*(β)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..grid import ADAPTIVE, FINETUNE
from ..selection import augmented_tchebycheff
from ..statistics import BELOW, NOT_REPRODUCED, REPRODUCED, Interval
from .registry import (
    DEEP_VIEWS,
    DERIVED,
    claim,
    interval_text,
    judged_row,
    not_run,
    row,
)
from .restoration import high_beta_text, lambda_grid
from .settings import ClaimSettings

PREFERENCE = 0.5
"""The weight w₁ of the reconstruction at which the adaptive λ is scored against the grid."""


def _adaptive_runs(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == ADAPTIVE)]


@claim(
    "adaptive.holds_target",
    "§7 future work: adaptive λ (this pipeline)",
    "A finetune whose λ a controller sets holds its target KL rate.",
    tables=("metrics",),
    origin=DERIVED,
)
def adaptive_holds_target(metrics: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    margin = settings.adaptive_margin
    test = (
        "adaptive finetunes: per seed, the largest relative deviation of the averaged KL from "
        f"the set point over the last tenth of the steps; its mean over seeds below {margin:g} "
        f"at every β ({settings.one_sample_text}; intersection-union over β)"
    )
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        runs = _adaptive_runs(metrics, dataset)
        if runs.empty or "control_error" not in runs:
            rows.append(not_run(dataset, test, "no adaptive finetunes (deep.adaptive is off)"))
            continue
        per_beta = [
            settings.test(block["control_error"].to_numpy(), margin, BELOW, paired=False)
            for _, block in runs.groupby("beta")
        ]
        detail = "; ".join(
            f"β={beta:g}: deviation {interval_text(evidence.interval)}, largest "
            f"{block['control_error'].max():.3g} of the target "
            f"{block['control_target'].mean():.4g} nats, final λ "
            f"{block['final_lambda'].min():.3g}–{block['final_lambda'].max():.3g}"
            for (beta, block), evidence in zip(runs.groupby("beta"), per_beta, strict=True)
        )
        rows.append(judged_row(dataset, test, settings.all_of(per_beta), detail, settings))
    return rows


def _scores(values: pd.DataFrame, nll: str, low: np.ndarray, span: np.ndarray) -> pd.Series:
    """Augmented Tchebycheff scores at w₁ = ``PREFERENCE`` of runs (rows), normalised with the
    static grid's (low, span) of (NLL, 1 − MIG)."""
    f1 = (values[nll].to_numpy() - low[0]) / span[0]
    f2 = (1.0 - values["mig"].to_numpy() - low[1]) / span[1]
    return pd.Series(augmented_tchebycheff(f1, f2, PREFERENCE), index=values.index)


@claim(
    "adaptive.matches_best_static",
    "§7 future work: adaptive λ (this pipeline)",
    "At high β one adaptive finetune scores, at w₁ = 0.5, no worse than the best static λ of "
    "the grid chosen after the fact.",
    tables=("metrics",),
    origin=DERIVED,
    views=DEEP_VIEWS,
)
def adaptive_matches_best_static(metrics: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    nll, margin = settings.nll, settings.adaptive_score_margin
    test = (
        f"at every {high_beta_text(settings)}: per seed, the augmented Tchebycheff score "
        f"(w₁ = {PREFERENCE:g}, ρ = {settings.rho:g}; f1 = {nll}, f2 = 1 − MIG, each normalised "
        "over the static grid's means) of the adaptive finetune minus that of the best static "
        f"λ > 0 of its seed; its mean over seeds below {margin:g} at every β "
        f"({settings.mean_test_text}; intersection-union over β)"
    )
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        adaptive = _adaptive_runs(metrics, dataset)
        betas, lambdas, reason = lambda_grid(metrics, dataset, settings)
        if adaptive.empty:
            reason = "no adaptive finetunes (deep.adaptive is off)"
        if reason:
            rows.append(not_run(dataset, test, reason))
            continue
        static = metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == FINETUNE)]
        grid = static.groupby(["beta", "lambda"])[[nll, "mig"]].mean()
        objectives = np.stack([grid[nll].to_numpy(), 1.0 - grid["mig"].to_numpy()])
        low = objectives.min(axis=1)
        span = np.where(np.ptp(objectives, axis=1) > 0, np.ptp(objectives, axis=1), 1.0)
        parts, texts = [], []
        for beta in betas:
            own = adaptive[adaptive["beta"] == beta].set_index("seed")
            candidates = static[(static["beta"] == beta) & (static["lambda"].isin(lambdas))]
            if own.empty:
                continue
            best = _scores(candidates, nll, low, span).groupby(candidates["seed"]).min()
            differences = (_scores(own, nll, low, span) - best).dropna().sort_index()
            evidence = settings.test(differences.to_numpy(), margin, BELOW)
            parts.append(evidence)
            texts.append(
                f"β={beta:g}: score difference {interval_text(evidence.interval)}, final λ "
                f"{own['final_lambda'].median():.3g} (median over seeds)"
            )
        if not parts:
            rows.append(not_run(dataset, test, "no adaptive finetune at a high β"))
            continue
        rows.append(judged_row(dataset, test, settings.all_of(parts), "; ".join(texts), settings))
    return rows


@claim(
    "adaptive.linear_exact",
    "§7 future work: adaptive λ; closed form of Lemma 4.2 (this pipeline)",
    "On the linear model the controller finds the λ of the closed form, λ*(β) = (β − 1)·c*, "
    "that holds the target I(X; Y).",
    tables=("linear_adaptive",),
    origin=DERIVED,
)
def adaptive_linear_exact(table: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    tol = settings.adaptive_linear_tolerance
    test = (
        "fixed point with λ set by the controller after every iteration: relative difference "
        f"of its final λ from λ*(β) of the closed form; reproduced if below {tol:g} at every β; "
        "the effect is the largest"
    )
    rows = []
    for (n, m, s), block in table.groupby(["n", "m", "s"]):
        worst = float(block["relative_error"].abs().max())
        verdict = REPRODUCED if worst < tol else NOT_REPRODUCED
        detail = "; ".join(
            f"β={r.beta:g}: λ {r['lambda']:.6g} vs λ* {r.exact_lambda:.6g}"
            for _, r in block.sort_values("beta").iterrows()
        )
        interval = Interval(worst, worst, worst, len(block))
        rows.append(row(f"n{n}_m{m}_s{s} fixed_point", test, verdict, interval, detail))
    return rows
