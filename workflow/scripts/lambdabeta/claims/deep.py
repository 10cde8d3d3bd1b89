"""Claims of the deep experiments (Figs 4-5): β sweeps and λ effects, paired by seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..grid import STABILIZE
from ..selection import MIG_COLUMN
from ..statistics import (
    NOT_REPRODUCED,
    REPRODUCED,
    verdict_above,
    verdict_all,
    verdict_below,
    weakest,
)
from .registry import (
    DEEP_VIEWS,
    DERIVED,
    ClaimSettings,
    claim,
    interval_text,
    not_run,
    row,
)

# ---- deep models: β sweep (stabilized models, Fig 4) ------------------------------------------


def seeds_by_beta(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Seeds × β table of ``column`` over ``runs`` (one phase, one λ), keeping only the seeds
    that have a finite value at every β, so every comparison between β is paired by seed."""
    table = runs.pivot_table(index="seed", columns="beta", values=column, aggfunc="first")
    table = table.sort_index().sort_index(axis=1)
    return table[np.isfinite(table).all(axis=1)]


def _stabilized(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == STABILIZE)]


@claim(
    "deep.nll_rises_with_beta",
    "§5.2 Fig 4",
    "For the β-VAE (λ = 0) the reconstruction NLL grows with β.",
    tables=("metrics",),
)
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
            rows.append(not_run(dataset, test, "fewer than two β in the grid"))
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
        rows.append(row(dataset, test, verdict, rise, detail))
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


@claim(
    "deep.disentanglement_peaks",
    "§1, §5.2 Fig 4",
    "MIG and SAP peak at an intermediate β and deteriorate at large β.",
    tables=("metrics",),
    views=DEEP_VIEWS,
)
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
            row(
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


@claim(
    "deep.collapse_strongest_on_mpi3d",
    "§5.2 Fig 4",
    "The high-β deterioration of MIG and SAP is largest on MPI3D-real.",
    tables=("metrics",),
    views=DEEP_VIEWS,
)
def deep_collapse_strongest_on_mpi3d(metrics: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    test = (
        "stabilized models (λ = 0): for MIG and for SAP, the deterioration 1 − m(largest β) / "
        "max_β m(β) of MPI3D-real minus the largest of the other datasets', seeds resampled "
        "jointly, 95 % bootstrap interval; reproduced if both are above 0"
    )
    target = settings.mpi3d_dataset
    datasets = sorted(metrics["dataset"].unique())
    scope = target or "deep study"
    if target is None or target not in datasets:
        return [not_run(scope, test, "no MPI3D-real models in the run")]
    others = [d for d in datasets if d != target]
    if not others:
        return [not_run(scope, test, "no other dataset to compare with")]
    scope = f"{target} vs {', '.join(others)}"
    parts, verdicts, texts = [], [], []
    for metric in (MIG_COLUMN, "sap"):
        tables = [seeds_by_beta(_stabilized(metrics, d), metric) for d in [target, *others]]
        betas = sorted(set.intersection(*(set(t.columns) for t in tables)))
        seeds = sorted(set.intersection(*(set(t.index) for t in tables)))
        if len(betas) < 2:
            return [not_run(scope, test, "fewer than two common β")]
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
        row(
            scope,
            test,
            verdict_all(verdicts),
            parts[decisive],
            "; ".join(texts),
        )
    ]


@claim(
    "deep.sampled_information_collapses",
    "§3.3 Theorem 3.2 applied to the deep models (this pipeline)",
    "At the largest β with λ = 0 the sampled representation's MIG and I_m fall to the histogram "
    "estimator's bias, while the encoder mean's need not.",
    tables=("metrics",),
    origin=DERIVED,
)
def deep_sampled_information_collapses(
    metrics: pd.DataFrame, settings: ClaimSettings
) -> list[dict]:
    factor = settings.bias_factor
    test = (
        "stabilized models at the largest β: mean over seeds of the sampled MIG and I_m, 95 % "
        f"bootstrap interval over seeds; reproduced if both intervals lie below {factor:g}× the "
        "plug-in bias of an independent latent ((bins − 1)(|V_k| − 1)/(2N) nats per factor; for "
        "MIG divided by H(V_k) and averaged); the effect is I_m's"
    )
    scored = {"mig_sampled", "im_sampled", "mig_bias", "im_bias"} <= set(metrics.columns)
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        runs = _stabilized(metrics, dataset)
        if not scored or runs.empty:
            rows.append(not_run(dataset, test, "the sampled representation was not scored"))
            continue
        at = runs[runs["beta"] == runs["beta"].max()].sort_values("seed")
        parts, verdicts = [], []
        for metric in ("mig", "im"):
            interval = settings.bootstrap_mean(at[f"{metric}_sampled"].to_numpy())
            threshold = factor * float(at[f"{metric}_bias"].max())
            parts.append(interval)
            verdicts.append(verdict_below(interval, threshold, settings.min_seeds))
        detail = (
            f"β={at['beta'].max():g}: sampled MIG {interval_text(parts[0])} (bias "
            f"{at['mig_bias'].max():.3g}), I_m {interval_text(parts[1])} nats (bias "
            f"{at['im_bias'].max():.3g}); the mean's MIG {at['mig'].mean():.3g}, I_m "
            f"{at['im'].mean():.3g}; active latents {at['active_latents'].mean():.3g}"
        )
        rows.append(row(dataset, test, verdict_all(verdicts), parts[1], detail))
    return rows
