"""Snakemake entry point: the phase studies of every instance as two tables."""

import pandas as pd

from lambdabeta.io import atomic_path, log_to_file

log = log_to_file(snakemake.log[0])
for name in ("critical", "rays", "adaptive"):
    table = pd.concat([pd.read_csv(path) for path in snakemake.input[name]], ignore_index=True)
    with atomic_path(snakemake.output[name]) as tmp:
        table.to_csv(tmp, index=False)
    log.info("%s: %d rows", snakemake.output[name], len(table))
