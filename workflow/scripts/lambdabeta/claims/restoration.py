"""Claims of the λ restoration (Fig 5): the finetunes at high β against λ = 0, paired by seed."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..aggregate import BASELINE_LAMBDA
from ..effects import lambda_change
from ..grid import FINETUNE
from ..selection import MIG_COLUMN
from ..statistics import Interval, verdict_above, verdict_all, verdict_below, weakest
from .registry import (
    DEEP_VIEWS,
    ClaimSettings,
    claim,
    high_betas,
    interval_text,
    not_run,
    row,
    setting_text,
)

# Latents are counted in whole units: a mean loss of less than half a latent over seeds is no loss.
ACTIVE_LATENTS_MARGIN = 0.5


def lambda_grid(
    metrics: pd.DataFrame, dataset: str, settings: ClaimSettings
) -> tuple[list[float], list[float], str]:
    """High β and λ > 0 of a dataset's finetuned grid, or a reason why the claim cannot run."""
    runs = metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == FINETUNE)]
    if not (runs["lambda"] == BASELINE_LAMBDA).any():
        return [], [], "no finetuned λ = 0 models to compare with"
    lambdas = sorted(runs.loc[runs["lambda"] > BASELINE_LAMBDA, "lambda"].unique())
    if not lambdas:
        return [], [], "no λ > 0 in the grid"
    betas = high_betas(runs["beta"].unique(), settings.high_beta_min)
    if not betas:
        return [], [], f"no β ≥ claims.high_beta_min = {settings.high_beta_min:g} in the grid"
    return betas, lambdas, ""


def high_beta_text(settings: ClaimSettings) -> str:
    if settings.high_beta_min is None:
        return "high β (the upper half of the β grid)"
    return f"high β (β ≥ {settings.high_beta_min:g})"


def paired_change(
    metrics: pd.DataFrame,
    dataset: str,
    beta: float,
    lam: float,
    column: str,
    settings: ClaimSettings,
) -> Interval:
    """Mean paired-by-seed change of ``column`` from λ = 0 to ``lam`` at ``beta``, with its
    bootstrap interval (:func:`lambdabeta.effects.lambda_change`)."""
    return lambda_change(
        metrics, dataset, beta, lam, column, settings.bootstrap_resamples, settings.bootstrap_seed
    )


def _over_lambda_grid(
    metrics: pd.DataFrame,
    settings: ClaimSettings,
    test: str,
    judge: Callable[[str, float, float], tuple[list[Interval], list[str], str]],
    choose: Callable[[list[Interval], list[str]], int] = lambda parts, verdicts: weakest(verdicts),
    detail_prefix: str = "",
) -> list[dict]:
    """One row per dataset of a claim that must hold at every high β and every λ > 0.

    ``judge(dataset, β, λ)`` gives that setting's intervals, their verdicts and a text; the claim
    is ``verdict_all`` of every part, and the row reports the part ``choose`` picks (by default
    the weakest). A dataset without the needed grid points gives ``not run``.
    """
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        betas, lambdas, reason = lambda_grid(metrics, dataset, settings)
        if reason:
            rows.append(not_run(dataset, test, reason))
            continue
        parts, verdicts, texts = [], [], []
        for beta in betas:
            for lam in lambdas:
                intervals, part_verdicts, text = judge(dataset, beta, lam)
                parts += intervals
                verdicts += part_verdicts
                texts.append(text)
        decisive = choose(parts, verdicts)
        detail = detail_prefix + "; ".join(texts)
        rows.append(row(dataset, test, verdict_all(verdicts), parts[decisive], detail))
    return rows


@claim(
    "deep.lambda_improves_reconstruction",
    "§5.2 Fig 5",
    "At high β, every λ > 0 lowers the NLL against λ = 0 at the same β.",
    tables=("metrics",),
)
def deep_lambda_improves_reconstruction(
    metrics: pd.DataFrame, settings: ClaimSettings
) -> list[dict]:
    nll = settings.nll
    test = (
        f"at every {high_beta_text(settings)} and every λ > 0: mean over seeds of the paired "
        f"change NLL(β, λ) − NLL(β, 0), NLL = {nll}, 95 % bootstrap interval over seeds; "
        "reproduced if every interval is below 0; the row shows the least improvement"
    )

    def judge(dataset: str, beta: float, lam: float):
        change = paired_change(metrics, dataset, beta, lam, nll, settings)
        verdict = verdict_below(change, 0.0, settings.min_seeds)
        return [change], [verdict], f"{setting_text(beta, lam)}: {interval_text(change)}"

    def least_improvement(parts: list[Interval], verdicts: list[str]) -> int:
        # among equally supported parts, the least improvement (largest change)
        weakest_verdict = verdicts[weakest(verdicts)]
        equals = (i for i, v in enumerate(verdicts) if v == weakest_verdict)
        return max(equals, key=lambda i: parts[i].estimate)

    return _over_lambda_grid(
        metrics,
        settings,
        test,
        judge,
        least_improvement,
        detail_prefix=f"NLL change ({nll}): ",
    )


def _preservation_parts(
    metrics: pd.DataFrame, dataset: str, beta: float, lam: float, settings: ClaimSettings
) -> tuple[list[Interval], list[str], str]:
    """MIG not lower (by more than the margin), I_m higher, no fewer active latents."""
    mig = paired_change(metrics, dataset, beta, lam, MIG_COLUMN, settings)
    im = paired_change(metrics, dataset, beta, lam, "im", settings)
    active = paired_change(metrics, dataset, beta, lam, "active_latents", settings)
    verdicts = [
        verdict_above(mig, -settings.mig_margin, settings.min_seeds),
        verdict_above(im, 0.0, settings.min_seeds),
        verdict_above(active, -ACTIVE_LATENTS_MARGIN, settings.min_seeds),
    ]
    text = (
        f"{setting_text(beta, lam)}: MIG {interval_text(mig)}, I_m {interval_text(im)}, "
        f"active latents {interval_text(active)}"
    )
    return [mig, im, active], verdicts, text


@claim(
    "deep.lambda_preserves_disentanglement",
    "§5.2 Fig 5",
    "At high β, λ > 0 does not lower MIG and keeps more information (I_m, active "
    "latents) than λ = 0 at the same β.",
    tables=("metrics",),
    views=DEEP_VIEWS,
)
def deep_lambda_preserves_disentanglement(
    metrics: pd.DataFrame, settings: ClaimSettings
) -> list[dict]:
    test = (
        f"at every {high_beta_text(settings)} and every λ > 0, paired by seed against λ = 0 at "
        "the same β, 95 % bootstrap intervals over seeds: MIG change above "
        f"−{settings.mig_margin:g} (the margin), I_m change above 0, change of active latents "
        f"above −{ACTIVE_LATENTS_MARGIN:g}; reproduced if all hold; the row shows the part that "
        "decided (MIG first among equals)"
    )
    return _over_lambda_grid(
        metrics,
        settings,
        test,
        lambda dataset, beta, lam: _preservation_parts(metrics, dataset, beta, lam, settings),
    )
