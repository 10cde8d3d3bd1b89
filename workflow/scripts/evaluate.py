"""Snakemake entry point: evaluate one checkpoint (metrics.json, mi_matrix.csv, reconstructions)."""

from pathlib import Path

import torch

from lambdabeta.evaluate import evaluate_checkpoint
from lambdabeta.evaluation.results import write_evaluation
from lambdabeta.io import log_to_file
from lambdabeta.settings import DeepSettings

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

# params hold what changes the results; the batch size and device come from the config and
# the scheduler's allocation
settings = DeepSettings.from_config(snakemake.config["deep"]).evaluation_settings(
    snakemake.params.settings, granted_gpus=snakemake.resources.gpu
)
result = evaluate_checkpoint(
    snakemake.input.model,
    Path(snakemake.input.images).parent,
    snakemake.input.curve,
    settings,
    threads=snakemake.threads,
    jobs_per_gpu=snakemake.config["resources"]["jobs_per_gpu"],
    replicate=int(snakemake.params.run["seed"]),
)
write_evaluation(
    result,
    metrics_path=snakemake.output.metrics,
    mi_matrix_path=snakemake.output.mi_matrix,
    reconstructions_path=snakemake.output.reconstructions,
    traversals_path=snakemake.output.traversals,
    mi_matrix_sampled_path=snakemake.output.get("mi_matrix_sampled"),
    run=snakemake.params.run,
)
