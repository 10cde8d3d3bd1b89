"""Figs 4-5: the metrics of the β sweep (Fig 4, stabilized β-VAEs against β) and of the λ
sweep (Fig 5, β × λ heatmaps of the finetuned λβ-VAEs), of the encoder mean (the paper's) or of
the sampled representation; each saved as PDF and PNG (conventions: ``plots.common``).

- :func:`fig4_beta_sweep`       stabilized β-VAEs: metrics against β, every seed and mean ± sd
                                (the paper's panels, or the other scores: ``other_score_columns``);
- :func:`fig5_lambda_heatmaps`  finetuned λβ-VAEs: β × λ heatmaps of the mean metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .. import scores
from ..aggregate import summarize
from ..selection import PAPER_RECONSTRUCTION_METRIC, reconstruction_column
from .common import Table, dataset_label, dataset_order, phase_rows, read_table
from .heatmaps import colormap, grid_heatmap, heatmap_figure, label_row
from .style import LABELS, PAGE_WIDTH, axis_label, save_figure, use_style

# Panel geometry, in inches.
SWEEP_ROW_HEIGHT = 1.7
SEED_DODGE = 0.3  # width, in log2 β, over which the seeds of one β are spread in Fig 4


def sweep_metrics(
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC, representation: str = "mean"
) -> tuple[str, str, str]:
    """The paper's panels of Figs 4-5, in its order: the NLL (the column of the
    ``deep.reconstruction_metric``, titled by its own label: train BCE or recon. NLL), SAP, MIG;
    of the encoder mean (the paper's) or of the sampled representation (``_sampled`` columns)."""
    sap, mig = (scores.QUANTITIES[name].column(representation) for name in ("sap", "mig"))
    return reconstruction_column(reconstruction), sap, mig


SWEEP_METRICS = sweep_metrics()  # the paper's panels with the paper's NLL


def other_score_columns(metrics: Table, representation: str = "mean") -> list[str]:
    """The companion of Fig 4: the readable scores of the vocabulary on ``representation`` that
    the paper's panels do not show (I_m, DCI, the FactorVAE score, …) and the table has."""
    shown = set(sweep_metrics(representation=representation))
    columns = scores.score_columns([representation], readable_only=True)
    present = read_table(metrics).columns
    return [column for column in columns if column not in shown and column in present]


# ---- Fig 4 ----------------------------------------------------------------------------------


def fig4_beta_sweep(
    metrics: Table,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC,
) -> plt.Figure:
    """Fig 4: stabilized β-VAEs, each metric of ``columns`` against β (log2 axis).

    One row per dataset, one column per metric; every seed is a dot, the line is the mean over
    seeds with ± one sample standard deviation as error bars. Reads the ``deep_metrics`` table.
    ``columns`` defaults to the paper's panels, the NLL being the ``reconstruction`` metric.
    """
    use_style()
    columns = sweep_metrics(reconstruction) if columns is None else columns
    runs = phase_rows(read_table(metrics), "stabilize", "Fig 4")
    names = dataset_order(runs, datasets)
    summary = summarize(runs, columns)
    betas = np.sort(runs["beta"].unique())
    fig, axes = plt.subplots(
        len(names),
        len(columns),
        figsize=(PAGE_WIDTH, SWEEP_ROW_HEIGHT * len(names) + 0.3),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    # seeds are spread a little sideways around their β so that equal values stay visible
    seed_rank = runs.groupby(["dataset", "beta"])["seed"].rank(method="first") - 1
    n_seeds = runs.groupby(["dataset", "beta"])["seed"].transform("size")
    dodge = SEED_DODGE * (seed_rank - (n_seeds - 1) / 2) / np.maximum(n_seeds - 1, 1)
    for row, name in enumerate(names):
        in_dataset = (runs["dataset"] == name).to_numpy()
        seeds = runs[in_dataset]
        seed_x = np.log2(seeds["beta"]) + dodge[in_dataset]
        means = summary[summary["dataset"] == name]
        for col, metric in enumerate(columns):
            ax = axes[row, col]
            ax.scatter(
                seed_x,
                seeds[metric],
                s=7,
                color="0.45",
                alpha=0.55,
                linewidths=0,
                label="seed",
                zorder=4,
            )
            ax.errorbar(
                np.log2(means["beta"]),
                means[f"{metric}_mean"],
                yerr=means[f"{metric}_sd"],
                color="C0",
                marker="o",
                markersize=3.5,
                linewidth=1.3,
                capsize=2,
                label="mean ± sd",
                zorder=3,
            )
            if row == 0:
                ax.set_title(axis_label(metric))
            if row == len(names) - 1:
                ax.set_xlabel(LABELS["beta"])
        axes[row, 0].set_ylabel(dataset_label(name), fontweight="bold")
    _set_log2_ticks(axes[-1], betas, panel_width=PAGE_WIDTH / len(columns))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=2, frameon=False)
    save_figure(fig, pdf_path, png_path)
    return fig


def _set_log2_ticks(axes: Sequence[plt.Axes], betas: np.ndarray, panel_width: float) -> None:
    """Ticks at log2 β labelled with β; labels turn sideways when neighbours would touch."""
    positions = np.log2(betas)
    labels = [f"{b:g}" for b in betas]
    span = positions.max() - positions.min() + 1.2
    # about 70 % of a panel is axes; a digit is about 0.6 em wide; keep 3 pt between labels
    points_per_unit = 72 * 0.7 * panel_width / span
    half_widths = 0.3 * plt.rcParams["xtick.labelsize"] * np.array([len(t) for t in labels])
    crowded = (half_widths[:-1] + half_widths[1:] + 3 > points_per_unit * np.diff(positions)).any()
    for ax in axes:
        ax.set_xticks(positions, labels=labels)
        ax.set_xlim(positions.min() - 0.6, positions.max() + 0.6)
        if crowded:
            ax.tick_params(axis="x", rotation=45)
            plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")


# ---- Fig 5 ----------------------------------------------------------------------------------


def fig5_lambda_heatmaps(
    summary: Table,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC,
) -> plt.Figure:
    """Fig 5: finetuned λβ-VAEs, β × λ heatmaps of the mean over seeds of each metric.

    One row per dataset, one column per metric; each heatmap has its own colour scale, shared by
    all its (β, λ) cells. Reads the ``deep_summary`` table (``<metric>_mean`` columns).
    ``columns`` defaults to the paper's panels, the NLL being the ``reconstruction`` metric.
    """
    use_style()
    columns = sweep_metrics(reconstruction) if columns is None else columns
    table = phase_rows(read_table(summary), "finetune", "Fig 5")
    names = dataset_order(table, datasets)
    n_betas, n_lambdas = table["beta"].nunique(), table["lambda"].nunique()
    fig, axes, cell_size = heatmap_figure(len(names), len(columns), n_betas, n_lambdas)
    for row, name in enumerate(names):
        rows = table[table["dataset"] == name]
        for col, metric in enumerate(columns):
            ax = axes[row, col]
            frame = rows.pivot(index="beta", columns="lambda", values=f"{metric}_mean")
            grid_heatmap(ax, frame, cmap=colormap(metric), cell_size=cell_size)
            if row == 0:
                ax.set_title(axis_label(metric))
            if col > 0:
                ax.set_ylabel("")
        label_row(axes[row, 0], dataset_label(name))
    save_figure(fig, pdf_path, png_path)
    return fig
