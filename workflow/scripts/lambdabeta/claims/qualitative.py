"""The claim of the qualitative figures (Appendix B, Fig 8): concentration of the MI matrix."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .registry import claim, judged_row, not_run, setting_text
from .settings import ClaimSettings


def mi_concentration(matrix: np.ndarray) -> float:
    """Mean over factors of the share of each factor's MI held by its top latent.

    For the latent × factor MI matrix I (nats), share_j = max_i I_ij / Σ_i I_ij, in [1/m, 1]:
    1 when one latent carries all of factor j's information. Factors no latent informs (column
    sum 0) are left out; with none left the concentration is NaN.
    """
    matrix = np.clip(np.asarray(matrix, dtype=float), 0.0, None)
    totals = matrix.sum(axis=0)
    informed = totals > 0
    if not informed.any():
        return math.nan
    return float((matrix.max(axis=0)[informed] / totals[informed]).mean())


REFERENCE, CONCENTRATED = "reference", "concentrated"


def concentration_views(table: pd.DataFrame):
    """The concentrations of each representation's MI matrices (a table without a
    ``representation`` column holds the encoder mean's)."""
    if "representation" not in table:
        table = table.assign(representation="mean")
    for representation in ("mean", "sampled"):
        block = table[table["representation"] == representation]
        if not block.empty:
            yield representation, block


@claim(
    "qualitative.mi_concentrated",
    "Appendix B Fig 8",
    "The latent × factor MI is more concentrated at (β = 8, λ = 32) than at (β = 1, λ = 0).",
    tables=("concentration",),
    views=concentration_views,
)
def qualitative_mi_concentrated(
    concentration: pd.DataFrame | None, settings: ClaimSettings
) -> list[dict]:
    """``concentration``: columns ``dataset, role, beta, lambda, seed, concentration`` with role
    ``reference`` (Fig 8's first setting, β = 1, λ = 0) or ``concentrated`` (its last,
    β = 8, λ = 32), each the nearest grid point, for every seed."""
    test = (
        "the seed-paired change in MI concentration (each factor's share of its MI held by its "
        "top latent, averaged over factors) from Fig 8's first to its last setting "
        f"({settings.mean_test_text}); reproduced if above 0"
    )
    if concentration is None or concentration.empty:
        return [
            not_run(
                "deep study",
                test,
                "figures.mi_heatmaps names fewer than two settings, or no deep models",
            )
        ]
    rows = []
    for dataset, block in concentration.groupby("dataset", sort=True):
        settings_of = block.groupby("role")[["beta", "lambda"]].first()
        if (
            set(settings_of.index) != {REFERENCE, CONCENTRATED}
            or (settings_of.loc[REFERENCE] == settings_of.loc[CONCENTRATED]).all()
        ):
            rows.append(
                not_run(
                    dataset,
                    test,
                    "Fig 8's settings fall on the same grid point",
                )
            )
            continue
        by_seed = block.pivot_table(index="seed", columns="role", values="concentration")
        differences = (by_seed[CONCENTRATED] - by_seed[REFERENCE]).dropna().sort_index()
        evidence = settings.test(differences.to_numpy())
        ref, conc = settings_of.loc[REFERENCE], settings_of.loc[CONCENTRATED]
        detail = (
            f"{setting_text(ref['beta'], ref['lambda'])} → "
            f"{setting_text(conc['beta'], conc['lambda'])}; "
            f"mean concentration {by_seed[REFERENCE].mean():.3g} → "
            f"{by_seed[CONCENTRATED].mean():.3g}"
        )
        figure_seed = settings.figure_seed
        if figure_seed is not None and figure_seed in by_seed.index:
            shown = by_seed.loc[figure_seed]
            detail += (
                f"; the figure's seed {figure_seed}: {shown[REFERENCE]:.3g} → "
                f"{shown[CONCENTRATED]:.3g}"
            )
        rows.append(judged_row(dataset, test, evidence, detail, settings))
    return rows
