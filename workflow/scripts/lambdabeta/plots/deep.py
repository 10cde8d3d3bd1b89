"""Figures of the deep experiments (Figs 4-8), each saved as PDF and PNG.

Every figure function takes its tables (DataFrames, or paths of the CSV / NPZ files the pipeline
writes) and the output paths, draws one row of panels per dataset, and returns the saved (and
closed) Figure, whose artists say what was drawn:

- :func:`fig4_beta_sweep`       stabilized β-VAEs: metrics against β, every seed and mean ± sd;
- :func:`fig5_lambda_heatmaps`  finetuned λβ-VAEs: β × λ heatmaps of the mean metrics;
- :func:`fig6_tchebycheff`      β × λ heatmaps of the selection score S, minimiser marked;
- :func:`fig7_reconstructions`  originals and reconstructions of chosen models;
- :func:`fig8_mi_heatmaps`      latent × factor mutual information of chosen models.

Heatmaps put β on the vertical axis, increasing upwards, and colour so that brighter is better
(the colour bar gives the values).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from ..aggregate import summarize
from ..selection import PAPER_RECONSTRUCTION_METRIC, reconstruction_column
from .heatmaps import (
    MAX_FIGURE_HEIGHT,
    annotated_heatmap,
    annotation_fontsize,
    colormap,
    grid_heatmap,
    heatmap_figure,
    label_row,
)
from .style import LABELS, PAGE_WIDTH, save_figure, use_style

Table = pd.DataFrame | str | os.PathLike

DATASET_LABELS = {
    "dsprites": "dSprites",
    "dsprites_procedural": "dSprites (procedural)",
    "shapes3d": "Shapes3D",
    "mpi3d_real": "MPI3D-real",
}
MI_LABEL = "MI (nats)"
MINIMIZER_COLOR = "red"
ADAPTIVE_MARK_HEIGHT = 0.12  # where in its β row (0 bottom, 1 top) Fig 6 marks an adaptive run

# Panel geometry, in inches.
SWEEP_ROW_HEIGHT = 1.7
SEED_DODGE = 0.3  # width, in log2 β, over which the seeds of one β are spread in Fig 4
MI_CELL_HEIGHT = 0.15


# ---- small pure helpers ---------------------------------------------------------------------


def setting_label(beta: float, lam: float) -> str:
    """``β=8, λ=32``."""
    return f"β={beta:g}, λ={lam:g}"


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def sweep_metrics(
    reconstruction: str = PAPER_RECONSTRUCTION_METRIC, representation: str = "mean"
) -> tuple[str, str, str]:
    """The paper's panels of Figs 4-5, in its order: the NLL (the column of the
    ``deep.reconstruction_metric``, titled by its own label: train BCE or recon. NLL), SAP, MIG;
    of the encoder mean (the paper's) or of the sampled representation (``_sampled`` columns)."""
    suffix = "" if representation == "mean" else f"_{representation}"
    return reconstruction_column(reconstruction), f"sap{suffix}", f"mig{suffix}"


SWEEP_METRICS = sweep_metrics()  # the paper's panels with the paper's NLL


def tile_images(images: np.ndarray, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Images k × H × W × C side by side as one H × (k·W + (k−1)·gap) × C strip."""
    _, height, _, channels = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (0, gap), (0, 0)), constant_values=fill)
    strip = padded.transpose(1, 0, 2, 3).reshape(height, -1, channels)
    return strip[:, : strip.shape[1] - gap]


def _read_table(table: Table) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else pd.read_csv(table)


def _datasets(table: pd.DataFrame, datasets: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(table["dataset"]))
    if datasets is None:
        return present
    missing = [name for name in datasets if name not in present]
    if missing:
        raise ValueError(f"no rows for the datasets {missing}; the table holds {present}")
    return list(datasets)


def _phase_rows(table: pd.DataFrame, phase: str, figure: str) -> pd.DataFrame:
    rows = table[table["phase"] == phase]
    if rows.empty:
        raise ValueError(f"{figure}: the table has no {phase} rows")
    return rows


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
    runs = _phase_rows(_read_table(metrics), "stabilize", "Fig 4")
    names = _datasets(runs, datasets)
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
                ax.set_title(LABELS.get(metric, metric))
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
    table = _phase_rows(_read_table(summary), "finetune", "Fig 5")
    names = _datasets(table, datasets)
    n_betas, n_lambdas = table["beta"].nunique(), table["lambda"].nunique()
    fig, axes, cell_size = heatmap_figure(len(names), len(columns), n_betas, n_lambdas)
    for row, name in enumerate(names):
        rows = table[table["dataset"] == name]
        for col, metric in enumerate(columns):
            ax = axes[row, col]
            frame = rows.pivot(index="beta", columns="lambda", values=f"{metric}_mean")
            grid_heatmap(ax, frame, cmap=colormap(metric), cell_size=cell_size)
            if row == 0:
                ax.set_title(LABELS.get(metric, metric))
            if col > 0:
                ax.set_ylabel("")
        label_row(axes[row, 0], dataset_label(name))
    save_figure(fig, pdf_path, png_path)
    return fig


# ---- Fig 6 ----------------------------------------------------------------------------------


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
    table = _read_table(scores)
    names = _datasets(table, datasets)
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
                _mark_adaptive(ax, frame, _read_table(adaptive), name)
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


# ---- Figs 7-8: chosen models ----------------------------------------------------------------


def _check_settings(files: Sequence, settings: Sequence[Mapping], what: str) -> None:
    if len(files) != len(settings):
        raise ValueError(f"{len(files)} {what} files but {len(settings)} settings; they must pair")
    for setting in settings:
        missing = [key for key in ("dataset", "beta", "lambda") if key not in setting]
        if missing:
            raise ValueError(f"setting {dict(setting)} lacks the keys {missing}")


def _setting_title(setting: Mapping) -> str:
    """``β=8, λ=32``, noting a stabilized model and a requested setting not in the grid."""
    title = setting_label(setting["beta"], setting["lambda"])
    if setting.get("phase") == "stabilize":
        title += " (stabilized)"
    requested = (setting.get("requested_beta"), setting.get("requested_lambda"))
    if None not in requested and (
        not math.isclose(requested[0], setting["beta"])
        or not math.isclose(requested[1], setting["lambda"])
    ):
        title += f"\n(nearest to {setting_label(*requested)})"
    return title


def _by_dataset(files: Sequence, settings: Sequence[Mapping]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for path, setting in zip(files, settings, strict=True):
        groups.setdefault(setting["dataset"], []).append((path, setting))
    return groups


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
    _check_settings(reconstructions, settings, "reconstruction")
    blocks = []
    for name, members in _by_dataset(reconstructions, settings).items():
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
        labels.append(_setting_title(setting).replace("\n", " "))
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
    _check_settings(mi_matrices, settings, "MI matrix")
    groups = _by_dataset(mi_matrices, settings)
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
            ax.set_title(_setting_title(setting))
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
    _check_settings(traversals, settings, "traversals")
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
        ax.set_title(f"{dataset_label(setting['dataset'])}\n{_setting_title(setting)}", fontsize=8)
        ax.grid(False)
    save_figure(fig, pdf_path, png_path)
    return fig


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
