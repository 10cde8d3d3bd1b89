"""Snakemake entry point: augmented Tchebycheff selection of (β, λ), and the Pareto fronts."""

import pandas as pd

from lambdabeta.io import atomic_path, log_to_file
from lambdabeta.selection import pareto_front, score_grid, select

logger = log_to_file(snakemake.log[0])

summary = pd.read_csv(snakemake.input.summary)
rho = float(snakemake.params.rho)
weights = [float(w) for w in snakemake.params.weights]
# f1 is the deep.reconstruction_metric: train_bce (the paper's NLL) or eval_nll
reconstruction = snakemake.params.reconstruction_metric
# Fig 6 reads its heatmap weights from the score table, so the table holds both sets
all_weights = sorted(set(weights) | {float(w) for w in snakemake.params.heatmap_weights})

selection = select(summary, weights, rho, reconstruction=reconstruction)
scores = score_grid(summary, all_weights, rho, reconstruction=reconstruction)
datasets = scores["dataset"].unique()
fronts = pd.concat(
    [pareto_front(summary, dataset, reconstruction) for dataset in datasets], ignore_index=True
)
logger.info("f1 of the selection: %s", reconstruction)
for row in selection.to_dict("records"):
    logger.info(
        "%s, w1=%g: β=%g, λ=%g (S=%.4f)",
        row["dataset"],
        row["w1"],
        row["beta"],
        row["lambda"],
        row["score"],
    )

with atomic_path(snakemake.output.selection) as tmp:
    selection.to_csv(tmp, index=False)
with atomic_path(snakemake.output.scores) as tmp:
    scores.to_csv(tmp, index=False)
with atomic_path(snakemake.output.pareto) as tmp:
    fronts.to_csv(tmp, index=False)
