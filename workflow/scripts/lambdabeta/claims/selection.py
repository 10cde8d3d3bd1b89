"""Claims of the (β, λ) selection (§6, Fig 6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ..effects import Finetunes
from ..grid import FINETUNE
from ..selection import MIG_COLUMN, augmented_tchebycheff, first_minimum, minmax_normalize
from ..statistics import BELOW, NO_INTERVAL, Evidence
from .registry import (
    DEEP_VIEWS,
    claim,
    interval_text,
    judged_row,
    not_run,
    setting_text,
)
from .restoration import high_beta_text, lambda_grid, null_margin, paired_change
from .settings import ClaimSettings


def selected_betas(
    nll: np.ndarray, mig: np.ndarray, betas: np.ndarray, weights: Sequence[float], rho: float
) -> np.ndarray:
    """The β of the Tchebycheff minimiser for each w1 of ``weights``, from per-seed objectives.

    ``nll``, ``mig``: (…, seeds, G) over the G finetuned grid points in (β, λ) order; ``betas``
    the β of each point. Means over seeds, min-max normalised over the grid, scored as in
    :mod:`lambdabeta.selection`; returns (…, len(weights)).
    """
    f1 = minmax_normalize(nll.mean(axis=-2), axis=-1)
    f2 = minmax_normalize(1.0 - mig.mean(axis=-2), axis=-1)
    chosen = [first_minimum(augmented_tchebycheff(f1, f2, w1, rho)) for w1 in weights]
    return np.stack([betas[index] for index in chosen], axis=-1)


@claim(
    "selection.optimum_moves_to_high_beta",
    "§6 Fig 6",
    "The Tchebycheff minimiser moves from low to high β as w₁ goes from 1 to 0.",
    tables=("metrics", "selection"),
    views=DEEP_VIEWS,
)
def selection_optimum_moves_to_high_beta(
    metrics: pd.DataFrame, selection: pd.DataFrame, settings: ClaimSettings
) -> list[dict]:
    nll, rho = settings.nll, settings.rho
    test = (
        f"b₁ = the β of the w₁ = 1 minimiser (f1 = {nll}; selection.csv); at w₁ = 0 the "
        "minimiser is the grid point of highest MIG, so the optimum moves to higher β exactly "
        "when some point at β > b₁ has a higher MIG than every point at β ≤ b₁: seed-paired MIG "
        f"differences ({settings.mean_test_text}), every point at β ≤ b₁ must be beaten "
        "(intersection-union), the candidates at β > b₁ Bonferroni-corrected; not reproduced if "
        "no point lies above b₁ or every candidate is beaten by some point at β ≤ b₁"
    )
    rows = []
    for dataset in sorted(metrics["dataset"].unique()):
        chosen = selection[selection["dataset"] == dataset].set_index("w1")["beta"]
        if not {0.0, 1.0} <= set(chosen.index):
            rows.append(not_run(dataset, test, "selection.weights lacks w₁ = 0 or w₁ = 1"))
            continue
        runs = metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == FINETUNE)]
        grid = runs.pivot_table(index="seed", columns=["beta", "lambda"], values=[nll, MIG_COLUMN])
        grid = grid[np.isfinite(grid).all(axis=1)].sort_index(axis=1)
        points = list(grid[nll].columns)
        betas = np.array([beta for beta, _ in points], dtype=float)
        mig = grid[MIG_COLUMN][points].to_numpy()
        if settings.representation != "mean":
            # selection.csv selects with the mean's MIG: this representation's minimisers come
            # from the same scores of its own MIG
            picked = selected_betas(grid[nll][points].to_numpy(), mig, betas, [0.0, 1.0], rho)
            chosen = pd.Series({0.0: float(picked[0]), 1.0: float(picked[1])})
        low_beta = float(chosen[1.0])
        sweep = ", ".join(f"{w:g}: β={b:g}" for w, b in chosen.sort_index(ascending=False).items())
        lows = [i for i, beta in enumerate(betas) if beta <= low_beta]
        candidates = [i for i, beta in enumerate(betas) if beta > low_beta]
        if not candidates:
            reason = f"minimiser's β by w₁: {sweep}; no grid point lies above β = {low_beta:g}"
            rows.append(judged_row(dataset, test, _refuted(len(mig)), reason, settings))
            continue
        beats = [
            settings.all_of([settings.test(mig[:, c] - mig[:, h]) for h in lows])
            for c in candidates
        ]
        evidence = settings.any_of(beats)
        best = points[candidates[evidence.part]]
        detail = (
            f"minimiser's β by w₁: {sweep}; best candidate {setting_text(*best)}: MIG above every "
            f"point at β ≤ {low_beta:g} by {interval_text(evidence.interval)} (the smallest margin)"
        )
        rows.append(judged_row(dataset, test, evidence, detail, settings))
    return rows


def _refuted(n: int) -> Evidence:
    """The evidence of a claim that the grid itself contradicts."""
    return Evidence(replace(NO_INTERVAL, n=n), 1.0, 0.0)


@claim(
    "selection.lambda_recovers_nll",
    "§6",
    "For every over-regularised β some λ > 0 recovers NLL without lowering MIG.",
    tables=("metrics",),
    views=DEEP_VIEWS,
)
def selection_lambda_recovers_nll(metrics: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    nll = settings.nll
    test = (
        f"at every over-regularised β — {high_beta_text(settings)} — some λ > 0 whose "
        f"seed-paired NLL change ({nll}) against λ = 0 lies below 0 and whose MIG change lies "
        "above −(MIG's permutation null spread) "
        f"({settings.mean_test_text}): both must hold, the λ are Bonferroni-corrected, every β "
        "must hold (intersection-union); the row shows the deciding change"
    )
    rows = []
    finetunes = Finetunes(metrics)
    for dataset in sorted(metrics["dataset"].unique()):
        betas, lambdas, reason = lambda_grid(metrics, dataset, settings)
        if not reason and f"{MIG_COLUMN}_null_upper" not in metrics:
            reason = "no permutation null of MIG in the metrics (deep.evaluate.null_shuffles)"
        if reason:
            rows.append(not_run(dataset, test, reason))
            continue
        per_beta, texts = [], []
        for beta in betas:
            options, option_texts = [], []
            for lam in lambdas:
                margin = null_margin(finetunes, dataset, beta, lam, MIG_COLUMN)
                change = paired_change(finetunes, dataset, beta, lam, nll, settings, side=BELOW)
                mig = paired_change(finetunes, dataset, beta, lam, MIG_COLUMN, settings, -margin)
                options.append(settings.all_of([change, mig]))
                option_texts.append(
                    f"λ={lam:g}: NLL {interval_text(change.interval)}, MIG "
                    f"{interval_text(mig.interval)} (margin {margin:.3g})"
                )
            some = settings.any_of(options)
            per_beta.append(some)
            texts.append(f"β={beta:g}: " + ", ".join(option_texts) + f" ({settings.verdict(some)})")
        rows.append(
            judged_row(dataset, test, settings.all_of(per_beta), "; ".join(texts), settings)
        )
    return rows
