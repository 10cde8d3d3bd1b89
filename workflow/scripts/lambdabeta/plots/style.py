"""One look for every figure: paper-sized, seaborn-styled, saved as PDF and PNG together."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are rendered in jobs without a display

import matplotlib.pyplot as plt
import seaborn as sns

from .. import scores
from ..io import atomic_path

# Width of a two-column paper page, in inches; panels are sized from it.
PAGE_WIDTH = 7.0
PNG_DPI = 200

# Labels shared by every figure, so a quantity reads the same everywhere: the axes' and the linear
# NLL's here, every deep table column's from the score vocabulary (axis_label).
LABELS = {
    "nll": "NLL (nats)",
    "beta": r"$\beta$",
    "lambda": r"$\lambda$",
}


def axis_label(name: str) -> str:
    """A quantity's label in the figures: ``LABELS``, else the score vocabulary's axis label
    (``lambdabeta.scores.label``), else the name itself."""
    if name in LABELS:
        return LABELS[name]
    try:
        return scores.label(name, "axis")
    except KeyError:
        return name


METHOD_LABELS = {"fixed_point": "fixed point", "adamw": "AdamW"}


def use_style() -> None:
    """Seaborn's paper context with a white grid; small fonts that stay readable at print size."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.95)
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.bbox": "tight",
            "axes.titlesize": 9,
            "axes.labelsize": 8.5,
            "legend.fontsize": 7.5,
            "xtick.labelsize": 7.5,
            "ytick.labelsize": 7.5,
            "pdf.fonttype": 42,  # editable text in the PDF
        }
    )


def save_figure(fig: plt.Figure, *paths: str | os.PathLike) -> None:
    """Save ``fig`` to each path (format from the extension), atomically, then close it."""
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=PNG_DPI)
    plt.close(fig)
