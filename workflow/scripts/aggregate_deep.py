"""Snakemake entry point: tidy tables of every evaluated deep model, and their summaries."""

from lambdabeta.aggregate import (
    changes_vs_baseline,
    collect_metrics,
    metric_columns,
    summarize,
    summary_latex,
    summary_markdown,
)
from lambdabeta.io import atomic_path, log_to_file

logger = log_to_file(snakemake.log[0])

metrics = collect_metrics(snakemake.input.metrics)
summary = changes_vs_baseline(summarize(metrics, metric_columns(metrics)))
logger.info("%d models in %d (dataset, phase, β, λ) groups", len(metrics), len(summary))

with atomic_path(snakemake.output.metrics) as tmp:
    metrics.to_csv(tmp, index=False)
with atomic_path(snakemake.output.summary) as tmp:
    summary.to_csv(tmp, index=False)
with atomic_path(snakemake.output.markdown) as tmp:
    tmp.write_text(summary_markdown(summary))
with atomic_path(snakemake.output.latex) as tmp:
    tmp.write_text(summary_latex(summary))
