"""Snakemake entry point: train one phase of one λβ-VAE run, or of a pack of runs at once."""

from pathlib import Path

from lambdabeta.grid import Run
from lambdabeta.io import log_to_file
from lambdabeta.loader import load_prepared
from lambdabeta.settings import DeepSettings
from lambdabeta.training import PackMember, train_pack

log_to_file(snakemake.log[0])
dataset = load_prepared(Path(snakemake.input.images).parent)
deep = DeepSettings.from_config(snakemake.config["deep"])
# params hold the science every run of the phase shares, each run's name its own β, λ and seed;
# how the job runs comes from the config and the scheduler's allocation (its threads and GPUs)
members = [
    PackMember(
        settings=deep.train_settings(
            Run.from_name(member["run"]),
            snakemake.params.settings,
            threads=snakemake.threads,
            granted_gpus=snakemake.resources.gpu,
        ),
        model_path=member["model"],
        log_path=member["curve"],
        summary_path=member["summary"],
        progress_dir=member["progress_dir"],
        init_model=member["init"],
    )
    for member in snakemake.params.members
]
train_pack(members, dataset.images, jobs_per_gpu=snakemake.config["resources"]["jobs_per_gpu"])
