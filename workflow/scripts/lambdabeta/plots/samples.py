"""A sheet of random images from a prepared dataset, to see what the factors look like."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from ..loader import PreparedDataset
from .style import PAGE_WIDTH, save_figure, use_style

TITLE_FONT_SIZE = 5.0


def sample_indices(num_images: int, count: int, seed: int) -> np.ndarray:
    """``min(count, num_images)`` distinct random row indices, sorted (memory-map friendly)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_images, size=min(count, num_images), replace=False))


def sample_sheet(
    dataset: PreparedDataset,
    path_png: str | os.PathLike,
    *,
    rows: int = 4,
    cols: int = 8,
    seed: int = 0,
    titles: bool = True,
) -> np.ndarray:
    """Plot ``rows × cols`` random images of ``dataset`` in a grid and save it to ``path_png``.

    Each image is titled with its factor classes (in ``dataset.factor_names`` order, given in
    the figure title) unless ``titles`` is False. Returns the row indices shown.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"rows = {rows} and cols = {cols} must be positive")
    indices = sample_indices(len(dataset), rows * cols, seed)
    images = np.asarray(dataset.images[indices])
    gray = dataset.num_channels == 1
    use_style()
    fig, axes = plt.subplots(
        rows, cols, figsize=(PAGE_WIDTH, PAGE_WIDTH * rows / cols * 1.1), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, classes in zip(axes.flat, images, dataset.factors[indices], strict=False):
        ax.imshow(
            image[..., 0] if gray else image,
            cmap="gray" if gray else None,
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        if titles:
            ax.set_title(" ".join(map(str, classes)), fontsize=TITLE_FONT_SIZE, pad=1.5)
    caption = f"{dataset.name}: {len(indices)} random images of {len(dataset):,}"
    if titles:
        caption += f"; titles: classes of ({', '.join(dataset.factor_names)})"
    fig.suptitle(caption, fontsize=7)
    save_figure(fig, path_png)
    return indices
