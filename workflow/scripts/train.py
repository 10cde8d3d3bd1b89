"""Snakemake entry point: train one phase (stabilize or finetune) of one λβ-VAE run."""

from pathlib import Path

from lambdabeta.io import log_to_file
from lambdabeta.loader import load_prepared
from lambdabeta.train import TrainSettings, train

log_to_file(snakemake.log[0])
dataset = load_prepared(Path(snakemake.input.images).parent)
# the scheduler's allocation decides the thread count, whatever the settings say
settings = TrainSettings.from_dict({**snakemake.params.settings, "threads": snakemake.threads})
train(
    settings,
    dataset.images,
    model_path=snakemake.output.model,
    log_path=snakemake.output.curve,
    summary_path=snakemake.output.summary,
    progress_dir=snakemake.params.progress_dir,
    init_model=snakemake.input.get("init"),
    jobs_per_gpu=snakemake.params.jobs_per_gpu,
)
