"""Snakemake entry point: ‖B_t‖₂ along fixed-point iterations (Theorem 3.2's contraction)."""

import torch

from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.linear import contraction_traces, load_instance, starts_seed

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
settings = snakemake.params.config
n, m, s = (int(part[1:]) for part in snakemake.wildcards.dims.split("_"))
contraction = settings["contraction"]
traces = contraction_traces(
    load_instance(snakemake.input.instance, settings["noise_var"]),
    m=m,
    betas=contraction["betas"],
    lambdas=contraction["lambdas"],
    restarts=contraction["restarts"],
    iterations=contraction["iterations"],
    seed=starts_seed(settings["seed"], n, m, s),
)
traces.insert(0, "n", n)
with atomic_path(snakemake.output[0]) as tmp:
    traces.to_csv(tmp, index=False)
log.info("%d trace points written", len(traces))
