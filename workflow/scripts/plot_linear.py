"""Snakemake entry point: one figure of the linear study, drawn by the function that
``params.figure`` names in ``lambdabeta.plots.dispatch.LINEAR``."""

from lambdabeta.io import log_to_file
from lambdabeta.plots.dispatch import LINEAR, draw

log_to_file(snakemake.log[0])
draw(LINEAR, snakemake)
