"""Fig 6: β × λ heatmaps of the augmented Tchebycheff selection score S, one column per w1, the
selected (β, λ) outlined and, when the config runs adaptive finetunes, their final λ marked;
saved as PDF and PNG (conventions: ``plots.common``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from .common import Table, dataset_label, dataset_order, read_table
from .heatmaps import colormap, grid_heatmap, heatmap_figure, label_row
from .style import save_figure, use_style

MINIMIZER_COLOR = "red"
ADAPTIVE_MARK_HEIGHT = 0.12  # where in its β row (0 bottom, 1 top) Fig 6 marks an adaptive run


def fig6_tchebycheff(
    scores: Table,
    heatmap_weights: Sequence[float],
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    datasets: Sequence[str] | None = None,
    adaptive: Table | None = None,
) -> plt.Figure:
    """Fig 6: β × λ heatmaps of the augmented Tchebycheff score S, one column per w1.

    Reads the long ``tchebycheff_scores`` table (columns ``dataset, w1, beta, lambda, score,
    minimizer``); the selected (β, λ) of each panel is outlined in red. With ``adaptive`` (the
    deep_metrics table), each adaptive finetune's final λ (median over seeds) is marked with a
    diamond in its β row, placed between the λ columns on a log scale.
    """
    use_style()
    table = read_table(scores)
    names = dataset_order(table, datasets)
    weights = [float(w) for w in heatmap_weights]
    available = np.unique(table["w1"].to_numpy(dtype=float))
    for w1 in weights:
        if not np.isclose(available, w1).any():
            raise ValueError(f"Fig 6: the scores hold no w1 = {w1:g} (they hold {available})")
    n_betas, n_lambdas = table["beta"].nunique(), table["lambda"].nunique()
    fig, axes, cell_size = heatmap_figure(len(names), len(weights), n_betas, n_lambdas)
    for row, name in enumerate(names):
        for col, w1 in enumerate(weights):
            ax = axes[row, col]
            panel = table[(table["dataset"] == name) & np.isclose(table["w1"], w1)]
            frame = panel.pivot(index="beta", columns="lambda", values="score")
            grid_heatmap(ax, frame, cmap=colormap("score"), cell_size=cell_size)
            _mark_minimizer(ax, frame, panel[panel["minimizer"].astype(bool)])
            if adaptive is not None:
                _mark_adaptive(ax, frame, read_table(adaptive), name)
            if row == 0:
                ax.set_title(f"$w_1$ = {w1:g}")
            if col > 0:
                ax.set_ylabel("")
        label_row(axes[row, 0], dataset_label(name))
    save_figure(fig, pdf_path, png_path)
    return fig


def lambda_position(lam: float, lambdas: Sequence[float]) -> float:
    """Where λ falls on a heatmap's λ axis (cell centres at k + ½): log-linear between the
    columns of λ > 0 (the λ = 0 column is the first), clipped to the outermost columns."""
    lambdas = sorted(float(v) for v in lambdas)
    positive = [(k, v) for k, v in enumerate(lambdas) if v > 0]
    if not positive or lam <= positive[0][1]:
        return (positive[0][0] if positive else 0) + 0.5
    logs = np.log([v for _, v in positive])
    index = np.interp(np.log(lam), logs, [k for k, _ in positive])
    return float(index) + 0.5


def _mark_adaptive(ax: plt.Axes, frame: pd.DataFrame, metrics: pd.DataFrame, dataset: str) -> None:
    """A diamond at each adaptive finetune's final λ (median over seeds) in its β row, low in
    the row so that it leaves the cell's number readable."""
    runs = metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == "adaptive")]
    if runs.empty:
        return
    betas = sorted(frame.index)
    for beta, block in runs.groupby("beta"):
        if beta in betas:
            x = lambda_position(float(block["final_lambda"].median()), frame.columns)
            y = betas.index(beta) + ADAPTIVE_MARK_HEIGHT
            ax.plot(x, y, marker="D", ms=4, mfc="white", mec="black", mew=0.8, zorder=6,
                    clip_on=False)  # fmt: skip


def _mark_minimizer(ax: plt.Axes, frame: pd.DataFrame, chosen: pd.DataFrame) -> None:
    """Outline in red the selected cells of a heatmap drawn by :func:`grid_heatmap`."""
    betas, lambdas = sorted(frame.index), sorted(frame.columns)
    for beta, lam in zip(chosen["beta"], chosen["lambda"], strict=True):
        corner = (lambdas.index(lam), betas.index(beta))
        ax.add_patch(
            Rectangle(
                corner,
                1,
                1,
                fill=False,
                edgecolor=MINIMIZER_COLOR,
                linewidth=1.8,
                zorder=5,
                clip_on=False,
            )
        )
