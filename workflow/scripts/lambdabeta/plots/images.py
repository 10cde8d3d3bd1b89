"""Figs 7 and 9: images of chosen models, saved as PDF and PNG (conventions: ``plots.common``).

- :func:`fig7_reconstructions`  originals and reconstructions of chosen models (Fig 7);
- :func:`fig9_traversals`       latent traversals of chosen models, a latent per row (Fig 9).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .common import by_dataset, check_settings, dataset_label, setting_title, tile_images
from .heatmaps import MAX_FIGURE_HEIGHT
from .style import PAGE_WIDTH, save_figure, use_style


def fig7_reconstructions(
    reconstructions: Sequence[str | os.PathLike],
    settings: Sequence[Mapping],
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    *,
    max_images: int | None = None,
) -> plt.Figure:
    """Fig 7: original images (top row) and their reconstructions, one row per setting.

    ``reconstructions[i]`` is the ``reconstructions.npz`` of the model ``settings[i]`` (a mapping
    with ``dataset, beta, lambda``, optionally ``phase``, ``requested_beta``,
    ``requested_lambda``). One block of rows per dataset, blocks side by side; the models of a
    dataset must have reconstructed the same images. ``max_images`` caps the images per row.
    """
    use_style()
    check_settings(reconstructions, settings, "reconstruction")
    blocks = []
    for name, members in by_dataset(reconstructions, settings).items():
        strips, labels = _reconstruction_strips(name, members, max_images)
        blocks.append((name, strips, labels))
    labels_differ = len({tuple(labels) for _, _, labels in blocks}) > 1

    widths = [strips[0].shape[1] for _, strips, _ in blocks]
    label_space = 1.1  # inches for the row labels left of the first block
    block_widths = (PAGE_WIDTH - label_space) * np.asarray(widths) / sum(widths)
    height = max(
        width * sum(s.shape[0] for s in strips) / strips[0].shape[1]
        for width, (_, strips, _) in zip(block_widths, blocks, strict=True)
    )
    fig, axes = plt.subplots(
        1,
        len(blocks),
        figsize=(PAGE_WIDTH, height + 0.4),
        squeeze=False,
        width_ratios=widths,
        layout="constrained",
    )
    for ax, (name, strips, labels) in zip(axes[0], blocks, strict=True):
        _draw_strips(ax, strips, labels if ax is axes[0, 0] or labels_differ else None)
        ax.set_title(dataset_label(name))
    save_figure(fig, pdf_path, png_path)
    return fig


def _reconstruction_strips(
    name: str, members: list[tuple], max_images: int | None
) -> tuple[list[np.ndarray], list[str]]:
    """Image strips (originals first, then one per setting) and their row labels."""
    first_path, _ = members[0]
    with np.load(first_path) as first:
        indices = first["indices"]
        strips = [tile_images(first["originals"][:max_images])]
    labels = ["originals"]
    for path, setting in members:
        with np.load(path) as data:
            if not np.array_equal(data["indices"], indices):
                raise ValueError(
                    f"{path} and {first_path} reconstruct different images of {name}; "
                    "evaluate every model of a dataset with the same evaluation seed"
                )
            strips.append(tile_images(data["reconstructions"][:max_images]))
        labels.append(setting_title(setting).replace("\n", " "))
    return strips, labels


def _draw_strips(ax: plt.Axes, strips: list[np.ndarray], labels: list[str] | None) -> None:
    """Stack the strips with white gaps into one image; label rows on the y axis."""
    gap = max(2, strips[0].shape[0] // 16)
    white = np.full((gap, *strips[0].shape[1:]), 255, dtype=np.uint8)
    rows = [part for strip in strips for part in (strip, white)][:-1]
    image = np.concatenate(rows, axis=0)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks([])
    row_height = strips[0].shape[0]
    ax.set_yticks([i * (row_height + gap) + row_height / 2 for i in range(len(strips))])
    ax.set_yticklabels(labels if labels is not None else [])
    ax.tick_params(axis="y", length=0)


def fig9_traversals(
    traversals: Sequence[str | os.PathLike],
    settings: Sequence[Mapping],
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
) -> plt.Figure:
    """Latent traversals: for each shown run (``settings[i]``, its ``traversals.npz`` at
    ``traversals[i]``), each latent swept over [−r, r] from one test image's μ and decoded, one
    row per latent by decreasing KL, each row labelled with its KL (nats): the collapsed latents
    (KL ≈ 0) are the rows that do not change."""
    use_style()
    check_settings(traversals, settings, "traversals")
    loaded = []
    for path in traversals:
        with np.load(path) as arrays:
            loaded.append({key: arrays[key] for key in arrays.files})
    columns = len(loaded)
    latents = max(len(t["order"]) for t in loaded)
    height = min(0.32 * latents + 0.8, MAX_FIGURE_HEIGHT)
    fig, axes = plt.subplots(
        1, columns, figsize=(PAGE_WIDTH, height), squeeze=False, layout="constrained"
    )
    for ax, traversal, setting in zip(axes[0], loaded, settings, strict=True):
        rows = [tile_images(traversal["images"][k]) for k in range(len(traversal["order"]))]
        image = np.concatenate(
            [np.pad(r, ((1, 1), (0, 0), (0, 0)), constant_values=255) for r in rows]
        )
        ax.imshow(
            image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255
        )
        height = image.shape[0] / len(rows)
        kl = traversal["kl"][traversal["order"]]
        ax.set_yticks(
            (np.arange(len(rows)) + 0.5) * height,
            labels=[
                f"z{j} · KL {value:.2f}" for j, value in zip(traversal["order"], kl, strict=True)
            ],
            fontsize=6,
        )
        values = traversal["values"]
        ax.set_xticks([])
        ax.set_xlabel(f"z from {values[0]:g} to {values[-1]:g}", fontsize=7)
        ax.set_title(f"{dataset_label(setting['dataset'])}\n{setting_title(setting)}", fontsize=8)
        ax.grid(False)
    save_figure(fig, pdf_path, png_path)
    return fig
