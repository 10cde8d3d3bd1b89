"""Snakemake entry point: train one phase of one λβ-VAE run, or of a pack of runs at once."""

from pathlib import Path

from lambdabeta.grid import Run
from lambdabeta.io import log_to_file
from lambdabeta.loader import load_prepared
from lambdabeta.settings import DeepSettings
from lambdabeta.training import PackMember, train_pack
from lambdabeta.training.curve import tail_mean

log_to_file(snakemake.log[0])
dataset = load_prepared(Path(snakemake.input.images).parent)
deep = DeepSettings.from_config(snakemake.config["deep"])
# an adaptive λ's target, when it is the reference model's KL rate over its last steps
reference = snakemake.input.get("reference")
law = snakemake.params.settings.get("adaptive", {})
rate = tail_mean(reference, "kl", law["reference_window"]) if reference else None
# params hold the science every run of the job shares, each run's name its own β, λ and seed;
# how the job runs comes from the config and the scheduler's allocation (its threads and GPUs)
allocation = {"threads": snakemake.threads, "granted_gpus": snakemake.resources.gpu}
members = []
for member in snakemake.params.members:
    run = Run.from_name(member["run"])
    if run.adaptive:
        settings = deep.adaptive_settings(run, snakemake.params.settings, **allocation,
                                          reference_rate=rate)  # fmt: skip
    else:
        settings = deep.train_settings(run, snakemake.params.settings, **allocation)
    members.append(
        PackMember(
            settings=settings,
            model_path=member["model"],
            log_path=member["curve"],
            summary_path=member["summary"],
            progress_dir=member["progress_dir"],
            init_model=member["init"],
        )
    )
train_pack(members, dataset.images, jobs_per_gpu=snakemake.config["resources"]["jobs_per_gpu"])
