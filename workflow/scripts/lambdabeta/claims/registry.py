"""The claims of the paper, the settings of their tests, and the rows of the claims table."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ..selection import PAPER_RECONSTRUCTION_METRIC, reconstruction_column
from ..statistics import NOT_RUN, VERDICTS, Interval, bootstrap_mean, bootstrap_statistic

COLUMNS = (
    "claim_id",
    "source",
    "statement",
    "scope",
    "test",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "verdict",
    "detail",
)


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: its id, where the paper makes it, and what it says."""

    claim_id: str
    source: str
    statement: str


CLAIMS = {
    claim.claim_id: claim
    for claim in (
        Claim(
            "linear.collapse",
            "§3.3 Theorem 3.2, §5.1 Fig 2",
            "For λ = 0 and every β > 1 every restart collapses: SAP, I_m and I(X; V) vanish.",
        ),
        Claim(
            "linear.no_collapse_at_beta_1",
            "§5.1 Fig 2",
            "At β = 1, λ = 0 the restarts keep information about the factors.",
        ),
        Claim(
            "linear.trivial_solution",
            "§3.3 Theorem 3.2",
            "The collapsed solutions are the trivial solution A = 0, B = 0, Σ_W = I, Σ_Z = Σ_Y.",
        ),
        Claim(
            "linear.contraction_rate",
            "§3.3 Theorem 3.2, Appendix A",
            "Under fixed-point iteration at λ = 0, ‖B_t‖₂ shrinks at least as fast as β⁻ᵗ.",
        ),
        Claim(
            "linear.lambda_prevents_collapse",
            "§4.2 Lemma 4.2, §5.1 Fig 3",
            "Every λ > 0 keeps SAP and I_m above zero at the largest β, for every restart.",
        ),
        Claim(
            "deep.nll_rises_with_beta",
            "§5.2 Fig 4",
            "For the β-VAE (λ = 0) the reconstruction NLL grows with β.",
        ),
        Claim(
            "deep.disentanglement_peaks",
            "§1, §5.2 Fig 4",
            "MIG and SAP peak at an intermediate β and deteriorate at large β.",
        ),
        Claim(
            "deep.collapse_strongest_on_mpi3d",
            "§5.2 Fig 4",
            "The high-β deterioration of MIG and SAP is largest on MPI3D-real.",
        ),
        Claim(
            "deep.lambda_improves_reconstruction",
            "§5.2 Fig 5",
            "At high β, every λ > 0 lowers the NLL against λ = 0 at the same β.",
        ),
        Claim(
            "deep.lambda_preserves_disentanglement",
            "§5.2 Fig 5",
            "At high β, λ > 0 does not lower MIG and keeps more information (I_m, active "
            "latents) than λ = 0 at the same β.",
        ),
        Claim(
            "selection.optimum_moves_to_high_beta",
            "§6 Fig 6",
            "The Tchebycheff minimiser moves from low to high β as w₁ goes from 1 to 0.",
        ),
        Claim(
            "selection.lambda_recovers_nll",
            "§6",
            "For every over-regularised β some λ > 0 recovers NLL without lowering MIG.",
        ),
        Claim(
            "qualitative.mi_concentrated",
            "Appendix B Fig 8",
            "The latent × factor MI is more concentrated at (β = 8, λ = 32) than at "
            "(β = 1, λ = 0).",
        ),
    )
}


@dataclass(frozen=True)
class ClaimSettings:
    """Thresholds and bootstrap settings of the claim tests (the ``claims`` config section).

    ``reconstruction`` is the ``deep.reconstruction_metric`` whose column is the deep NLL.
    """

    collapse_tolerance: float = 0.01
    trivial_tolerance: float = 0.1
    contraction_rate_tolerance: float = 0.01
    mig_margin: float = 0.02
    high_beta_min: float | None = None
    min_restarts: int = 3
    min_seeds: int = 3
    bootstrap_resamples: int = 10000
    bootstrap_seed: int = 0
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC

    @classmethod
    def from_config(cls, claims: Mapping, reconstruction: str) -> ClaimSettings:
        """From the validated ``claims`` section and ``deep.reconstruction_metric``."""
        known = {f.name for f in fields(cls)} - {"reconstruction"}
        unknown = sorted(set(claims) - known)
        if unknown:
            raise ValueError(f"unknown keys in the claims settings: {unknown}")
        return cls(**dict(claims), reconstruction=reconstruction)

    @property
    def nll(self) -> str:
        """The deep table column of the NLL."""
        return reconstruction_column(self.reconstruction)

    def bootstrap_mean(self, values: np.ndarray | Sequence[float]) -> Interval:
        return bootstrap_mean(values, self.bootstrap_resamples, self.bootstrap_seed)

    def bootstrap(self, units: np.ndarray, statistic: Callable) -> Interval:
        return bootstrap_statistic(units, statistic, self.bootstrap_resamples, self.bootstrap_seed)


# ---- rows ------------------------------------------------------------------------------------


def claim_row(
    claim_id: str,
    scope: str,
    test: str,
    verdict: str,
    interval: Interval | None = None,
    detail: str = "",
) -> dict:
    """One row of the claims table (:data:`COLUMNS`); no interval leaves effect and CI empty."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    claim = CLAIMS[claim_id]
    interval = interval or Interval(math.nan, math.nan, math.nan, 0)
    return {
        "claim_id": claim_id,
        "source": claim.source,
        "statement": claim.statement,
        "scope": scope,
        "test": test,
        "effect": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "n": interval.n,
        "verdict": verdict,
        "detail": detail,
    }


def not_run(claim_id: str, scope: str, test: str, reason: str) -> dict:
    return claim_row(claim_id, scope, test, NOT_RUN, detail=reason)


def interval_text(interval: Interval) -> str:
    return f"{interval.estimate:+.3g} [{interval.low:+.3g}, {interval.high:+.3g}]"


def setting_text(beta: float, lam: float | None = None) -> str:
    return f"β={beta:g}" if lam is None else f"β={beta:g}, λ={lam:g}"


def high_betas(betas: Iterable[float], high_beta_min: float | None) -> list[float]:
    """The high β of a grid: those ≥ ``high_beta_min``, or by default its upper half
    (the ⌈k/2⌉ largest of k values: 32-256 of the paper's 1-256, 8 and 64 of 1, 8, 64)."""
    betas = sorted({float(b) for b in betas})
    if high_beta_min is None:
        return betas[len(betas) // 2 :]
    return [b for b in betas if b >= high_beta_min]


def require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"the {name} table lacks the columns {missing}")
