"""Snakemake entry point: the linear-Gaussian instance (Γ, Σ_V, σ²) of one `linear.dims` entry."""

from lambdabeta.io import log_to_file
from lambdabeta.linear import InstanceJob, make_instance, save_instance

log = log_to_file(snakemake.log[0])
job = InstanceJob.from_science(snakemake.params.science)
instance = make_instance(
    job.dims.n,
    job.dims.m,
    job.dims.s,
    noise_var=job.noise_var,
    factor_var_range=job.factor_var_range,
    seed=job.seed,
    instance_file=job.instance_file,
)
save_instance(snakemake.output[0], instance)
log.info("instance n=%d s=%d, Sigma_V diagonal %s", instance.n, instance.s, instance.factor_var)
