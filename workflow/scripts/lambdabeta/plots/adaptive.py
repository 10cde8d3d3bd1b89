"""The adaptive λ figure: λ(t) of the adaptive finetunes and the controller's averaged KL
against its set point; saved as PDF and PNG (conventions: ``plots.common``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .common import dataset_label
from .heatmaps import label_row
from .style import LABELS, PAGE_WIDTH, save_figure, use_style


def fig_adaptive(
    curves: Sequence[str | os.PathLike],
    runs: Sequence[Mapping],
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
) -> plt.Figure:
    """The adaptive finetunes: λ(t) (log scale) and the controller's averaged KL against its set
    point, one row per dataset, colour by β, one thin line per seed; ``curves[i]`` is the
    training curve of ``runs[i]`` (records with dataset, β and seed)."""
    use_style()
    if len(curves) != len(runs) or not curves:
        raise ValueError(f"fig_adaptive: {len(curves)} curves for {len(runs)} runs")
    names = list(dict.fromkeys(run["dataset"] for run in runs))
    betas = sorted({float(run["beta"]) for run in runs})
    colors = dict(zip(betas, plt.get_cmap("viridis")(np.linspace(0, 0.9, len(betas))), strict=True))
    fig, axes = plt.subplots(
        len(names), 2, figsize=(PAGE_WIDTH, 2.2 * len(names) + 0.4), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for path, run in zip(curves, runs, strict=True):
        curve = pd.read_csv(path)
        row = names.index(run["dataset"])
        color = colors[float(run["beta"])]
        axes[row, 0].plot(curve["step"], curve["lam"], color=color, lw=0.8, alpha=0.8)
        axes[row, 1].plot(curve["step"], curve["kl_average"], color=color, lw=0.8, alpha=0.8)
        axes[row, 1].plot(curve["step"], curve["set_point"], color="black", lw=0.8, ls="--")
    for row, name in enumerate(names):
        axes[row, 0].set_yscale("log")
        axes[row, 0].set_ylabel(LABELS["lambda"])
        axes[row, 1].set_ylabel("averaged KL (nats)")
        for ax in axes[row]:
            ax.set_xlabel("finetune step")
        label_row(axes[row, 0], dataset_label(name))
    handles = [plt.Line2D([], [], color=colors[b], lw=1.2) for b in betas]
    handles.append(plt.Line2D([], [], color="black", lw=0.8, ls="--"))
    labels = [f"β = {b:g}" for b in betas] + ["set point"]
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    save_figure(fig, pdf_path, png_path)
    return fig
