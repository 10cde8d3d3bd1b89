"""Snakemake entry point: every (β, λ, restart) of one linear-Gaussian method for one instance."""

import time

import torch

from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.linear import StudyJob, load_instance, run_study

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
job = StudyJob.from_science(snakemake.params.science)
instance = load_instance(snakemake.input.instance)  # σ² is stored in the instance file

start = time.perf_counter()
table = run_study(instance, job)
seconds = time.perf_counter() - start
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
log.info(
    "%s n=%d: %d runs in %.1f s, %d converged, largest stationarity residual %.2e",
    job.method,
    job.dims.n,
    len(table),
    seconds,
    table["converged"].sum(),
    table["residual"].max(),
)
