"""Claims of the linear-Gaussian study (Theorem 3.2, Lemma 4.2, Figs 2-3): judged per restart."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from ..binomial import clopper_pearson
from ..statistics import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Interval
from .registry import LINEAR_VIEWS, claim, not_run, row
from .settings import ClaimSettings

LINEAR_INFORMATION = ("sap", "im", "mi_total")
TRIVIAL_DISTANCES = ("a_norm", "b_norm", "sigma_w_dist", "sigma_z_dist")


def linear_scopes(
    table: pd.DataFrame, method: str | None = None
) -> Iterable[tuple[str, pd.DataFrame]]:
    """(scope, rows) per instance and method: scope ``n30_m6_s3 fixed_point``."""
    keys = ["n", "m", "s", "method"]
    if method is not None:
        table = table.assign(method=method)
    for (n, m, s, name), block in table.groupby(keys, sort=True):
        yield f"n{n}_m{m}_s{s} {name}", block


def restart_fraction(passed: pd.Series, settings: ClaimSettings) -> tuple[Interval, str]:
    """Exact interval of the fraction of restarts that pass, and the every-restart verdict."""
    interval = clopper_pearson(int(passed.sum()), len(passed))
    if interval.n < settings.min_restarts:
        return interval, INCONCLUSIVE
    return interval, REPRODUCED if passed.all() else NOT_REPRODUCED


def unconverged(
    at: pd.DataFrame, failing: pd.Series, verdict: str, settings: ClaimSettings
) -> tuple[str, str]:
    """(verdict, text): a ``not reproduced`` whose failing rows are all off a stationary point
    (``residual`` above ``claims.convergence_tolerance``) becomes ``inconclusive``, with the
    text saying so; anything else is left as it is (text "")."""
    if verdict != NOT_REPRODUCED or "residual" not in at or not failing.any():
        return verdict, ""
    residual = at.loc[failing, "residual"]
    tol = settings.convergence_tolerance
    if (residual > tol).all():
        restarts = at.loc[failing, "restart"].nunique()
        return INCONCLUSIVE, (
            f"; inconclusive: the {restarts} restarts that fail it had not reached a stationary "
            f"point (Lemma 4.2's residual {residual.min():.2g}–{residual.max():.2g}, above "
            f"claims.convergence_tolerance = {tol:g}): the solver's budget stopped them first"
        )
    return verdict, ""


def judge_restarts(
    table: pd.DataFrame,
    test: str,
    settings: ClaimSettings,
    *,
    select: Callable[[pd.DataFrame], pd.DataFrame],
    passes: Callable[[pd.DataFrame], pd.Series],
    describe: Callable[[pd.DataFrame], str],
    missing: str,
    converged: bool = False,
) -> list[dict]:
    """One row per scope of :func:`linear_scopes`: over the rows ``select(block)`` keeps, the
    fraction of restarts for which ``passes(rows)`` holds on every row (exact interval, see
    :func:`restart_fraction`), ``describe(rows)`` its detail; not run, for the reason
    ``missing``, where ``select`` keeps nothing. With ``converged``, the claim is about
    stationary points: failures off one make it inconclusive (:func:`unconverged`)."""
    rows = []
    for scope, block in linear_scopes(table):
        at = select(block)
        if at.empty:
            rows.append(not_run(scope, test, missing))
            continue
        passed = passes(at)
        interval, verdict = restart_fraction(passed.groupby(at["restart"]).all(), settings)
        why = ""
        if converged:
            verdict, why = unconverged(at, ~passed, verdict, settings)
        rows.append(row(scope, test, verdict, interval, describe(at) + why))
    return rows


def collapse_rows(block: pd.DataFrame) -> pd.DataFrame:
    """The rows of Theorem 3.2's regime: λ = 0, β > 1."""
    return block[(block["lambda"] == 0) & (block["beta"] > 1)]


@claim(
    "linear.collapse",
    "§3.3 Theorem 3.2, §5.1 Fig 2",
    "For λ = 0 and every β > 1 every restart collapses: SAP, I_m and I(X; V) vanish.",
    tables=("linear",),
    views=LINEAR_VIEWS,
)
def linear_collapse(table: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    tol = settings.collapse_tolerance
    test = (
        f"fraction of restarts whose SAP, I_m and I(X; V) (nats) all stay below {tol:g} at "
        "every β > 1 (λ = 0); exact 95 % interval; reproduced only if every restart collapses"
    )

    def describe(at: pd.DataFrame) -> str:
        largest = at[list(LINEAR_INFORMATION)].max()
        return (
            f"β = {', '.join(f'{b:g}' for b in sorted(at['beta'].unique()))}: largest SAP "
            f"{largest['sap']:.2g}, I_m {largest['im']:.2g}, I(X; V) {largest['mi_total']:.2g}"
        )

    return judge_restarts(
        table,
        test,
        settings,
        select=collapse_rows,
        passes=lambda at: at[list(LINEAR_INFORMATION)].max(axis=1) < tol,
        describe=describe,
        missing="no β > 1 at λ = 0 in the grid",
    )


@claim(
    "linear.no_collapse_at_beta_1",
    "§5.1 Fig 2",
    "At β = 1, λ = 0 the restarts keep information about the factors.",
    tables=("linear",),
    views=LINEAR_VIEWS,
)
def linear_no_collapse_at_beta_1(table: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    tol = settings.collapse_tolerance
    test = (
        f"fraction of restarts whose I_m and I(X; V) both exceed {tol:g} nats at β = 1, λ = 0; "
        "exact 95 % interval; reproduced only if every restart keeps information"
    )
    return judge_restarts(
        table,
        test,
        settings,
        select=lambda block: block[(block["lambda"] == 0) & (block["beta"] == 1)],
        passes=lambda at: at[["im", "mi_total"]].min(axis=1) > tol,
        describe=lambda at: (
            f"smallest I_m {at['im'].min():.3g}, I(X; V) {at['mi_total'].min():.3g} nats; "
            f"mean SAP {at['sap'].mean():.3g}"
        ),
        missing="no β = 1, λ = 0 in the grid",
    )


@claim(
    "linear.trivial_solution",
    "§3.3 Theorem 3.2",
    "The collapsed solutions are the trivial solution A = 0, B = 0, Σ_W = I, Σ_Z = Σ_Y.",
    tables=("linear",),
)
def linear_trivial_solution(table: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    tol = settings.trivial_tolerance
    test = (
        "fraction of restarts whose collapsed solutions (λ = 0, β > 1) all lie within "
        f"{tol:g} of the trivial one in ‖A‖_F, ‖B‖₂, ‖Σ_W − I‖_F/√m and ‖Σ_Z − Σ_Y‖_F/‖Σ_Y‖_F; "
        "exact 95 % interval; reproduced only if every one does"
    )
    rows = []
    for scope, block in linear_scopes(table):
        at = collapse_rows(block)
        if at.empty:
            rows.append(not_run(scope, test, "no β > 1 at λ = 0 in the grid"))
            continue
        collapsed = at[at[list(LINEAR_INFORMATION)].max(axis=1) < settings.collapse_tolerance]
        if collapsed.empty:
            rows.append(
                row(
                    scope,
                    test,
                    INCONCLUSIVE,
                    detail="no restart collapsed, so there is no collapsed solution to inspect",
                )
            )
            continue
        distance = collapsed[list(TRIVIAL_DISTANCES)].max(axis=1)
        trivial = (distance < tol).groupby(collapsed["restart"]).all()
        interval, verdict = restart_fraction(trivial, settings)
        largest = collapsed[list(TRIVIAL_DISTANCES)].max()
        detail = (
            f"largest over {len(collapsed)} collapsed solutions: ‖A‖_F {largest['a_norm']:.2g}, "
            f"‖B‖₂ {largest['b_norm']:.2g}, ‖Σ_W − I‖_F/√m {largest['sigma_w_dist']:.2g}, "
            f"‖Σ_Z − Σ_Y‖_F/‖Σ_Y‖_F {largest['sigma_z_dist']:.2g}"
        )
        rows.append(row(scope, test, verdict, interval, detail))
    return rows


def late_contraction_factor(b_norms: np.ndarray, beta: float) -> float:
    """ρ̂·β, the measured per-iteration factor of ‖B_t‖₂ over the second half of a trace times β.

    ρ̂ = exp(slope of the least-squares line through (t, log ‖B_t‖₂)), over t ≥ T/2 where
    ‖B_t‖₂ > 0. Theorem 3.2 gives B_(t+1) = β⁻¹ Σ_W^(t+1) (Σ_W^(t))⁻¹ B_t with Σ_W → I, so the
    factor tends to exactly 1/β: ρ̂·β ≤ 1 means "at least as fast as β⁻ᵗ". A gain that reached
    exactly zero contracted faster than any rate (0); fewer than two positive points: NaN.
    """
    b_norms = np.asarray(b_norms, dtype=float)
    late = np.arange(len(b_norms)) >= (len(b_norms) - 1) / 2
    positive = late & (b_norms > 0)
    if positive.sum() < 2:
        return 0.0 if (b_norms[late] == 0).any() else math.nan
    t = np.flatnonzero(positive).astype(float)
    slope = np.polyfit(t, np.log(b_norms[positive]), 1)[0]
    return float(np.exp(slope) * beta)


@claim(
    "linear.contraction_rate",
    "§3.3 Theorem 3.2, Appendix A",
    "Under fixed-point iteration at λ = 0, ‖B_t‖₂ shrinks at least as fast as β⁻ᵗ.",
    tables=("traces",),
)
def linear_contraction_rate(traces: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    tol = settings.contraction_rate_tolerance
    test = (
        "fraction of restarts whose ‖B_t‖₂ shrinks, over the second half of the traced "
        f"fixed-point iterations, by a factor ρ̂ ≤ (1 + {tol:g})/β per iteration at every β > 1 "
        "(λ = 0); exact 95 % interval; reproduced only if every restart does"
    )
    rows = []
    for scope, block in linear_scopes(traces, method="fixed_point"):
        at = block[(block["lambda"] == 0) & (block["beta"] > 1)]
        if at.empty:
            rows.append(not_run(scope, test, "no β > 1 at λ = 0 in the traces"))
            continue
        factors = {
            (beta, restart): late_contraction_factor(trace.sort_values("iteration")["b_norm"], beta)
            for (beta, restart), trace in at.groupby(["beta", "restart"])
        }
        factor = pd.Series(factors)
        passed = (factor <= 1 + tol).groupby(level=1).all()
        interval, verdict = restart_fraction(passed, settings)
        if factor.isna().any():
            verdict = INCONCLUSIVE  # a trace too short to measure a rate
        worst = factor.groupby(level=0).max()
        detail = "largest ρ̂·β: " + ", ".join(f"β={b:g}: {v:.4f}" for b, v in worst.items())
        rows.append(row(scope, test, verdict, interval, detail))
    return rows


@claim(
    "linear.lambda_prevents_collapse",
    "§4.2 Lemma 4.2, §5.1 Fig 3",
    "Every λ > 0 keeps SAP and I_m above zero at the largest β, for every restart.",
    tables=("linear",),
    views=LINEAR_VIEWS,
)
def linear_lambda_prevents_collapse(table: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    tol = settings.collapse_tolerance
    test = (
        f"fraction of restarts whose SAP and I_m both exceed {tol:g} for every λ > 0 at the "
        "largest β; exact 95 % interval; reproduced only if every restart does"
    )
    rows = []
    for scope, block in linear_scopes(table):
        largest = block["beta"].max()
        at = block[(block["beta"] == largest) & (block["lambda"] > 0)]
        if largest <= 1 or at.empty:
            reason = "no λ > 0 in the grid" if largest > 1 else "no β > 1 in the grid"
            rows.append(not_run(scope, test, reason))
            continue
        kept = (at[["sap", "im"]].min(axis=1) > tol).groupby(at["restart"]).all()
        interval, verdict = restart_fraction(kept, settings)
        smallest = at.groupby("lambda")[["sap", "im"]].min()
        detail = f"β={largest:g}, smallest SAP / I_m: " + ", ".join(
            f"λ={lam:g}: {row['sap']:.3g} / {row['im']:.3g}" for lam, row in smallest.iterrows()
        )
        if "critical_lambda" in at:
            # the closed form: below λ_c(β) = (β − 1)/(2μ_1) every λ collapses at this β
            critical = float(at["critical_lambda"].iloc[0])
            side = "above" if at["lambda"].min() > critical else "not all above"
            detail += (
                f"; λ_c(β={largest:g}) = {critical:.3g} of this instance, the grid's λ > 0 "
                f"{side} it"
            )
        rows.append(row(scope, test, verdict, interval, detail))
    return rows
