"""Snakemake entry point: every (β, λ, restart) of one linear-Gaussian method for one instance."""

import time

import torch

from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.linear import load_instance, run_grid, starts_seed

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
settings = snakemake.params.config
n, m, s = (int(part[1:]) for part in snakemake.wildcards.dims.split("_"))
method = snakemake.wildcards.method
instance = load_instance(snakemake.input.instance, settings["noise_var"])

start = time.perf_counter()
table = run_grid(
    instance,
    method,
    m=m,
    betas=settings["betas"],
    lambdas=settings["lambdas"],
    restarts=settings["restarts"],
    seed=starts_seed(settings["seed"], n, m, s),
    fixed_point_settings=settings["fixed_point"],
    adamw_settings=settings["adamw"],
)
seconds = time.perf_counter() - start
table.insert(0, "s", s)
table.insert(0, "m", m)
table.insert(0, "n", n)
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
log.info(
    "%s n=%d: %d runs in %.1f s, %d converged, largest stationarity residual %.2e",
    method,
    n,
    len(table),
    seconds,
    table["converged"].sum(),
    table["residual"].max(),
)
