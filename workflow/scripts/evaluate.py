"""Snakemake entry point: evaluate one checkpoint (metrics.json, mi_matrix.csv, reconstructions)."""

from pathlib import Path

import torch

from lambdabeta.evaluate import evaluate_checkpoint, evaluation_kwargs, write_evaluation
from lambdabeta.io import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

result = evaluate_checkpoint(
    snakemake.input.model,
    Path(snakemake.input.images).parent,
    snakemake.input.curve,
    threads=snakemake.threads,
    jobs_per_gpu=snakemake.params.jobs_per_gpu,
    **evaluation_kwargs(snakemake.params.settings),
)
write_evaluation(
    result,
    metrics_path=snakemake.output.metrics,
    mi_matrix_path=snakemake.output.mi_matrix,
    reconstructions_path=snakemake.output.reconstructions,
    run=snakemake.params.run,
)
