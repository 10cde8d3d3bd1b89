"""Every deep claim's scenarios, tables without and with an effect (``SCENARIOS``), and
:func:`calibrate`, which judges random tables of one scenario with the claim's registered judge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..claims.judge import CLAIMS
from ..claims.settings import ClaimSettings
from ..statistics import REPRODUCED
from .builders import (
    ADAPTIVE_MARGIN,
    EFFECT,
    UPPER_SPREADS,
    adaptive_tables,
    collapse_tables,
    concentration_tables,
    matching_tables,
    metrics_only,
    nll_means,
    one_off,
    peak,
    restoration_means,
    restoration_tables,
    sampled_tables,
    score_means,
    selection_tables,
)
from .simulation import HIGH_BETAS, LAST, NOISES, Noise


@dataclass(frozen=True)
class Scenario:
    """One kind of table for one claim: ``effect`` says whether the claim holds there (its
    reproduced rate is power) or not (a false reproduced rate); ``tables(seeds, noise, rng)``
    draws the tables the claim reads, by name."""

    claim_id: str
    name: str
    effect: bool
    tables: Callable[[int, Noise, np.random.Generator], dict[str, pd.DataFrame]]
    settings: Mapping[str, object] = field(default_factory=dict)


MPI3D = {"mpi3d_dataset": "mpi3d_real"}

# fmt: off
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("deep.nll_rises_with_beta", "flat", False, metrics_only(nll_means(lambda k: 0.0))),
    Scenario(
        "deep.nll_rises_with_beta",
        "flat then falling",
        False,
        metrics_only(nll_means(lambda k: -EFFECT * max(0, k - 3))),
    ),
    Scenario(
        "deep.nll_rises_with_beta", "rising", True, metrics_only(nll_means(lambda k: EFFECT * k))
    ),
    Scenario("deep.disentanglement_peaks", "flat", False, metrics_only(score_means(lambda k: 0.0))),
    Scenario(
        "deep.disentanglement_peaks",
        "flat then falling",
        False,
        metrics_only(score_means(lambda k: -EFFECT * max(0, k - 3))),
    ),
    Scenario(
        "deep.disentanglement_peaks",
        "MIG flat then falling, SAP peaks",
        False,
        metrics_only(score_means(lambda k: -EFFECT * max(0, k - 3), peak)),
    ),
    Scenario(
        "deep.disentanglement_peaks",
        "MIG monotone, SAP peaks",
        False,
        metrics_only(score_means(lambda k: EFFECT * k / LAST, peak)),
    ),
    Scenario("deep.disentanglement_peaks", "peak", True, metrics_only(score_means(peak))),
    Scenario(
        "deep.collapse_strongest_on_mpi3d",
        "equal",
        False,
        collapse_tables({"dsprites": 0.5, "mpi3d_real": 0.5, "shapes3d": 0.5}),
        MPI3D,
    ),
    Scenario(
        "deep.collapse_strongest_on_mpi3d",
        "MIG equal on one, SAP stronger on MPI3D",
        False,
        collapse_tables(
            {"dsprites": 0.3, "mpi3d_real": 0.9, "shapes3d": 0.9},
            {"dsprites": 0.3, "mpi3d_real": 0.9, "shapes3d": 0.3},
        ),
        MPI3D,
    ),
    Scenario(
        "deep.collapse_strongest_on_mpi3d",
        "stronger on MPI3D",
        True,
        collapse_tables({"dsprites": 0.3, "mpi3d_real": 0.9, "shapes3d": 0.3}),
        MPI3D,
    ),
    Scenario(
        "deep.sampled_information_collapses",
        "I_m at the null's 95 % point",
        False,
        sampled_tables(0.0, UPPER_SPREADS),
    ),
    Scenario(
        "deep.sampled_information_collapses",
        "MIG at the null's 95 % point",
        False,
        sampled_tables(UPPER_SPREADS, 0.0),
    ),
    Scenario(
        "deep.sampled_information_collapses", "no information", True, sampled_tables(0.0, 0.0)
    ),
    Scenario(
        "deep.lambda_improves_reconstruction",
        "no change",
        False,
        restoration_tables(restoration_means()),
    ),
    Scenario(
        "deep.lambda_improves_reconstruction",
        "no change at one setting",
        False,
        restoration_tables(restoration_means(nll=one_off(-EFFECT))),
    ),
    Scenario(
        "deep.lambda_improves_reconstruction",
        "lower NLL",
        True,
        restoration_tables(restoration_means(nll=-EFFECT)),
    ),
    Scenario(
        "deep.lambda_preserves_disentanglement",
        "MIG lower by the margin at one setting",
        False,
        restoration_tables(
            restoration_means(mig=one_off(EFFECT, -1.0), sap=EFFECT, im=EFFECT, active=2.0)
        ),
    ),
    Scenario(
        "deep.lambda_preserves_disentanglement",
        "I_m unchanged at one setting",
        False,
        restoration_tables(restoration_means(mig=EFFECT, im=one_off(EFFECT), active=2.0)),
    ),
    Scenario(
        "deep.lambda_preserves_disentanglement",
        "scores and information up",
        True,
        restoration_tables(restoration_means(mig=EFFECT, im=EFFECT, active=2.0)),
    ),
    Scenario(
        "selection.optimum_moves_to_high_beta",
        "flat MIG",
        False,
        selection_tables(lambda beta, lam: 0.0),
    ),
    Scenario(
        "selection.optimum_moves_to_high_beta",
        "MIG higher at high β",
        True,
        selection_tables(lambda beta, lam: EFFECT if beta >= 16 else 0.0),
    ),
    Scenario(
        "selection.lambda_recovers_nll",
        "no λ recovers",
        False,
        restoration_tables(restoration_means(mig=EFFECT)),
    ),
    Scenario(
        "selection.lambda_recovers_nll",
        "one β without recovery",
        False,
        restoration_tables(
            restoration_means(
                nll=lambda beta, lam: 0.0 if beta == HIGH_BETAS[0] else -EFFECT, mig=EFFECT
            )
        ),
    ),
    Scenario(
        "selection.lambda_recovers_nll",
        "every λ recovers",
        True,
        restoration_tables(restoration_means(nll=-EFFECT, mig=EFFECT)),
    ),
    Scenario("qualitative.mi_concentrated", "no change", False, concentration_tables(0.0)),
    Scenario(
        "qualitative.mi_concentrated",
        "more concentrated",
        True,
        concentration_tables(EFFECT * 0.05),
    ),
    Scenario(
        "adaptive.holds_target",
        "at the margin at one β",
        False,
        adaptive_tables(ADAPTIVE_MARGIN - EFFECT * 0.02, ADAPTIVE_MARGIN),
    ),
    Scenario(
        "adaptive.holds_target",
        "well within",
        True,
        adaptive_tables(ADAPTIVE_MARGIN - EFFECT * 0.02),
    ),
    Scenario(
        "adaptive.matches_best_static",
        "worse by the margin at one β",
        False,
        matching_tables(0.0, 0.05),
    ),
    Scenario("adaptive.matches_best_static", "as good", True, matching_tables(0.0)),
)
# fmt: on
"""Every deep claim's tables without (``effect=False``) and with an effect."""


def calibrate(
    scenario: Scenario,
    seeds: int,
    noise: str,
    tables: int,
    settings: ClaimSettings,
    seed: int = 0,
) -> float:
    """The fraction of ``tables`` random tables of ``scenario`` on which its claim is
    reproduced (for a claim judged per representation, the encoder mean's row), drawn from
    ``numpy.random.default_rng(seed)``."""
    entry = CLAIMS[scenario.claim_id]
    settings = replace(settings, **scenario.settings)
    rng = np.random.default_rng(seed)
    reproduced = 0
    for _ in range(tables):
        drawn = scenario.tables(seeds, NOISES[noise], rng)
        rows = entry.judge(*(drawn.get(name) for name in entry.tables), settings)
        reproduced += rows[0]["verdict"] == REPRODUCED
    return reproduced / tables
