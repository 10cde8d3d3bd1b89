"""Snakemake entry point: download (or link a local copy of) one dataset's upstream file."""

from lambdabeta.download import fetch_source
from lambdabeta.io import log_to_file

log_to_file(snakemake.log[0])
# params hold what pins the file's content; mirrors and a local copy are read from the config,
# so adding a mirror never fetches (or prepares) anything again
dataset = snakemake.wildcards.dataset
fetch_source(snakemake.config["datasets"][dataset], snakemake.output[0], dataset=dataset)
