"""Snakemake entry point: the linear-Gaussian instance (Γ, Σ_V) of one `linear.dims` entry."""

from lambdabeta.io import log_to_file
from lambdabeta.linear import make_instance, save_instance

log = log_to_file(snakemake.log[0])
dims = snakemake.params.dims
instance = make_instance(
    dims["n"],
    dims["m"],
    dims["s"],
    noise_var=snakemake.params.noise_var,
    factor_var_range=snakemake.params.factor_var_range,
    seed=snakemake.params.seed,
    instance_file=snakemake.params.instance_file,
)
save_instance(snakemake.output[0], instance)
log.info("instance n=%d s=%d, Sigma_V diagonal %s", instance.n, instance.s, instance.factor_var)
