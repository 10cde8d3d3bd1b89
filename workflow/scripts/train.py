"""Snakemake entry point: train one phase of one λβ-VAE run, or of a pack of runs at once."""

from pathlib import Path

from lambdabeta.grid import Run
from lambdabeta.io import log_to_file
from lambdabeta.loader import load_prepared
from lambdabeta.settings import TrainSettings, run_science, train_logistics
from lambdabeta.train import PackMember, train_pack

log_to_file(snakemake.log[0])
dataset = load_prepared(Path(snakemake.input.images).parent)
# params hold the science every run of the phase shares, each run's name its own β, λ and seed;
# how the job runs comes from the config and the scheduler's allocation (its thread count,
# whatever the config says)
logistics = train_logistics(snakemake.config["deep"], snakemake.threads)
members = []
for member in snakemake.params.members:
    run = Run.from_name(member["run"])
    science = snakemake.params.settings | run_science(run)
    members.append(
        PackMember(
            settings=TrainSettings.for_run(run, science, logistics),
            model_path=member["model"],
            log_path=member["curve"],
            summary_path=member["summary"],
            progress_dir=member["progress_dir"],
            init_model=member["init"],
        )
    )
train_pack(members, dataset.images, jobs_per_gpu=snakemake.config["resources"]["jobs_per_gpu"])
