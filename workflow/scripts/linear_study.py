"""Snakemake entry point: every (β, λ, restart) of one linear-Gaussian method for one instance."""

import time

import torch

from lambdabeta.devices import select_device
from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.linear import LinearSettings, StudyJob, load_instance, run_study, use_threads
from lambdabeta.settings import job_device

log = log_to_file(snakemake.log[0])
job = StudyJob.from_science(snakemake.params.science)
# torch's and BLAS's threads: the fixed-point solver uses the job's; AdamW runs one process per
# thread, each on one core, so that its numbers are the same for any thread count
use_threads(1 if job.method == "adamw" else snakemake.threads)
instance = load_instance(snakemake.input.instance)  # σ² is stored in the instance file

# logistics: the configured device and the GPUs the scheduler granted this job; on the CPU the
# AdamW entries are split over one process per thread (the same numbers as one process)
device = torch.device("cpu")  # the fixed-point solver runs on the CPU
if job.method == "adamw":
    spec = LinearSettings.from_config(snakemake.config["linear"]).adamw.device
    granted = int(snakemake.resources.gpu)
    device = select_device(
        job_device(spec, granted),
        jobs_per_gpu=snakemake.config["resources"]["jobs_per_gpu"],
        setting="linear.adamw.device",
    )
    log.info("AdamW steps on %s (linear.adamw.device: %s, GPUs granted: %d)", device, spec, granted)

start = time.perf_counter()
table = run_study(instance, job, device=device, workers=snakemake.threads)
seconds = time.perf_counter() - start
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
log.info(
    "%s n=%d on %s: %d runs in %.1f s, %d converged, largest stationarity residual %.2e",
    job.method,
    job.dims.n,
    device,
    len(table),
    seconds,
    table["converged"].sum(),
    table["residual"].max(),
)
