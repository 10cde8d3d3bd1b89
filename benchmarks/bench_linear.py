"""Speed of the linear-Gaussian study: the paper config, and batched vs per-restart loops.

Prints, for the paper protocol (config/config.yaml: both n, 5 × 5 grid, 50 restarts, the
authors' starts and AdamW settings):
  - the wall time of the whole fixed-point study (run for real);
  - AdamW: measured seconds per step of the full batch, beside those of the formulation through
    C_Z⁻¹ that the faster one is checked against, and the projected time of all steps;
  - on a subset, the throughput (restart-iterations per second) of our batched code against a
    straightforward per-restart Python loop doing the same iterations: the textbook formulas of
    Lemma 4.2 for the fixed point, and torch.optim.AdamW with autograd for AdamW.

    python benchmarks/bench_linear.py [--threads 1] [--adamw-steps 50] [--skip-full]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from lambdabeta import linear as L

REPO = Path(__file__).resolve().parents[1]


def paper_settings() -> L.LinearSettings:
    section = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["linear"]
    return L.LinearSettings.from_config(section)


def instances(settings: L.LinearSettings):
    """(dims, instance) of each `linear.dims` entry, as the rules make them."""
    for dims in settings.dims:
        job = settings.instance_job(dims.name)
        instance = L.make_instance(
            dims.n,
            dims.m,
            dims.s,
            job.noise_var,
            job.factor_var_range,
            seed=job.seed,
            instance_file=job.instance_file,
        )
        yield dims, instance


def full_fixed_point(settings: L.LinearSettings) -> None:
    total = 0.0
    for dims, instance in instances(settings):
        start = time.perf_counter()
        table = L.run_study(instance, settings.study_job(dims.name, "fixed_point"))
        seconds = time.perf_counter() - start
        total += seconds
        print(
            f"fixed point n={dims.n}: {len(table)} restarts in {seconds:.1f} s, "
            f"{table['iterations'].sum():,} iterations, max residual {table['residual'].max():.1e}"
        )
    print(f"fixed point, whole paper grid: {total:.1f} s")


def adamw_arguments(run: L.AdamWRun) -> dict:
    """``run_adamw``'s keyword arguments for the settings of one problem size (but the steps)."""
    return {
        "lr": run.lr,
        "weight_decay": run.weight_decay,
        "grad_clip": run.grad_clip,
        "parameterization": L.parameterization_named(run.parameterization, run.epsilon),
    }


def seconds_per_adamw_step(instance, grid, adam: dict, steps: int) -> float:
    """Seconds per step of ``run_adamw`` over the whole grid, after a two-step warm-up."""
    L.run_adamw(instance, grid.init, grid.beta, grid.lam, steps=2, **adam)
    start = time.perf_counter()
    L.run_adamw(instance, grid.init, grid.beta, grid.lam, steps=steps, **adam)
    return (time.perf_counter() - start) / steps


def full_adamw_projection(settings: L.LinearSettings, steps: int) -> None:
    """Per-step time of the formulation through C_Z⁻¹ (the reference) and of the one through
    Σ_Z⁻¹ (what the study runs) side by side, and the projected time of all steps."""
    total = 0.0
    for dims, instance in instances(settings):
        job = settings.study_job(dims.name, "adamw")
        grid = L.grid_entries(
            instance,
            dims.m,
            job.betas,
            job.lambdas,
            job.restarts,
            seed=L.starts_seed(job.seed, dims.n, dims.m, dims.s),
            init=job.init,
            method="adamw",
        )
        adam = adamw_arguments(job.solver) | {"report": job.solver.report}
        per_step = seconds_per_adamw_step(instance, grid, adam, steps)
        line = f"AdamW n={dims.n}: {len(grid.beta)} restarts, {per_step * 1e3:.0f} ms per step"
        if job.solver.parameterization == "authors":
            through_inverse_factor = L.ProjectedCholeskyReference(job.solver.epsilon)
            reference = adam | {"parameterization": through_inverse_factor}
            reference_step = seconds_per_adamw_step(instance, grid, reference, steps)
            line += (
                f" (formulation through C_Z⁻¹: {reference_step * 1e3:.0f} ms, "
                f"{reference_step / per_step:.2f}x)"
            )
        projected = per_step * job.solver.steps
        total += projected
        print(f"{line}, projected {job.solver.steps:,} steps: {projected / 60:.1f} min")
    print(
        f"AdamW, whole paper grid (projected, one core; one job per n on 2 cores halves it): "
        f"{total / 60:.1f} min"
    )


def fixed_point_speedup(instance: L.Instance, m: int, restarts: int) -> None:
    grid = L.grid_entries(instance, m, [1, 4, 16], [0, 2], restarts, seed=1)
    beta, lam, init = grid.beta, grid.lam, grid.init
    start = time.perf_counter()
    batched = L.run_fixed_point(
        instance, init.b, init.sigma_w, beta, lam, max_iter=100_000, tol=1e-6
    )
    batched_seconds = time.perf_counter() - start
    work = int(batched.iterations.sum())
    start = time.perf_counter()
    for k in range(len(beta)):  # the same number of iterations, one restart at a time
        one = slice(k, k + 1)
        L.fixed_point_reference(
            instance,
            init.b[one],
            init.sigma_w[one],
            beta[one],
            lam[one],
            iterations=int(batched.iterations[k]),
        )
    loop_seconds = time.perf_counter() - start
    print(
        f"fixed point, n={instance.n}, {len(beta)} restarts, {work:,} restart-iterations: "
        f"batched {work / batched_seconds:,.0f}/s, per-restart loop "
        f"{work / loop_seconds:,.0f}/s -> {loop_seconds / batched_seconds:.0f}x"
    )


def adamw_speedup(instance: L.Instance, m: int, restarts: int, steps: int, adam: dict) -> None:
    grid = L.grid_entries(
        instance, m, [1, 4, 16], [0, 2], restarts, seed=1, init="authors", method="adamw"
    )
    # warm-up: the first AdamW call of a process pays about a second of one-time set-up
    L.run_adamw(instance, grid.init, grid.beta, grid.lam, steps=2, **adam)
    L.adamw_reference(instance, grid.init.select(slice(0, 1)), 1.0, 0.0, steps=2, **adam)
    start = time.perf_counter()
    L.run_adamw(instance, grid.init, grid.beta, grid.lam, steps=steps, **adam)
    batched_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(len(grid.beta)):
        L.adamw_reference(
            instance,
            grid.init.select(slice(k, k + 1)),
            grid.beta[k].item(),
            grid.lam[k].item(),
            steps=steps,
            **adam,
        )
    loop_seconds = time.perf_counter() - start
    work = len(grid.beta) * steps
    print(
        f"AdamW, n={instance.n}, {len(grid.beta)} restarts × {steps} steps: batched "
        f"{work / batched_seconds:,.0f} restart-steps/s, per-restart loop "
        f"{work / loop_seconds:,.0f}/s -> {loop_seconds / batched_seconds:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--adamw-steps", type=int, default=50)
    parser.add_argument("--subset-restarts", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true", help="only the subset comparisons")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = paper_settings()
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if not args.skip_full:
        full_fixed_point(settings)
        full_adamw_projection(settings, args.adamw_steps)
    dims, instance = next(instances(settings))
    fixed_point_speedup(instance, dims.m, args.subset_restarts)
    adamw_speedup(
        instance,
        dims.m,
        args.subset_restarts,
        args.adamw_steps,
        adamw_arguments(settings.study_job(dims.name, "adamw").solver),
    )


if __name__ == "__main__":
    main()
