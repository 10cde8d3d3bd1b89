"""Snakemake entry point: evaluate one checkpoint (metrics.json, mi_matrix.csv, reconstructions)."""

from pathlib import Path

import torch

from lambdabeta.evaluate import evaluate_checkpoint, write_evaluation
from lambdabeta.io import log_to_file
from lambdabeta.settings import EvaluationSettings, evaluation_logistics

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

# params hold what changes the results; the batch size and device come from the config
settings = EvaluationSettings.from_dict(
    {**snakemake.params.settings, **evaluation_logistics(snakemake.config["deep"])}
)
result = evaluate_checkpoint(
    snakemake.input.model,
    Path(snakemake.input.images).parent,
    snakemake.input.curve,
    settings,
    threads=snakemake.threads,
    jobs_per_gpu=snakemake.config["resources"]["jobs_per_gpu"],
)
write_evaluation(
    result,
    metrics_path=snakemake.output.metrics,
    mi_matrix_path=snakemake.output.mi_matrix,
    reconstructions_path=snakemake.output.reconstructions,
    run=snakemake.params.run,
)
