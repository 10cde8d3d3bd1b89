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

from .heatmaps import colormap, grid_heatmap, hatch_cells, heatmap_figure, label_row, outline_region
from .style import LABELS, METHOD_LABELS, PAGE_WIDTH, axis_label, save_figure, use_style

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
    """Fig 2: the β-VAE (λ = 0): NLL, SAP and I_m against β, box plots over restarts per method
    (of the sampled latent, the paper's), and, dashed, the encoder mean's SAP and I_m.

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
            if f"{metric}_mean" in rows:
                _mean_convention(ax, _of_size(table, size), metric, order, methods)
            ax.set_xlabel(LABELS["beta"])
            ax.set_ylabel(axis_label(metric))
            if row == 0:
                ax.set_title(axis_label(metric))
        label_row(axes[row, 0], _size_label(size))
    if axes[0, 0].get_legend() is not None:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        axes[0, 0].get_legend().remove()
        if "sap_mean" in table:
            handles.append(plt.Line2D([], [], color="grey", ls="--", marker="o", ms=3, lw=0.9))
            labels.append("encoder mean μ = BY (median)")
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    save_figure(fig, pdf_path, png_path)


def _mean_convention(
    ax: plt.Axes, rows: pd.DataFrame, metric: str, order: list[str], methods: list[str]
) -> None:
    """Fig 2 beside its boxes (the sampled latent X = BY + W, the theory's): the median over
    restarts of the same metric of the encoder mean BY, dashed, one line per method. It does not
    fall where B collapses (its correlations ignore B's scale)."""
    for method in methods:
        medians = rows[rows["method"] == method].groupby("beta")[f"{metric}_mean"].median()
        positions = [order.index(f"{beta:g}") for beta in medians.index]
        ax.plot(positions, medians.to_numpy(), ls="--", marker="o", ms=3, lw=0.9,
                color=METHOD_PALETTE[method])  # fmt: skip


def fig3_linear_lambda_heatmaps(
    summary: Table,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    columns: Sequence[str] = LINEAR_METRICS,
) -> None:
    """Fig 3: the λβ-VAE: β × λ heatmaps of the mean over restarts of NLL, SAP and I_m.

    One row per (problem size, method); each heatmap has its own colour scale. Reads the
    ``linear_summary`` table (``<metric>_mean`` columns). The closed form's collapse boundary is
    outlined where it crosses the grid, and cells without a minimum are hatched
    (``_mark_theory``).
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
            _mark_theory(ax, rows)
            if row == 0:
                ax.set_title(axis_label(metric))
            if col > 0:
                ax.set_ylabel("")
        label_row(axes[row, 0], f"n={size['n']}, {METHOD_LABELS[method]}")
    save_figure(fig, pdf_path, png_path)


def _mark_theory(ax: plt.Axes, rows: pd.DataFrame) -> None:
    """On a β × λ heatmap of Fig 3: outline the cells the closed form predicts collapsed
    (β > β*(λ) = 1 + 2λμ_1, where the boundary crosses the grid) and hatch the cells where some
    restart did not attain a minimum (the NLL still falling: β = 1 with λ > 0)."""

    def grid(column: str) -> np.ndarray:
        frame = rows.pivot(index="beta", columns="lambda", values=column)
        return frame.sort_index().sort_index(axis=1).to_numpy(dtype=float)

    collapsed = grid("predicted_rank_mean") == 0
    if collapsed.any() and not collapsed.all():
        outline_region(ax, collapsed, color="white", linewidth=1.6)
        outline_region(ax, collapsed, color="black", linewidth=0.7, linestyle=(0, (2, 2)))
    attained = grid("attained_mean")
    hatch_cells(ax, np.isfinite(attained) & (attained < 1))


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


def fig_linear_phase(
    critical: Table,
    maps: Sequence[Table],
    summary: Table,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
) -> None:
    """The phase diagram of the linear λβ-VAE: the (λ, β − 1) plane on log axes, one panel per
    instance. The colour is the number of informative latent directions of the fixed point's
    solution (``phase_map.csv``); lines are the closed form's β_i(λ) = 1 + 2λμ_i, one per
    distinct eigenvalue of Σ_Y among the m largest; dots are the bisection's measured critical
    β (``linear_phase.csv``) and crosses the λ > 0 points of the study's grid."""
    use_style()
    critical, summary = _read(critical), _read(summary)
    ranks = pd.concat([_read(t) for t in maps], ignore_index=True)
    sizes = _sizes(ranks)
    fig, axes = plt.subplots(
        1, len(sizes), figsize=(PAGE_WIDTH, 3.0), squeeze=False, layout="constrained"
    )
    top = int(ranks["rank"].max())
    cmap = plt.get_cmap("viridis", top + 1)
    for col, size in enumerate(sizes):
        ax = axes[0, col]
        grid = _of_size(ranks, size).pivot(index="beta", columns="lambda", values="rank")
        mesh = ax.pcolormesh(
            grid.columns, grid.index - 1, grid.to_numpy(), cmap=cmap, vmin=-0.5,
            vmax=top + 0.5, shading="nearest",
        )  # fmt: skip
        lambdas = np.geomspace(grid.columns.min(), grid.columns.max(), 50)
        measured = _of_size(critical, size)
        for mu in np.unique(measured["mu"].round(12))[::-1]:
            ax.plot(lambdas, 2 * lambdas * mu, color="white", lw=0.9)
            ax.annotate(f"μ={mu:.3g}", (lambdas[-1], 2 * lambdas[-1] * mu), fontsize=6,
                        color="white", ha="right", va="bottom")  # fmt: skip
        ax.scatter(measured["lambda"], measured["measured_beta"] - 1, s=12, color="black",
                   zorder=3, label="measured critical β")  # fmt: skip
        points = _of_size(summary, size)
        points = points[(points["lambda"] > 0) & (points["beta"] > 1)]
        ax.scatter(points["lambda"], points["beta"] - 1, marker="x", s=14, color="red",
                   zorder=3, label="the study's grid")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(grid.index.min() - 1, grid.index.max() - 1)
        ax.set_xlabel(LABELS["lambda"])
        ax.set_ylabel(f"{LABELS['beta']} − 1")
        ax.set_title(_size_label(size))
    fig.colorbar(mesh, ax=axes[0, -1], ticks=range(top + 1), label="informative directions")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", lw=0.9))
    labels.append(r"closed form $\beta_i = 1 + 2\lambda\mu_i$")
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
    save_figure(fig, pdf_path, png_path)
