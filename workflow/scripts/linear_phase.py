"""Snakemake entry point: the phase study of one instance (critical β, rank map, rays)."""

import time

from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.linear import PhaseJob, load_instance, run_phase, use_threads

log = log_to_file(snakemake.log[0])
use_threads(snakemake.threads)
job = PhaseJob.from_science(snakemake.params.science)
start = time.perf_counter()
tables = run_phase(load_instance(snakemake.input.instance), job)
for name, table in tables.items():
    with atomic_path(snakemake.output[name]) as tmp:
        table.to_csv(tmp, index=False)
critical = tables["critical"]
log.info(
    "phase study n=%d in %.1f s: largest |measured − predicted| / predicted critical β %.2e",
    job.dims.n,
    time.perf_counter() - start,
    critical["relative_difference"].abs().max(),
)
