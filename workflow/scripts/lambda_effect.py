"""Snakemake entry point: the paired-by-seed effect of λ against λ = 0 (lambda_effect.csv, .md)."""

import pandas as pd

from lambdabeta.effects import effect_metrics, lambda_effects, lambda_effects_markdown
from lambdabeta.io import atomic_path, log_to_file

log = log_to_file(snakemake.log[0])
metrics = pd.read_csv(snakemake.input.metrics)
columns = effect_metrics(metrics)
effects = lambda_effects(metrics, level=float(snakemake.params.level), columns=columns)
with atomic_path(snakemake.output.table) as tmp:
    effects.to_csv(tmp, index=False)
with atomic_path(snakemake.output.markdown) as tmp:
    tmp.write_text(lambda_effects_markdown(effects, columns), encoding="utf-8")
log.info("%d (dataset, β, λ > 0) settings compared with λ = 0", len(effects))
