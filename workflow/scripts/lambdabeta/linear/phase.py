"""The informational phase diagram of the linear λβ-VAE, measured with the fixed point and set
against its closed form (``closed_form``).

- ``measured_critical_betas``: for each λ and each k ≤ m, the β above which the fixed point's
  solution keeps fewer than k informative directions (``coupling.information_rank``), found by
  a scan of β − 1 over a fixed geometric grid and then bisection in log(β − 1): the solver
  decides, the formula β_k = 1 + 2λμ_k is only written beside it.
- ``rank_map``: the rank on a (λ, β) grid, the colour of the phase figure.
- ``rays``: solutions along rays λ = c(β − 1), on which the closed form is constant.

Every point is one entry of one batched ``run_fixed_point`` from the authors' starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..control import ControllerSettings
from .adaptive import controlled_fixed_point
from .closed_form import sigma_y_spectrum
from .coupling import information_rank, sap_from_correlations, squared_correlations
from .fixed_point import run_fixed_point
from .instance import DTYPE, Instance, derived_seed
from .objective import objective_terms
from .starts import initial_params


@dataclass(frozen=True)
class PhaseSolver:
    """How the phase study's fixed points run: the stopping rule, the cap, the starts' seed, the
    scan of β − 1 (``scan``: lowest, highest, points per decade) and the bisection's relative
    resolution in β."""

    tol: float
    max_iter: int
    seed: int
    init: str
    scan: tuple[float, float, int]
    resolution: float


def _solve(instance, m, beta, lam, restarts, solver: PhaseSolver):
    """``run_fixed_point`` of every (β, λ) pair, ``restarts`` starts each (entry-major)."""
    beta = np.repeat(np.asarray(beta, dtype=float), restarts)
    lam = np.repeat(np.asarray(lam, dtype=float), restarts)
    starts = initial_params(instance, m, restarts, solver.seed, init=solver.init)
    index = torch.arange(len(beta)) % restarts
    result = run_fixed_point(
        instance,
        starts.b[index],
        starts.sigma_w[index],
        torch.as_tensor(beta, dtype=DTYPE),
        torch.as_tensor(lam, dtype=DTYPE),
        max_iter=solver.max_iter,
        tol=solver.tol,
    )
    return beta, lam, result


def _ranks(instance, m, beta, lam, solver: PhaseSolver) -> np.ndarray:
    """The number of informative directions of the solution at each (β, λ), from one start."""
    _, _, result = _solve(instance, m, beta, lam, 1, solver)
    return information_rank(instance, result.params)


def scan_betas(solver: PhaseSolver) -> np.ndarray:
    """The scan's β: 1 + a geometric grid of β − 1."""
    low, high, per_decade = solver.scan
    decades = math.log10(high / low)
    return 1.0 + np.geomspace(low, high, round(decades * per_decade) + 1)


def measured_critical_betas(
    instance: Instance, m: int, lambdas: Sequence[float], solver: PhaseSolver
) -> pd.DataFrame:
    """Per λ > 0 and k = 1 … m: the predicted β_k = 1 + 2λμ_k and the measured critical β of
    the fixed point (module docstring), with their relative difference; NaN where the scan
    finds no β with rank ≥ k above which the rank falls below k."""
    mu = sigma_y_spectrum(instance)[0][:m]
    lambdas = [float(v) for v in lambdas if v > 0]
    grid = scan_betas(solver)
    ranks = _ranks(
        instance, m, np.tile(grid, len(lambdas)), np.repeat(lambdas, len(grid)), solver
    ).reshape(len(lambdas), len(grid))
    # brackets in log(β − 1): rank ≥ k at `low`, < k at `high`
    jobs = []
    for i, lam in enumerate(lambdas):
        for k in range(1, m + 1):
            below = np.flatnonzero(ranks[i] >= k)
            if below.size == 0 or below[-1] + 1 >= len(grid):
                jobs.append((lam, k, math.nan, math.nan))
                continue
            j = below[-1]
            jobs.append((lam, k, math.log(grid[j] - 1), math.log(grid[j + 1] - 1)))
    low = np.array([job[2] for job in jobs])
    high = np.array([job[3] for job in jobs])
    open_ = np.isfinite(low)
    while open_.any():
        beta_low, beta_high = 1 + np.exp(low), 1 + np.exp(high)
        open_ &= (beta_high - beta_low) / beta_low > solver.resolution
        if not open_.any():
            break
        middle = 0.5 * (low[open_] + high[open_])
        lam_open = np.array([job[0] for job in jobs])[open_]
        k_open = np.array([job[1] for job in jobs])[open_]
        kept = _ranks(instance, m, 1 + np.exp(middle), lam_open, solver) >= k_open
        low[np.flatnonzero(open_)[kept]] = middle[kept]
        high[np.flatnonzero(open_)[~kept]] = middle[~kept]
    rows = []
    for (lam, k, *_), lo, hi in zip(jobs, low, high, strict=True):
        measured = 1 + math.exp(0.5 * (lo + hi)) if math.isfinite(lo) else math.nan
        predicted = 1 + 2 * lam * mu[k - 1]
        rows.append(
            {
                "lambda": lam,
                "direction": k,
                "mu": mu[k - 1],
                "predicted_beta": predicted,
                "measured_beta": measured,
                "relative_difference": (measured - predicted) / predicted,
            }
        )
    return pd.DataFrame(rows)


def rank_map(
    instance: Instance,
    m: int,
    lambdas: Sequence[float],
    betas: Sequence[float],
    solver: PhaseSolver,
) -> pd.DataFrame:
    """The fixed point's rank at every (λ, β) of a grid (one start each)."""
    lam, beta = (grid.ravel() for grid in np.meshgrid(lambdas, betas, indexing="ij"))
    return pd.DataFrame(
        {"lambda": lam, "beta": beta, "rank": _ranks(instance, m, beta, lam, solver)}
    )


def rays(
    instance: Instance,
    m: int,
    knobs: Sequence[float],
    betas: Sequence[float],
    restarts: int,
    solver: PhaseSolver,
) -> pd.DataFrame:
    """Solutions at λ = c(β − 1) for every c of ``knobs`` and β of ``betas`` (> 1): per
    (c, β, restart) the NLL, KL, L2, rank, SAP and whether the solution converged."""
    c, beta = (grid.ravel() for grid in np.meshgrid(knobs, betas, indexing="ij"))
    if (beta <= 1).any():
        raise ValueError("the rays need β > 1 (at β = 1 no λ lies on a ray)")
    beta_entries, lam_entries, result = _solve(instance, m, beta, c * (beta - 1), restarts, solver)
    terms = objective_terms(instance, result.params)
    return pd.DataFrame(
        {
            "c": np.repeat(c, restarts),
            "beta": beta_entries,
            "lambda": lam_entries,
            "restart": np.tile(np.arange(restarts), len(beta)),
            "nll": terms["nll"].numpy(),
            "kl": terms["kl"].numpy(),
            "l2": terms["l2"].numpy(),
            "rank": information_rank(instance, result.params),
            "sap": sap_from_correlations(squared_correlations(instance, result.params)),
            "converged": result.converged.numpy(),
        }
    )


def adaptive_law(information: float, iterations: int) -> ControllerSettings:
    """The controller of the linear check: the deep runs' law without the averaging (the KL of
    an iterate is exact), its set point ramped over the first tenth of the iterations."""
    return ControllerSettings(
        target=information, proportional=0.5, integral=0.05, lambda_min=1e-3, lambda_max=1e4,
        initial_lambda=1.0, ramp_steps=iterations // 10, averaging=0.0,
    )  # fmt: skip


def run_phase(instance: Instance, job) -> dict[str, pd.DataFrame]:
    """The tables of one phase job (``PhaseJob``): ``critical`` (``measured_critical_betas`` for
    ``job.lambdas``), ``map`` (``rank_map`` on a geometric grid of ``job.map_points`` λ and β
    around them), ``rays`` (``rays``) and ``adaptive`` (``controlled_fixed_point``), each with
    the instance's n, m and s."""
    dims = job.dims
    solver = PhaseSolver(
        tol=job.tol,
        max_iter=job.max_iter,
        seed=derived_seed(job.seed, dims.n, dims.m, dims.s, 2),
        init=job.init,
        scan=job.scan,
        resolution=job.resolution,
    )
    mu = sigma_y_spectrum(instance)[0][: dims.m]
    low_lambda, high_lambda = min(job.lambdas) / 3, max(job.lambdas) * 3
    map_lambdas = np.geomspace(low_lambda, high_lambda, job.map_points)
    map_betas = 1 + np.geomspace(
        2 * low_lambda * mu[-1] / 3, 2 * high_lambda * mu[0] * 3, job.map_points
    )
    tables = {
        "critical": measured_critical_betas(instance, dims.m, job.lambdas, solver),
        "map": rank_map(instance, dims.m, map_lambdas, map_betas, solver),
        "rays": rays(instance, dims.m, job.rays, job.ray_betas, job.ray_restarts, solver),
        "adaptive": controlled_fixed_point(
            instance,
            dims.m,
            job.adaptive_betas,
            adaptive_law(job.adaptive_information, job.adaptive_iterations),
            job.adaptive_iterations,
            solver.seed,
            init=job.init,
        ),
    }
    for table in tables.values():
        for column in ("s", "m", "n"):
            table.insert(0, column, getattr(dims, column))
    return tables
