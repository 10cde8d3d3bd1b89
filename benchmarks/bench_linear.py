"""Speed of the linear-Gaussian study: the paper config, and batched vs per-restart loops.

Prints, for the paper protocol (config/config.yaml: both n, 5 × 5 grid, 50 restarts, the
authors' starts and AdamW settings):
  - the wall time of the whole fixed-point study (run for real);
  - AdamW: measured seconds per step of the full batch for each formulation of the authors'
    parameterisation (``formulations``), side by side, and the projected time of all steps
    (with ``--workers N``, also the default one split over N processes, as a job with N threads);
  - on a subset, the throughput (restart-iterations per second) of our batched code against a
    straightforward per-restart Python loop doing the same iterations: the textbook formulas of
    Lemma 4.2 for the fixed point, and torch.optim.AdamW with autograd for AdamW.

    python benchmarks/bench_linear.py [--threads 1] [--adamw-steps 20] [--workers 2] [--skip-full]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from lambdabeta import linear as L
from lambdabeta.linear.shards import run_adamw_in_processes

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


def seconds_per_adamw_step(
    instance, grid, adam: dict, steps: int, workers: int = 1
) -> tuple[float, float]:
    """(wall, CPU) seconds per step of AdamW over the whole grid (in one process, or split over
    ``workers`` processes): the difference of two runs that differ only in their step count
    (``steps`` and ``steps`` + 10), so that neither the set-up nor the final evaluation of the
    best iterates counts. CPU seconds are those of this process, which other processes on the
    machine do not inflate (and which do not count the worker processes)."""
    L.run_adamw(instance, grid.init, grid.beta, grid.lam, steps=1, **adam)  # warm-up
    times = []
    for count in (steps, steps + 10):
        wall, cpu = time.perf_counter(), time.process_time()
        run_adamw_in_processes(
            instance, grid.init, grid.beta, grid.lam, workers, steps=count, **adam
        )
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return tuple((long - short) / 10 for short, long in zip(*times, strict=True))


# The formulations of the authors' parameterisation, slowest first: the gradient through C_Z⁻¹
# (the reference the others are checked against), through Σ_Z⁻¹ with torch's batched operators
# (what a GPU runs), and through Σ_Z⁻¹ with per-matrix LAPACK calls (the CPU's default).
def formulations(epsilon: float) -> dict:
    return {
        "through C_Z⁻¹ (reference)": L.ProjectedCholeskyReference(epsilon),
        "through Σ_Z⁻¹, torch batched": L.ProjectedCholesky(epsilon, lapack_on_cpu=False),
        "through Σ_Z⁻¹, per-matrix LAPACK": L.ProjectedCholesky(epsilon),
    }


def full_adamw_projection(settings: L.LinearSettings, steps: int, workers: int) -> None:
    """Per-step time of each formulation side by side, and the projected time of all steps;
    with ``workers`` > 1 also the default formulation split over that many processes (a job's
    threads), whose wall time is what a job with as many cores takes."""
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
        print(f"AdamW n={dims.n}, {len(grid.beta)} restarts, ms per step (wall / CPU):")
        chosen = adam["parameterization"]
        candidates = {"configured": chosen}
        if job.solver.parameterization == "authors":
            candidates = formulations(job.solver.epsilon)
        for name, parameterization in candidates.items():
            wall, cpu = seconds_per_adamw_step(
                instance, grid, adam | {"parameterization": parameterization}, steps
            )
            print(f"  {name:34s} {wall * 1e3:7.0f} / {cpu * 1e3:5.0f}")
        projected = cpu * job.solver.steps
        if workers > 1:
            split, _ = seconds_per_adamw_step(instance, grid, adam, steps, workers)
            print(f"  {f'the same over {workers} processes':34s} {split * 1e3:7.0f} (wall)")
            print(
                f"  projected {job.solver.steps:,} steps over {workers} processes: "
                f"{split * job.solver.steps / 3600:.2f} h (wall)"
            )
        total += projected
        print(f"  projected {job.solver.steps:,} steps: {projected / 3600:.2f} h (CPU time)")
    print(
        f"AdamW, whole paper grid (projected, one core; one job per n on 2 cores halves it): "
        f"{total / 3600:.2f} h"
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
    parser.add_argument("--adamw-steps", type=int, default=20)
    parser.add_argument("--subset-restarts", type=int, default=5)
    parser.add_argument(
        "--workers", type=int, default=1, help="also time AdamW over this many processes"
    )
    parser.add_argument("--skip-full", action="store_true", help="only the subset comparisons")
    args = parser.parse_args()
    L.use_threads(args.threads)
    settings = paper_settings()
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if not args.skip_full:
        full_fixed_point(settings)
        full_adamw_projection(settings, args.adamw_steps, args.workers)
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
