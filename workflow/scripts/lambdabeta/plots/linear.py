"""Figures of the linear-Gaussian study (Figs 2-3 and the contraction figure), as PDF and PNG.

Each function reads the tables the linear rules write (``linear_metrics.csv``,
``linear_summary.csv``, ``contraction.csv``) and draws one row of panels per problem size n.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .heatmaps import colormap, grid_heatmap, heatmap_figure, label_row
from .style import LABELS, METHOD_LABELS, PAGE_WIDTH, save_figure, use_style

Table = pd.DataFrame | str | os.PathLike

LINEAR_METRICS = ("nll", "sap", "im")  # the paper's panels of Figs 2-3, in its order
ROW_HEIGHT = 1.9
CONTRACTION_FLOOR = 1e-16  # lower end of the ‖B_t‖₂ axis: double precision's resolution
METHOD_PALETTE = {"fixed_point": "#1f77b4", "adamw": "#ff7f0e"}


def _read(table: Table) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else pd.read_csv(table)


def _size_label(row: pd.Series | dict) -> str:
    return f"n={row['n']}, m={row['m']}, s={row['s']}"


def _sizes(table: pd.DataFrame) -> list[dict]:
    sizes = table[["n", "m", "s"]].drop_duplicates().sort_values("n", ascending=False)
    return sizes.to_dict("records")


def _of_size(table: pd.DataFrame, size: dict) -> pd.DataFrame:
    return table[(table["n"] == size["n"]) & (table["m"] == size["m"]) & (table["s"] == size["s"])]


def fig2_linear_beta_sweep(
    metrics: Table,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    columns: Sequence[str] = LINEAR_METRICS,
) -> None:
    """Fig 2: the β-VAE (λ = 0): NLL, SAP and I_m against β, box plots over restarts per method.

    One row per problem size; β is categorical (the grid need not be geometric).
    """
    use_style()
    table = _read(metrics)
    table = table[table["lambda"] == 0]
    if table.empty:
        raise ValueError("Fig 2 needs λ = 0 in linear.lambdas: the table has no λ = 0 rows")
    sizes = _sizes(table)
    methods = [m for m in METHOD_PALETTE if m in set(table["method"])]
    fig, axes = plt.subplots(
        len(sizes),
        len(columns),
        figsize=(PAGE_WIDTH, ROW_HEIGHT * len(sizes) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for row, size in enumerate(sizes):
        rows = _of_size(table, size).assign(
            method=lambda t: t["method"].map(METHOD_LABELS),
            beta=lambda t: t["beta"].map("{:g}".format),
        )
        order = [f"{b:g}" for b in sorted(_of_size(table, size)["beta"].unique())]
        for col, metric in enumerate(columns):
            ax = axes[row, col]
            sns.boxplot(
                data=rows,
                x="beta",
                y=metric,
                hue="method",
                order=order,
                hue_order=[METHOD_LABELS[m] for m in methods],
                palette=[METHOD_PALETTE[m] for m in methods],
                fliersize=1.5,
                linewidth=0.7,
                ax=ax,
                legend=row == 0 and col == 0,
            )
            ax.set_xlabel(LABELS["beta"])
            ax.set_ylabel(LABELS[metric])
            if row == 0:
                ax.set_title(LABELS[metric])
        label_row(axes[row, 0], _size_label(size))
    if axes[0, 0].get_legend() is not None:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        axes[0, 0].get_legend().remove()
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    save_figure(fig, pdf_path, png_path)


def fig3_linear_lambda_heatmaps(
    summary: Table,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    columns: Sequence[str] = LINEAR_METRICS,
) -> None:
    """Fig 3: the λβ-VAE: β × λ heatmaps of the mean over restarts of NLL, SAP and I_m.

    One row per (problem size, method); each heatmap has its own colour scale. Reads the
    ``linear_summary`` table (``<metric>_mean`` columns).
    """
    use_style()
    table = _read(summary)
    blocks = [
        (size, method)
        for size in _sizes(table)
        for method in METHOD_PALETTE
        if not _of_size(table, size).query("method == @method").empty
    ]
    n_betas, n_lambdas = table["beta"].nunique(), table["lambda"].nunique()
    fig, axes, cell_size = heatmap_figure(len(blocks), len(columns), n_betas, n_lambdas)
    for row, (size, method) in enumerate(blocks):
        rows = _of_size(table, size).query("method == @method")
        for col, metric in enumerate(columns):
            ax = axes[row, col]
            frame = rows.pivot(index="beta", columns="lambda", values=f"{metric}_mean")
            grid_heatmap(ax, frame, cmap=colormap(metric), cell_size=cell_size)
            if row == 0:
                ax.set_title(LABELS[metric])
            if col > 0:
                ax.set_ylabel("")
        label_row(axes[row, 0], f"n={size['n']}, {METHOD_LABELS[method]}")
    save_figure(fig, pdf_path, png_path)


def fig_linear_contraction(
    traces: Sequence[Table],
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
) -> None:
    """‖B_t‖₂ along fixed-point iterations, beside the β⁻ᵗ slope of Theorem 3.2.

    One panel per λ (columns) and problem size (rows); one line per β (the median over restarts,
    with the range over restarts shaded), and dashed lines ‖B_0‖₂·β⁻ᵗ from the same start. At
    λ = 0 and β > 1 the iterates must fall at least as fast as their dashed line; at λ > 0 they
    level off at a positive norm.
    """
    use_style()
    table = pd.concat([_read(t) for t in traces], ignore_index=True)
    ns = sorted(table["n"].unique(), reverse=True)
    lambdas = sorted(table["lambda"].unique())
    betas = sorted(table["beta"].unique())
    colors = dict(zip(betas, sns.color_palette("viridis", len(betas)), strict=True))
    fig, axes = plt.subplots(
        len(ns),
        len(lambdas),
        figsize=(PAGE_WIDTH, 2.1 * len(ns) + 0.4),
        squeeze=False,
        sharey="row",
        layout="constrained",
    )
    for row, n in enumerate(ns):
        for col, lam in enumerate(lambdas):
            ax = axes[row, col]
            panel = table[(table["n"] == n) & (table["lambda"] == lam)]
            for beta in betas:
                curve = panel[panel["beta"] == beta].groupby("iteration")["b_norm"]
                steps = np.asarray(curve.median().index)
                median, low, high = curve.median(), curve.min(), curve.max()
                ax.plot(steps, median, color=colors[beta], lw=1.2, label=f"β = {beta:g}")
                ax.fill_between(steps, low, high, color=colors[beta], alpha=0.2, lw=0)
                slope = median.iloc[0] * float(beta) ** (-steps.astype(float))
                ax.plot(steps, slope, color=colors[beta], lw=0.8, ls="--")
            ax.set_yscale("log")
            ax.set_xlabel("fixed-point iteration t")
            ax.set_title(f"{LABELS['lambda']} = {lam:g}")
            if col == 0:
                ax.set_ylabel(r"$\|B_t\|_2$")
        # norms that fell below the plotting floor have collapsed: cut them at the floor
        top = table.loc[table["n"] == n, "b_norm"].max()
        axes[row, 0].set_ylim(CONTRACTION_FLOOR, 2 * top)
        label_row(axes[row, 0], f"n={n}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", ls="--", lw=0.8))
    labels.append(r"$\|B_0\|_2\,\beta^{-t}$")
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    save_figure(fig, pdf_path, png_path)
