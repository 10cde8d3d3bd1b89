"""Snakemake entry point: one figure of the linear study, chosen by ``params.figure``."""

from lambdabeta.io import log_to_file
from lambdabeta.plots import linear

log_to_file(snakemake.log[0])
figure = snakemake.params.figure
outputs = (snakemake.output.pdf, snakemake.output.png)
if figure == "fig2":
    linear.fig2_linear_beta_sweep(snakemake.input.metrics, *outputs)
elif figure == "fig3":
    linear.fig3_linear_lambda_heatmaps(snakemake.input.summary, *outputs)
elif figure == "contraction":
    linear.fig_linear_contraction(list(snakemake.input.traces), *outputs)
elif figure == "phase":
    linear.fig_linear_phase(
        snakemake.input.critical, list(snakemake.input.maps), snakemake.input.summary, *outputs
    )
else:
    raise ValueError(f"params.figure is {figure!r}; expected fig2, fig3, contraction or phase")
