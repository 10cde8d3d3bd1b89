"""Fig 8: latent × factor mutual information (nats) of chosen models, one heatmap per model;
saved as PDF and PNG (conventions: ``plots.common``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .common import by_dataset, check_settings, dataset_label, setting_title
from .heatmaps import annotated_heatmap, annotation_fontsize, label_row
from .style import PAGE_WIDTH, save_figure, use_style

MI_LABEL = "MI (nats)"
MI_CELL_HEIGHT = 0.15  # inches


def fig8_mi_heatmaps(
    mi_matrices: Sequence[str | os.PathLike],
    settings: Sequence[Mapping],
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    annotate: bool = True,
) -> plt.Figure:
    """Fig 8: latent × factor mutual information (nats) of chosen models.

    ``mi_matrices[i]`` is the ``mi_matrix.csv`` (columns ``latent, <factor names…>``) of the
    model ``settings[i]`` (as in :func:`fig7_reconstructions`). One row per dataset, one panel
    per setting; the panels of a dataset share one colour scale, from 0 to its largest MI.
    """
    use_style()
    check_settings(mi_matrices, settings, "MI matrix")
    groups = by_dataset(mi_matrices, settings)
    matrices = {
        name: [(_read_mi_matrix(path), setting) for path, setting in members]
        for name, members in groups.items()
    }
    n_cols = max(len(members) for members in matrices.values())
    n_latents = max(m.shape[0] for members in matrices.values() for m, _ in members)
    n_factors = max(m.shape[1] for members in matrices.values() for m, _ in members)
    row_height = MI_CELL_HEIGHT * n_latents + 0.9
    fig, axes = plt.subplots(
        len(matrices),
        n_cols,
        figsize=(PAGE_WIDTH, row_height * len(matrices)),
        squeeze=False,
        layout="constrained",
    )
    cell_width = 0.75 * PAGE_WIDTH / n_cols / n_factors
    fontsize = annotation_fontsize(cell_width, MI_CELL_HEIGHT, max_chars=4)
    for row, (name, members) in enumerate(matrices.items()):
        vmax = max(float(np.nanmax(matrix.to_numpy())) for matrix, _ in members) or 1.0
        for col, (matrix, setting) in enumerate(members):
            ax = axes[row, col]
            mesh = annotated_heatmap(
                ax,
                matrix.to_numpy(),
                cmap="viridis",
                vmin=0.0,
                vmax=vmax,
                colorbar=False,
                fontsize=fontsize if annotate else None,
                text=_mi_text,
                xticklabels=list(matrix.columns),
                yticklabels=[f"{i}" for i in matrix.index],
            )
            ax.invert_yaxis()  # latent 0 on top, as in a printed matrix
            ax.set_title(setting_title(setting))
            ax.set_xlabel("factor")
            ax.set_ylabel("latent" if col == 0 else "")
            ax.tick_params(axis="x", rotation=40)
            ax.tick_params(axis="y", rotation=0)
            plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        for ax in axes[row, len(members) :]:
            ax.set_visible(False)
        fig.colorbar(mesh, ax=list(axes[row]), label=MI_LABEL, fraction=0.04, pad=0.02)
        label_row(axes[row, 0], dataset_label(name))
    save_figure(fig, pdf_path, png_path)
    return fig


def _mi_text(value: float) -> str:
    return f"{value:.2f}"


def _read_mi_matrix(path: str | os.PathLike) -> pd.DataFrame:
    matrix = pd.read_csv(path)
    if "latent" not in matrix:
        raise ValueError(f"{path}: an MI matrix needs a 'latent' column, got {list(matrix)}")
    return matrix.set_index("latent").astype(float)
