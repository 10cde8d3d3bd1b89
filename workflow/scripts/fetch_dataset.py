"""Snakemake entry point: download (or link a local copy of) one dataset's upstream file."""

from lambdabeta.download import fetch_source
from lambdabeta.io import log_to_file

log_to_file(snakemake.log[0])
fetch_source(snakemake.params.source, snakemake.output[0])
