"""Snakemake entry point: one deep figure (Figs 4-9, the adaptive λ figure) by ``params.figure``."""

from lambdabeta.io import log_to_file
from lambdabeta.plots import deep
from lambdabeta.selection import PAPER_RECONSTRUCTION_METRIC

log_to_file(snakemake.log[0])

figure = snakemake.params.figure
outputs = (snakemake.output.pdf, snakemake.output.png)
# optional: the order of the dataset rows (the config's order); default, as in the tables
datasets = getattr(snakemake.params, "datasets", None)
# the NLL panels of Figs 4-5 show the deep.reconstruction_metric (default: the paper's)
reconstruction = getattr(snakemake.params, "reconstruction_metric", PAPER_RECONSTRUCTION_METRIC)

# Figs 4-5 of the encoder mean (the paper's) or of the sampled representation
representation = getattr(snakemake.params, "representation", "mean")

if figure == "fig4":
    columns = deep.sweep_metrics(reconstruction, representation)
    deep.fig4_beta_sweep(snakemake.input.metrics, *outputs, datasets=datasets, columns=columns)
elif figure == "fig5":
    columns = deep.sweep_metrics(reconstruction, representation)
    deep.fig5_lambda_heatmaps(snakemake.input.summary, *outputs, datasets=datasets, columns=columns)
elif figure == "fig6":
    deep.fig6_tchebycheff(
        snakemake.input.scores, snakemake.params.heatmap_weights, *outputs, datasets=datasets,
        adaptive=snakemake.input.get("metrics"),
    )  # fmt: skip
elif figure == "fig7":
    deep.fig7_reconstructions(
        list(snakemake.input.reconstructions), snakemake.params.settings, *outputs
    )
elif figure == "fig8":
    deep.fig8_mi_heatmaps(list(snakemake.input.mi_matrices), snakemake.params.settings, *outputs)
elif figure == "adaptive":
    deep.fig_adaptive(list(snakemake.input.curves), snakemake.params.runs, *outputs)
elif figure == "fig9":
    deep.fig9_traversals(list(snakemake.input.traversals), snakemake.params.settings, *outputs)
else:
    raise ValueError(f"params.figure is {figure!r}; expected fig4 … fig9 or adaptive")
