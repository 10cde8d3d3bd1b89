"""Claims of the deep experiments (Figs 4-5): β sweeps and λ effects, paired by seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..effects import BASELINE_LAMBDA, lambda_change
from ..selection import MIG_COLUMN
from ..statistics import (
    NOT_REPRODUCED,
    REPRODUCED,
    Interval,
    verdict_above,
    verdict_all,
    verdict_below,
    weakest,
)
from .registry import ClaimSettings, claim_row, high_betas, interval_text, not_run, setting_text

STABILIZE, FINETUNE = "stabilize", "finetune"
# Latents are counted in whole units: a mean loss of less than half a latent over seeds is no loss.
ACTIVE_LATENTS_MARGIN = 0.5


# ---- deep models: β sweep (stabilized models, Fig 4) ------------------------------------------


def seeds_by_beta(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Seeds × β table of ``column`` over ``runs`` (one phase, one λ), keeping only the seeds
    that have a finite value at every β, so every comparison between β is paired by seed."""
    table = runs.pivot_table(index="seed", columns="beta", values=column, aggfunc="first")
    table = table.sort_index().sort_index(axis=1)
    return table[np.isfinite(table).all(axis=1)]


def _stabilized(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == STABILIZE)]


def deep_nll_rises_with_beta(metrics: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    nll = settings.nll
    test = (
        f"stabilized models (λ = 0), NLL = {nll}: mean over seeds of NLL(largest β) − "
        "NLL(smallest β), paired by seed, 95 % bootstrap interval over seeds; reproduced if it "
        "is above 0 and no step between neighbouring β falls significantly"
    )
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        table = seeds_by_beta(_stabilized(metrics, dataset), nll)
        if table.shape[1] < 2:
            rows.append(
                not_run("deep.nll_rises_with_beta", dataset, test, "fewer than two β in the grid")
            )
            continue
        values = table.to_numpy()
        rise = settings.bootstrap_mean(values[:, -1] - values[:, 0])
        steps = [
            settings.bootstrap_mean(values[:, k + 1] - values[:, k])
            for k in range(values.shape[1] - 1)
        ]
        verdict = verdict_above(rise, 0.0, settings.min_seeds)
        # a step whose whole interval lies below 0: the NLL falls significantly there
        dropping = [
            (table.columns[k], table.columns[k + 1])
            for k, step in enumerate(steps)
            if verdict_below(step, 0.0, settings.min_seeds) == REPRODUCED
        ]
        if dropping:
            verdict = NOT_REPRODUCED
        means = ", ".join(f"{b:g}: {v:.4g}" for b, v in table.mean().items())
        detail = f"mean NLL by β: {means}"
        if dropping:
            detail += "; falls significantly from " + ", ".join(
                f"β={a:g} to {b:g}" for a, b in dropping
            )
        rows.append(claim_row("deep.nll_rises_with_beta", dataset, test, verdict, rise, detail))
    return rows


def peak_contrast(values: np.ndarray) -> np.ndarray:
    """How far an intermediate β's mean rises above both ends of the β sweep.

    ``values``: (…, seeds, β) with β ascending. With m_k the mean over seeds at the k-th β,
    contrast = max over 0 < k < K−1 of min(m_k − m_0, m_k − m_(K−1)): positive exactly when some
    intermediate β beats both the smallest and the largest β.
    """
    means = values.mean(axis=-2)
    inner = means[..., 1:-1]
    above_ends = np.minimum(inner - means[..., :1], inner - means[..., -1:])
    return above_ends.max(axis=-1)


def deep_disentanglement_peaks(metrics: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    test = (
        "stabilized models (λ = 0): for MIG and for SAP, the contrast max over intermediate β of "
        "min(m(β) − m(smallest β), m(β) − m(largest β)) of the means over seeds, 95 % bootstrap "
        "interval over seeds; reproduced if both contrasts are above 0"
    )
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        runs = _stabilized(metrics, dataset)
        tables = {metric: seeds_by_beta(runs, metric) for metric in (MIG_COLUMN, "sap")}
        if min(t.shape[1] for t in tables.values()) < 3:
            rows.append(
                not_run(
                    "deep.disentanglement_peaks",
                    dataset,
                    test,
                    "fewer than three β in the grid: no intermediate β",
                )
            )
            continue
        parts, verdicts, texts = [], [], []
        for metric, table in tables.items():
            interval = settings.bootstrap(table.to_numpy(), peak_contrast)
            parts.append(interval)
            verdicts.append(verdict_above(interval, 0.0, settings.min_seeds))
            means = table.mean()
            texts.append(
                f"{metric.upper()}: peak at β={means.idxmax():g} ({means.max():.3g}), "
                f"{means.iloc[0]:.3g} at β={means.index[0]:g}, {means.iloc[-1]:.3g} at "
                f"β={means.index[-1]:g}; contrast {interval_text(interval)} ({verdicts[-1]})"
            )
        decisive = weakest(verdicts)
        rows.append(
            claim_row(
                "deep.disentanglement_peaks",
                dataset,
                test,
                verdict_all(verdicts),
                parts[decisive],
                "; ".join(texts),
            )
        )
    return rows


def relative_deterioration(values: np.ndarray) -> np.ndarray:
    """1 − m(largest β) / max_β m(β): the fraction of its best mean score a dataset has lost at
    the largest β. ``values``: (…, seeds, β), β ascending; NaN where the best mean is 0."""
    means = values.mean(axis=-2)
    best = means.max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(best > 0, 1.0 - means[..., -1] / best, np.nan)


def deep_collapse_strongest_on_mpi3d(
    metrics: pd.DataFrame, settings: ClaimSettings, target: str | None
) -> list[dict]:
    test = (
        "stabilized models (λ = 0): for MIG and for SAP, the deterioration 1 − m(largest β) / "
        "max_β m(β) of MPI3D-real minus the largest of the other datasets', seeds resampled "
        "jointly, 95 % bootstrap interval; reproduced if both are above 0"
    )
    datasets = sorted(metrics["dataset"].unique())
    scope = target or "deep study"
    if target is None or target not in datasets:
        return [
            not_run(
                "deep.collapse_strongest_on_mpi3d", scope, test, "no MPI3D-real models in the run"
            )
        ]
    others = [d for d in datasets if d != target]
    if not others:
        return [
            not_run(
                "deep.collapse_strongest_on_mpi3d", scope, test, "no other dataset to compare with"
            )
        ]
    scope = f"{target} vs {', '.join(others)}"
    parts, verdicts, texts = [], [], []
    for metric in (MIG_COLUMN, "sap"):
        tables = [seeds_by_beta(_stabilized(metrics, d), metric) for d in [target, *others]]
        betas = sorted(set.intersection(*(set(t.columns) for t in tables)))
        seeds = sorted(set.intersection(*(set(t.index) for t in tables)))
        if len(betas) < 2:
            return [
                not_run("deep.collapse_strongest_on_mpi3d", scope, test, "fewer than two common β")
            ]
        # (seeds, datasets, β): a resample draws seeds, with all their datasets' runs
        units = np.stack([t.loc[seeds, betas].to_numpy() for t in tables], axis=1)

        def difference(values: np.ndarray) -> np.ndarray:
            deterioration = relative_deterioration(np.moveaxis(values, -2, -3))
            return deterioration[..., 0] - deterioration[..., 1:].max(axis=-1)

        interval = settings.bootstrap(units, difference)
        parts.append(interval)
        verdicts.append(verdict_above(interval, 0.0, settings.min_seeds))
        each = relative_deterioration(np.moveaxis(units, 1, 0))
        texts.append(
            f"{metric.upper()} deterioration: "
            + ", ".join(f"{d} {v:.3g}" for d, v in zip([target, *others], each, strict=True))
            + f"; difference {interval_text(interval)} ({verdicts[-1]})"
        )
    decisive = weakest(verdicts)
    return [
        claim_row(
            "deep.collapse_strongest_on_mpi3d",
            scope,
            test,
            verdict_all(verdicts),
            parts[decisive],
            "; ".join(texts),
        )
    ]


# ---- deep models: the effect of λ (finetuned models, Fig 5) -----------------------------------


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
    claim_id: str,
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
            rows.append(not_run(claim_id, dataset, test, reason))
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
        rows.append(
            claim_row(claim_id, dataset, test, verdict_all(verdicts), parts[decisive], detail)
        )
    return rows


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
        "deep.lambda_improves_reconstruction",
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
        "deep.lambda_preserves_disentanglement",
        test,
        lambda dataset, beta, lam: _preservation_parts(metrics, dataset, beta, lam, settings),
    )
