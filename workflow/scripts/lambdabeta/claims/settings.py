"""The claims' settings: the ``claims`` config section (thresholds, the level and procedure of
the tests) and what the tests need to know of the rest of the config, with the tests themselves
bound to them (``ClaimSettings.test``, ``all_of``, ``any_of``, ``verdict``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from ..selection import PAPER_RECONSTRUCTION_METRIC, reconstruction_column
from ..statistics import (
    ABOVE,
    LEVEL,
    ONE_SAMPLE_GUARD,
    PAIRED_TESTS,
    Evidence,
    all_of,
    any_of,
    guarded,
    jackknife_t_test,
    paired_test,
    verdict,
)


@dataclass(frozen=True)
class ClaimSettings:
    """Thresholds and tests of the claims (the ``claims`` config section), and what the tests
    need to know of the rest of the config: ``reconstruction`` (the
    ``deep.reconstruction_metric`` whose column is the deep NLL), ``rho`` (``selection.rho``),
    ``mpi3d_dataset`` (the trained dataset read from MPI3D-real's file, if any),
    ``figure_seed`` (``figures.seed``) and ``representation``."""

    collapse_tolerance: float = 0.01
    trivial_tolerance: float = 0.1
    closed_form_tolerance: float = 1e-5
    closed_form_tolerance_adamw: float = 0.05
    convergence_tolerance: float = 1e-3
    phase_tolerance: float = 1e-3
    ray_tolerance: float = 1e-6
    adaptive_margin: float = 0.1
    adaptive_score_margin: float = 0.05
    adaptive_linear_tolerance: float = 0.01
    contraction_rate_tolerance: float = 0.01
    high_beta_min: float | None = None
    min_restarts: int = 3
    min_seeds: int = 3
    level: float = LEVEL
    paired_test: str = "t"
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC
    rho: float = 1e-3
    mpi3d_dataset: str | None = None
    figure_seed: int | None = None
    representation: str = "mean"

    CONTEXT = ("reconstruction", "rho", "mpi3d_dataset", "figure_seed", "representation")
    """The fields that do not come from the ``claims`` config section (``representation``: the
    one a claim judged per representation is judging)."""

    def __post_init__(self) -> None:
        if self.paired_test not in PAIRED_TESTS:
            raise ValueError(
                f"claims.paired_test must be one of {PAIRED_TESTS}, got {self.paired_test!r}"
            )
        if not 0.0 < self.level < 0.5:
            raise ValueError(f"claims.level must lie in (0, 0.5), got {self.level}")

    @classmethod
    def from_config(cls, claims: Mapping, reconstruction: str, **context) -> ClaimSettings:
        """From the validated ``claims`` section, ``deep.reconstruction_metric`` and the other
        ``CONTEXT`` values."""
        known = {f.name for f in fields(cls)} - set(cls.CONTEXT)
        unknown = sorted(set(claims) - known)
        if unknown:
            raise ValueError(f"unknown keys in the claims settings: {unknown}")
        return cls(**dict(claims), reconstruction=reconstruction, **context)

    @property
    def nll(self) -> str:
        """The deep table column of the NLL."""
        return reconstruction_column(self.reconstruction)

    # ---- the tests, at this run's level and with its procedure for means of seed values

    def test(
        self,
        values: np.ndarray | Sequence[float],
        threshold: float = 0.0,
        side: str = ABOVE,
        paired: bool = True,
    ) -> Evidence:
        """The mean of seed-level ``values`` (seed-paired differences, unless not ``paired``)
        on ``side`` of ``threshold`` (``claims.paired_test``: Student t or the exact sign-flip
        test); raw values against a fixed bound are tested at a quarter of the level
        (:func:`lambdabeta.statistics.guarded`)."""
        evidence = paired_test(self.paired_test)(values, threshold, side, self.level)
        return evidence if paired else guarded(evidence)

    def jackknife(
        self, units: np.ndarray, statistic: Callable, threshold: float = 0.0, side: str = ABOVE
    ) -> Evidence:
        """A smooth statistic of seed means on ``side`` of ``threshold`` (jackknife t)."""
        return jackknife_t_test(units, statistic, threshold, side, self.level)

    def all_of(self, parts: Sequence[Evidence]) -> Evidence:
        return all_of(parts, self.level)

    def any_of(self, parts: Sequence[Evidence]) -> Evidence:
        return any_of(parts, self.level)

    def verdict(self, evidence: Evidence) -> str:
        return verdict(evidence, self.level, self.min_seeds)

    @property
    def mean_test_text(self) -> str:
        """How a mean of seed-paired differences is tested, for the ``test`` column."""
        if self.paired_test == "t":
            return f"Student t over seeds, one-sided {self.level:.3g}"
        return f"exact sign-flip test over seeds, one-sided {self.level:.3g}"

    @property
    def one_sample_text(self) -> str:
        """How seed values are compared with a fixed bound, for the ``test`` column."""
        return self.mean_test_text.replace(
            f"one-sided {self.level:.3g}",
            f"one-sided {self.level / ONE_SAMPLE_GUARD:.3g} "
            f"(a quarter of the level: no pairing protects it from skew)",
        )
