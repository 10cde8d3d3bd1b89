"""Speed of the linear-Gaussian study: the paper config, and batched vs per-restart loops.

Prints, for the paper protocol (config/config.yaml: both n, 5 × 5 grid, 50 restarts):
  - the wall time of the whole fixed-point study (run for real);
  - AdamW: measured seconds per step of the full batch, and the projected time of all steps;
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


def paper_settings() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())["linear"]


def instances(settings: dict):
    """(dims, instance, starting-point seed) of each `linear.dims` entry, as the rules make them."""
    for dims in settings["dims"]:
        n, m, s = dims["n"], dims["m"], dims["s"]
        instance = L.make_instance(
            n,
            m,
            s,
            settings["noise_var"],
            settings["factor_var_range"],
            seed=settings["seed"],
            instance_file=None,
        )
        yield dims, instance, L.starts_seed(settings["seed"], n, m, s)


def full_fixed_point(settings: dict) -> None:
    total = 0.0
    for dims, instance, seed in instances(settings):
        start = time.perf_counter()
        table = L.run_grid(
            instance,
            "fixed_point",
            dims["m"],
            settings["betas"],
            settings["lambdas"],
            settings["restarts"],
            seed=seed,
            fixed_point_settings=settings["fixed_point"],
            adamw_settings={},
        )
        seconds = time.perf_counter() - start
        total += seconds
        print(
            f"fixed point n={dims['n']}: {len(table)} restarts in {seconds:.1f} s, "
            f"{table['iterations'].sum():,} iterations, max residual {table['residual'].max():.1e}"
        )
    print(f"fixed point, whole paper grid: {total:.1f} s")


def adamw_settings(adam: dict) -> dict:
    keys = ("lr", "weight_decay", "grad_clip")
    return {key: adam[key] for key in keys}


def full_adamw_projection(settings: dict, steps: int) -> None:
    total = 0.0
    for dims, instance, seed in instances(settings):
        grid = L.grid_entries(
            instance,
            dims["m"],
            settings["betas"],
            settings["lambdas"],
            settings["restarts"],
            seed=seed,
        )
        adam = adamw_settings(settings["adamw"])
        L.adamw(instance, grid.init, grid.beta, grid.lam, steps=2, **adam)  # warm-up
        start = time.perf_counter()
        L.adamw(instance, grid.init, grid.beta, grid.lam, steps=steps, **adam)
        per_step = (time.perf_counter() - start) / steps
        projected = per_step * settings["adamw"]["steps"]
        total += projected
        print(
            f"AdamW n={dims['n']}: {len(grid.beta)} restarts, {per_step * 1e3:.0f} ms per step, "
            f"projected {settings['adamw']['steps']:,} steps: {projected / 60:.1f} min"
        )
    print(
        f"AdamW, whole paper grid (projected, one core; one job per n on 2 cores halves it): "
        f"{total / 60:.1f} min"
    )


def fixed_point_speedup(instance: L.Instance, m: int, restarts: int) -> None:
    grid = L.grid_entries(instance, m, [1, 4, 16], [0, 2], restarts, seed=1)
    beta, lam, init = grid.beta, grid.lam, grid.init
    start = time.perf_counter()
    batched = L.fixed_point(instance, init.b, init.sigma_w, beta, lam, max_iter=100_000, tol=1e-6)
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
    grid = L.grid_entries(instance, m, [1, 4, 16], [0, 2], restarts, seed=1)
    # warm-up: the first AdamW call of a process pays about a second of one-time set-up
    L.adamw(instance, grid.init, grid.beta, grid.lam, steps=2, **adam)
    L.adamw_reference(instance, grid.init.select(slice(0, 1)), 1.0, 0.0, steps=2, **adam)
    start = time.perf_counter()
    L.adamw(instance, grid.init, grid.beta, grid.lam, steps=steps, **adam)
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
    dims, instance, _ = next(instances(settings))
    fixed_point_speedup(instance, dims["m"], args.subset_restarts)
    adamw_speedup(
        instance,
        dims["m"],
        args.subset_restarts,
        args.adamw_steps,
        adamw_settings(settings["adamw"]),
    )


if __name__ == "__main__":
    main()
