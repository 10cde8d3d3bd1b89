"""A whole (β, λ) grid of one method as one batched computation, and its per-restart table."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .adamw import run_adamw
from .closed_form import sigma_y_spectrum, stationary_terms
from .coupling import (
    distances_from_trivial,
    im_from_mutual_information,
    information_rank,
    mean_mutual_information,
    mutual_information_from_correlations,
    sap_from_correlations,
    squared_correlations,
    total_mutual_information,
)
from .fixed_point import run_fixed_point
from .instance import DTYPE, Instance, make_instance, starts_seed
from .jobs import AdamWRun, ContractionJob, FixedPointSettings, StudyJob
from .objective import Params, loss, objective_terms, stationarity_residual
from .parameterization import Parameterization, ProjectedCholesky, parameterization_named
from .shards import run_adamw_in_processes
from .starts import initial_params


@dataclass
class GridEntries:
    """Every (β, λ, restart) of a grid as one batch: its table, β and λ per entry, and starts."""

    table: pd.DataFrame  # columns beta, lambda, restart; one row per entry
    beta: torch.Tensor
    lam: torch.Tensor
    init: Params


def grid_entries(
    instance: Instance,
    m: int,
    betas: Sequence[float],
    lambdas: Sequence[float],
    restarts: int,
    seed: int,
    init: str = "scaled_normal",
    method: str = "fixed_point",
) -> GridEntries:
    """The batch of a (β, λ) grid with ``restarts`` starts each (restart k starts alike for all
    grid points; ``init`` and ``method`` choose the start distribution, see ``starts``)."""
    index = pd.MultiIndex.from_product(
        [list(map(float, betas)), list(map(float, lambdas)), range(restarts)],
        names=["beta", "lambda", "restart"],
    )
    table = index.to_frame(index=False)
    restart = torch.as_tensor(table["restart"].to_numpy(copy=True))
    starts = initial_params(instance, m, restarts, seed, init=init, method=method)
    return GridEntries(
        table=table,
        beta=torch.as_tensor(table["beta"].to_numpy(copy=True), dtype=DTYPE),
        lam=torch.as_tensor(table["lambda"].to_numpy(copy=True), dtype=DTYPE),
        init=starts.select(restart),
    )


def metrics_table(
    instance: Instance, params: Params, beta: torch.Tensor, lam: torch.Tensor
) -> pd.DataFrame:
    """Per entry: the objective terms, the coupling metrics of the sampled latent X = BY + W (SAP
    and I_m of the latent × factor matrices, I(X; V): the paper's linear convention) and of the
    encoder mean BY (``sap_mean``, ``im_mean``, ``mi_total_mean``), the distances from the
    trivial solution, the stationarity residual and the number of informative directions."""
    terms = objective_terms(instance, params)
    s = squared_correlations(instance, params)
    mi = mutual_information_from_correlations(s)
    mean = mean_coupling(instance, params)
    distances = distances_from_trivial(instance, params)
    return pd.DataFrame(
        {
            "nll": terms["nll"].numpy(),
            "kl": terms["kl"].numpy(),
            "l2": terms["l2"].numpy(),
            "loss": loss(terms, beta, lam).numpy(),
            "sap": sap_from_correlations(s),
            "im": im_from_mutual_information(mi),
            "mi_total": total_mutual_information(instance, params).numpy(),
            **mean,
            "a_norm": distances["a_norm"].numpy(),
            "b_norm": distances["b_norm"].numpy(),
            "sigma_w_dist": distances["sigma_w_dist"].numpy(),
            "sigma_z_dist": distances["sigma_z_dist"].numpy(),
            "residual": stationarity_residual(instance, params, beta, lam).numpy(),
            "rank": information_rank(instance, params),
        }
    )


def mean_coupling(
    instance: Instance, params: Params, suffix: str = "_mean"
) -> dict[str, np.ndarray]:
    """SAP, I_m and I(μ; V) of the encoder mean μ = BY, as columns ``sap_mean`` … ``suffix``."""
    s = squared_correlations(instance, params, representation="mean")
    return {
        f"sap{suffix}": sap_from_correlations(s),
        f"im{suffix}": im_from_mutual_information(mutual_information_from_correlations(s)),
        f"mi_total{suffix}": mean_mutual_information(instance, params),
    }


def oracle_table(instance: Instance, m: int, beta: np.ndarray, lam: np.ndarray) -> pd.DataFrame:
    """Per entry, what the closed form predicts at its (β, λ) (``closed_form``): the number of
    surviving directions, the optimum's NLL, KL and L2 (NaN at β ≤ 1, where there is no unique
    optimum), β*(λ) = 1 + 2λμ_1 above which everything collapses, and λ_c(β) = (β − 1)/(2μ_1)
    below which everything does."""
    mu_1 = float(sigma_y_spectrum(instance)[0][0])
    pairs = {(float(b), float(v)) for b, v in zip(beta, lam, strict=True)}
    known = {
        (b, v): stationary_terms(instance, b, v, m) if b > 1 else None for b, v in sorted(pairs)
    }

    def column(key: str) -> list[float]:
        return [
            math.nan if known[(b, v)] is None else known[(b, v)][key]
            for b, v in zip(beta, lam, strict=True)
        ]

    return pd.DataFrame(
        {
            "predicted_rank": column("rank"),
            "oracle_nll": column("nll"),
            "oracle_kl": column("kl"),
            "oracle_l2": column("l2"),
            "critical_beta": 1.0 + 2.0 * lam * mu_1,
            "critical_lambda": (beta - 1.0) / (2.0 * mu_1),
        }
    )


def run_grid(
    instance: Instance,
    method: str,
    m: int,
    betas: Sequence[float],
    lambdas: Sequence[float],
    restarts: int,
    seed: int,
    solver: FixedPointSettings | AdamWRun,
    init: str = "scaled_normal",
    device: str | torch.device = "cpu",
    workers: int = 1,
) -> pd.DataFrame:
    """Every (β, λ, restart) of one method as one batched computation; one row per entry.

    ``seed`` draws the starts; ``iterations`` is what each entry ran and ``reported_iteration``
    the step count of the iterate the row describes (AdamW with ``report: best`` may report an
    earlier iterate than its last). AdamW steps run on ``device``, on the CPU split over up to
    ``workers`` processes (``shards``: the same numbers as one); the fixed-point iteration
    always runs on the CPU, and the table is computed there.
    """
    grid = grid_entries(instance, m, betas, lambdas, restarts, seed, init=init, method=method)
    beta, lam, start = grid.beta, grid.lam, grid.init
    if method == "fixed_point":
        result = run_fixed_point(
            instance,
            start.b,
            start.sigma_w,
            beta,
            lam,
            max_iter=solver.max_iter,
            tol=solver.tol,
        )
        reported_iteration = result.iterations
    elif method == "adamw":
        settings = {
            "steps": solver.steps,
            "lr": solver.lr,
            "weight_decay": solver.weight_decay,
            "grad_clip": solver.grad_clip,
            "tol": solver.tol,
            "check_every": solver.check_every,
            "parameterization": parameterization_named(solver.parameterization, solver.epsilon),
            "report": solver.report,
        }
        if torch.device(device).type == "cpu":
            result = run_adamw_in_processes(instance, start, beta, lam, workers, **settings)
        else:
            result = run_adamw(instance, start, beta, lam, device=device, **settings)
        reported_iteration = result.reported_iteration
    else:
        raise ValueError(f"unknown linear method {method!r}: expected 'fixed_point' or 'adamw'")
    oracle = oracle_table(instance, m, beta.numpy(), lam.numpy())
    table = pd.concat(
        [grid.table, metrics_table(instance, result.params, beta, lam), oracle], axis=1
    )
    table.insert(0, "method", method)
    table["iterations"] = result.iterations.numpy()
    table["reported_iteration"] = reported_iteration.numpy()
    table["converged"] = result.converged.numpy()
    # whether a minimum was reached is judged from the fixed point's trajectory alone
    fixed_point = method == "fixed_point"
    table["attained"] = result.attained.numpy() if fixed_point else pd.NA
    # Eq. 11 at λ = 0: the fixed point's B_t stays proportional to Σ_W⁽⁰⁾⁻¹B⁽⁰⁾ as it collapses,
    # so the mean's metrics are those of that matrix from its start on
    if fixed_point:
        start_b = torch.linalg.solve(start.sigma_w, start.b)
        start_mean = mean_coupling(
            instance, Params(start.a, start_b, start.sigma_z, start.sigma_w), "_mean_start"
        )
        for name, values in start_mean.items():
            table[name] = values
    for name in ("nll_per_decade", "kl_per_decade"):
        table[name] = getattr(result, name).numpy() if fixed_point else math.nan
    return table


def run_study(
    instance: Instance, job: StudyJob, device: str | torch.device = "cpu", workers: int = 1
) -> pd.DataFrame:
    """The table of one study job: ``run_grid`` with the job's settings, and its dims; AdamW
    steps run on ``device`` (on the CPU over up to ``workers`` processes)."""
    dims = job.dims
    table = run_grid(
        instance,
        job.method,
        m=dims.m,
        betas=job.betas,
        lambdas=job.lambdas,
        restarts=job.restarts,
        seed=starts_seed(job.seed, dims.n, dims.m, dims.s),
        solver=job.solver,
        init=job.init,
        device=device,
        workers=workers,
    )
    for column in ("s", "m", "n"):
        table.insert(0, column, getattr(dims, column))
    return table


def contraction_traces(
    instance: Instance,
    m: int,
    betas: Sequence[float],
    lambdas: Sequence[float],
    restarts: int,
    iterations: int,
    seed: int,
    init: str = "scaled_normal",
) -> pd.DataFrame:
    """‖B_t‖₂ along ``iterations`` fixed-point steps for each (β, λ, restart), with SAP and I_m
    of the sampled latent (``sap``, ``im``) and of the encoder mean (``sap_mean``, ``im_mean``)
    at every iteration: a long table."""
    grid = grid_entries(instance, m, betas, lambdas, restarts, seed, init=init)
    result = run_fixed_point(
        instance,
        grid.init.b,
        grid.init.sigma_w,
        grid.beta,
        grid.lam,
        max_iter=iterations,
        tol=0.0,
        trace=True,
    )
    norms = result.b_norm_trace.numpy()
    steps = np.arange(norms.shape[1])
    long = grid.table.loc[grid.table.index.repeat(len(steps))].reset_index(drop=True)
    long["iteration"] = np.tile(steps, len(grid.table))
    long["b_norm"] = norms.reshape(-1)
    b = torch.stack([b for b, _ in result.encoder_trace], dim=1)  # entries × steps × m × n
    sigma_w = torch.stack([w for _, w in result.encoder_trace], dim=1)
    at = Params(a=None, b=b, sigma_z=None, sigma_w=sigma_w)
    for representation, suffix in (("sampled", ""), ("mean", "_mean")):
        s = squared_correlations(instance, at, representation=representation)
        long[f"sap{suffix}"] = sap_from_correlations(s).reshape(-1)
        long[f"im{suffix}"] = im_from_mutual_information(
            mutual_information_from_correlations(s)
        ).reshape(-1)
    return long


def run_contraction(instance: Instance, job: ContractionJob) -> pd.DataFrame:
    """The traces of one contraction job, from the fixed point's starts, with its dims."""
    dims = job.dims
    traces = contraction_traces(
        instance,
        m=dims.m,
        betas=job.betas,
        lambdas=job.lambdas,
        restarts=job.restarts,
        iterations=job.iterations,
        seed=starts_seed(job.seed, dims.n, dims.m, dims.s),
        init=job.init,
    )
    for column in ("s", "m", "n"):
        traces.insert(0, column, getattr(dims, column))
    return traces


def adamw_step_seconds(
    n: int,
    restarts: int,
    steps: int = 5,
    parameterization: Parameterization = ProjectedCholesky(),  # noqa: B008 (immutable)
    m: int = 10,
    s: int = 5,
) -> float:
    """Seconds per AdamW step of ``restarts`` entries at dimension n (on the CPU, with the
    threads torch is set to use), after one warm-up step.

    The problem is a random instance (σ² = 0.05, factor variances in [0.1, 1]) and the entries
    the authors' starts over a β × λ grid, as in the paper's study; the settings are the
    paper's for n = 100 (lr 1e-3, weight decay 0.01, clipping (2, 3), best iterate reported).
    """
    instance = make_instance(n, m, s, 0.05, (0.1, 1.0), seed=0)
    grid = grid_entries(
        instance,
        m,
        [1.0, 4.0],
        [0.0, 2.0],
        restarts=-(-restarts // 4),
        seed=1,
        init="authors",
        method="adamw",
    )
    init = grid.init.select(slice(0, restarts))
    beta, lam = grid.beta[:restarts], grid.lam[:restarts]
    settings = {"lr": 1e-3, "weight_decay": 0.01, "grad_clip": (2.0, 3.0), "report": "best"}
    run_adamw(instance, init, beta, lam, steps=1, parameterization=parameterization, **settings)
    start = time.perf_counter()
    run_adamw(instance, init, beta, lam, steps=steps, parameterization=parameterization, **settings)
    return (time.perf_counter() - start) / steps
