"""Snakemake entry point: the cost of every job that has run (results/tables/job_costs.csv)."""

from lambdabeta.costs import collect
from lambdabeta.io import log_to_file

log = log_to_file(snakemake.log[0])
table = collect()
table.to_csv(snakemake.output[0], index=False)
log.info("%d jobs: %s", len(table), table["kind"].value_counts(sort=False).to_dict())
