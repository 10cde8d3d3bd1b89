"""Snakemake entry point: the per-restart table of the linear study and its summary."""

import pandas as pd

from lambdabeta.aggregate import summarize_linear
from lambdabeta.io import atomic_path, log_to_file

log = log_to_file(snakemake.log[0])
table = pd.concat([pd.read_csv(path) for path in snakemake.input.studies], ignore_index=True)
table = table.sort_values(["n", "method", "beta", "lambda", "restart"], kind="stable")
with atomic_path(snakemake.output.metrics) as tmp:
    table.to_csv(tmp, index=False)
with atomic_path(snakemake.output.summary) as tmp:
    summarize_linear(table).to_csv(tmp, index=False)
log.info("%d rows from %d studies", len(table), len(snakemake.input.studies))
