"""Snakemake entry point: ‖B_t‖₂ along fixed-point iterations (Theorem 3.2's contraction)."""

import torch

from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.linear import ContractionJob, load_instance, run_contraction

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
job = ContractionJob.from_science(snakemake.params.science)
traces = run_contraction(load_instance(snakemake.input.instance), job)
with atomic_path(snakemake.output[0]) as tmp:
    traces.to_csv(tmp, index=False)
log.info("%d trace points written", len(traces))
