"""Annotated heatmaps shared by the figures: β × λ grids (Figs 3, 5, 6) and MI matrices (Fig 8).

Heatmaps put β on the vertical axis, increasing upwards; colours run so that brighter is better
(``colormap``), and each cell carries its value in the largest font that fits, or none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import QuadMesh

from .. import scores
from .style import LABELS, PAGE_WIDTH

# Quantities whose colour maps run the other way, besides those of the score vocabulary for which
# a smaller value is better: the linear NLL, the Tchebycheff score, and the total KL, whose small
# values are the collapsed models that the scores' bright cells should not be confused with.
LOWER_IS_BETTER = frozenset({"nll", "score", "kl_total"})

# Panel geometry, in inches: heights grow with the number of heatmap rows so that cells stay
# legible; annotation fonts shrink with the cells, within these limits (points).
HEATMAP_CELL_HEIGHT = 0.2
HEATMAP_MARGIN = 0.75  # title, λ axis and labels of one heatmap row
MAX_FIGURE_HEIGHT = 9.0  # a page; rows are squeezed (and cells lose their text) beyond it
ANNOTATION_FONT_RANGE = (3.5, 6.5)


def compact_number(value: float) -> str:
    """A number in at most about four characters, for heatmap cells: 6012, 41.3, 0.27."""
    if not np.isfinite(value):
        return ""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def annotation_fontsize(cell_width: float, cell_height: float, max_chars: int) -> float | None:
    """The largest font (pt) whose text of ``max_chars`` characters fits a cell (inches).

    ``None`` when even the smallest legible font does not fit: such cells go without text.
    """
    # a digit is about 0.65 em wide; the text takes at most three quarters of the cell
    by_width = 72 * cell_width * 0.75 / (0.65 * max(max_chars, 1))
    by_height = 72 * cell_height * 0.7
    low, high = ANNOTATION_FONT_RANGE
    size = min(by_width, by_height, high)
    return size if size >= low else None


def annotated_heatmap(
    ax: plt.Axes,
    values: np.ndarray,
    *,
    xticklabels: Sequence[str],
    yticklabels: Sequence[str],
    cmap: str,
    fontsize: float | None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    text: Callable[[float], str] = compact_number,
) -> QuadMesh:
    """Draw a matrix as coloured cells with its values written in by ``text``; row 0 at the bottom.

    NaN cells are left blank. Text is black on light cells and white on dark ones; with
    ``fontsize=None`` the cells carry no text.
    """
    values = np.asarray(values, dtype=float)
    mesh = ax.pcolormesh(
        np.ma.masked_invalid(values),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        edgecolors="white",
        linewidth=0.4,
    )
    colors = mesh.cmap(mesh.norm(values))
    # relative luminance of sRGB colours (WCAG), which decides the legible text colour
    linear = np.where(
        colors[..., :3] <= 0.03928,
        colors[..., :3] / 12.92,
        ((colors[..., :3] + 0.055) / 1.055) ** 2.4,
    )
    dark = linear @ np.array([0.2126, 0.7152, 0.0722]) < 0.408
    for (row, col), value in np.ndenumerate(values):
        if fontsize is not None and np.isfinite(value):
            ax.text(
                col + 0.5,
                row + 0.5,
                text(value),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark[row, col] else "black",
                in_layout=False,  # inside the axes: nothing for the layout engine to measure
            )
    ax.set_xticks(np.arange(values.shape[1]) + 0.5, labels=xticklabels)
    ax.set_yticks(np.arange(values.shape[0]) + 0.5, labels=yticklabels)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, pad=0.03, fraction=0.08).outline.set_visible(False)
    return mesh


def grid_heatmap(
    ax: plt.Axes, frame: pd.DataFrame, *, cmap: str, cell_size: tuple[float, float]
) -> None:
    """A β × λ table (index β, columns λ) as an annotated heatmap, β increasing upwards.

    Cells of ``cell_size`` (inches) carry their values in the largest font that fits, or none.
    """
    frame = frame.sort_index().sort_index(axis=1)
    values = frame.to_numpy(dtype=float)
    widest = max((len(compact_number(v)) for v in values[np.isfinite(values)]), default=1)
    fontsize = annotation_fontsize(*cell_size, max_chars=widest)
    annotated_heatmap(
        ax,
        values,
        cmap=cmap,
        fontsize=fontsize,
        xticklabels=[f"{v:g}" for v in frame.columns],
        yticklabels=[f"{v:g}" for v in frame.index],
    )
    ax.set_xlabel(LABELS["lambda"])
    ax.set_ylabel(LABELS["beta"])


def outline_region(ax: plt.Axes, inside: np.ndarray, **style) -> None:
    """Draw the border between the cells where ``inside`` (rows × columns, the heatmap's
    layout) is true and the others, on a heatmap drawn by ``annotated_heatmap``."""
    rows, columns = inside.shape
    padded = np.pad(inside.astype(bool), 1)
    segments = []
    for i in range(rows + 1):  # horizontal edges between rows i − 1 and i
        for j in range(columns):
            if padded[i, j + 1] != padded[i + 1, j + 1]:
                segments.append(((j, i), (j + 1, i)))
    for j in range(columns + 1):  # vertical edges between columns j − 1 and j
        for i in range(rows):
            if padded[i + 1, j] != padded[i + 1, j + 1]:
                segments.append(((j, i), (j, i + 1)))
    for (x0, y0), (x1, y1) in segments:
        ax.plot([x0, x1], [y0, y1], solid_capstyle="butt", **style)


def hatch_cells(ax: plt.Axes, marked: np.ndarray, hatch: str = "////") -> None:
    """Hatch the cells of a heatmap where ``marked`` (rows × columns) is true."""
    for i, j in zip(*np.nonzero(marked), strict=True):
        ax.add_patch(
            plt.Rectangle((j, i), 1, 1, fill=False, hatch=hatch, linewidth=0, edgecolor="0.15")
        )


def colormap(quantity: str) -> str:
    reversed_map = quantity in LOWER_IS_BETTER or scores.lower_is_better(quantity)
    return "viridis_r" if reversed_map else "viridis"


def heatmap_figure(
    n_rows: int, n_cols: int, n_betas: int, n_lambdas: int
) -> tuple[plt.Figure, np.ndarray, tuple[float, float]]:
    """A page-wide grid of β × λ heatmap panels, and the approximate size of one cell (inches)."""
    row_height = max(1.5, HEATMAP_CELL_HEIGHT * n_betas + HEATMAP_MARGIN)
    row_height = min(row_height, MAX_FIGURE_HEIGHT / n_rows)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(PAGE_WIDTH, row_height * n_rows),
        squeeze=False,
        layout="constrained",
    )
    # about 70 % of a panel's width is the heatmap itself (colour bar and labels take the rest)
    cell_width = 0.7 * PAGE_WIDTH / n_cols / n_lambdas
    cell_height = (row_height - HEATMAP_MARGIN) / n_betas
    return fig, axes, (cell_width, cell_height)


def label_row(ax: plt.Axes, text: str) -> None:
    """Write a dataset's name to the left of its row of panels, beside the y label."""
    ax.annotate(
        text,
        xy=(0, 0.5),
        xycoords=ax.yaxis.label,
        xytext=(-6, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        rotation=90,
        fontsize=plt.rcParams["axes.titlesize"],
        fontweight="bold",
    )
