"""Speed of the linear-Gaussian study: the paper config, and batched vs per-restart loops.

Prints, for the paper protocol (config/config.yaml: both n, 5 × 5 grid, 50 restarts):
  - the wall time of the whole fixed-point study (run for real);
  - AdamW: measured seconds per step of the full batch, and the projected time of all steps;
  - on a subset, the throughput (restart-iterations per second) of our batched code against a
    straightforward per-restart Python loop doing the same iterations: the textbook formulas of
    Lemma 4.2 for the fixed point, and torch.optim.AdamW with autograd for AdamW.

    python benchmarks/bench_linear.py [--threads 1] [--adamw-steps 20] [--skip-full]
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


def grid_tensors(betas, lambdas, restarts):
    frame = L._grid(betas, lambdas, restarts)
    return tuple(
        torch.as_tensor(frame[c].to_numpy(copy=True)) for c in ("beta", "lambda", "restart")
    )


def full_fixed_point(settings: dict) -> None:
    total = 0.0
    for dims in settings["dims"]:
        instance = L.make_instance(
            **dims,
            noise_var=settings["noise_var"],
            factor_var_range=settings["factor_var_range"],
            seed=0,
        )
        start = time.perf_counter()
        table = L.run_grid(
            instance,
            "fixed_point",
            dims["m"],
            settings["betas"],
            settings["lambdas"],
            settings["restarts"],
            seed=1,
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


def full_adamw_projection(settings: dict, steps: int) -> None:
    total = 0.0
    for dims in settings["dims"]:
        instance = L.make_instance(
            **dims,
            noise_var=settings["noise_var"],
            factor_var_range=settings["factor_var_range"],
            seed=0,
        )
        beta, lam, restart = grid_tensors(
            settings["betas"], settings["lambdas"], settings["restarts"]
        )
        init = L.initial_params(instance, dims["m"], settings["restarts"], seed=1).select(restart)
        adam = settings["adamw"]
        L.adamw(
            instance,
            init,
            beta,
            lam,
            steps=2,
            lr=adam["lr"],
            weight_decay=adam["weight_decay"],
            grad_clip=adam["grad_clip"],
        )  # warm-up
        start = time.perf_counter()
        L.adamw(
            instance,
            init,
            beta,
            lam,
            steps=steps,
            lr=adam["lr"],
            weight_decay=adam["weight_decay"],
            grad_clip=adam["grad_clip"],
        )
        per_step = (time.perf_counter() - start) / steps
        projected = per_step * adam["steps"]
        total += projected
        print(
            f"AdamW n={dims['n']}: {len(beta)} restarts, {per_step * 1e3:.0f} ms per step, "
            f"projected {adam['steps']:,} steps: {projected / 60:.1f} min"
        )
    print(
        f"AdamW, whole paper grid (projected, one core per n run in parallel halves it): "
        f"{total / 60:.1f} min"
    )


def fixed_point_speedup(instance: L.Instance, m: int, restarts: int) -> None:
    beta, lam, restart = grid_tensors([1, 4, 16], [0, 2], restarts)
    init = L.initial_params(instance, m, restarts, seed=1).select(restart)
    start = time.perf_counter()
    batched = L.fixed_point(instance, init.b, init.sigma_w, beta, lam, max_iter=100_000, tol=1e-5)
    batched_seconds = time.perf_counter() - start
    work = int(batched.iterations.sum())
    start = time.perf_counter()
    for k in range(len(beta)):  # the same number of iterations, one restart at a time
        b, sigma_w = init.b[k : k + 1], init.sigma_w[k : k + 1]
        for _ in range(int(batched.iterations[k])):
            a, sigma_z = L.decoder_optimum(instance, b, sigma_w)
            b, sigma_w = L.encoder_optimum(a, sigma_z, beta[k : k + 1], lam[k : k + 1])
    loop_seconds = time.perf_counter() - start
    print(
        f"fixed point, n={instance.n}, {len(beta)} restarts, {work:,} restart-iterations: "
        f"batched {work / batched_seconds:,.0f}/s, per-restart loop {work / loop_seconds:,.0f}/s "
        f"-> {loop_seconds / batched_seconds:.0f}x"
    )


def adamw_speedup(instance: L.Instance, m: int, restarts: int, steps: int) -> None:
    beta, lam, restart = grid_tensors([1, 4, 16], [0, 2], restarts)
    init = L.initial_params(instance, m, restarts, seed=1).select(restart)
    start = time.perf_counter()
    L.adamw(instance, init, beta, lam, steps=steps, lr=1e-3, weight_decay=0.01, grad_clip=1.0)
    batched_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(len(beta)):
        leaves = [
            init.a[k : k + 1].clone(),
            init.b[k : k + 1].clone(),
            L._raw_from_cholesky(torch.linalg.cholesky(init.sigma_z[k : k + 1])),
            L._raw_from_cholesky(torch.linalg.cholesky(init.sigma_w[k : k + 1])),
        ]
        leaves = [t.requires_grad_() for t in leaves]
        optimizer = torch.optim.AdamW(leaves, lr=1e-3, weight_decay=0.01)
        for _ in range(steps):
            l_z, l_w = L._cholesky_from_raw(leaves[2]), L._cholesky_from_raw(leaves[3])
            params = L.Params(leaves[0], leaves[1], l_z @ l_z.mT, l_w @ l_w.mT)
            terms = L.objective_terms(instance, params)
            optimizer.zero_grad()
            L.loss(terms, beta[k : k + 1], lam[k : k + 1]).sum().backward()
            torch.nn.utils.clip_grad_norm_(leaves, 1.0)
            optimizer.step()
    loop_seconds = time.perf_counter() - start
    work = len(beta) * steps
    print(
        f"AdamW, n={instance.n}, {len(beta)} restarts × {steps} steps: "
        f"batched {work / batched_seconds:,.0f} restart-steps/s, per-restart loop "
        f"{work / loop_seconds:,.0f}/s -> {loop_seconds / batched_seconds:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--adamw-steps", type=int, default=20)
    parser.add_argument("--subset-restarts", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true", help="only the subset comparisons")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = paper_settings()
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if not args.skip_full:
        full_fixed_point(settings)
        full_adamw_projection(settings, args.adamw_steps)
    dims = settings["dims"][0]
    instance = L.make_instance(
        **dims,
        noise_var=settings["noise_var"],
        factor_var_range=settings["factor_var_range"],
        seed=0,
    )
    fixed_point_speedup(instance, dims["m"], args.subset_restarts)
    adamw_speedup(instance, dims["m"], args.subset_restarts, args.adamw_steps)


if __name__ == "__main__":
    main()
