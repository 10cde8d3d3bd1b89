"""Snakemake entry point: one deep figure (Figs 4-9, the adaptive λ figure), drawn by the
function that ``params.figure`` names in ``lambdabeta.plots.dispatch.DEEP``."""

from lambdabeta.io import log_to_file
from lambdabeta.plots.dispatch import DEEP, draw

log_to_file(snakemake.log[0])
draw(DEEP, snakemake)
