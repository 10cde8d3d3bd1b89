"""What the figures of the deep experiments share: dataset and setting labels, reading a table,
the order of the dataset rows, image strips, and the settings of the chosen models of Figs 7-9.

Every figure function of the deep experiments (``sweeps``: Figs 4-5, ``tchebycheff``: Fig 6,
``images``: Figs 7 and 9, ``information``: Fig 8, ``adaptive``: the adaptive λ figure) takes its
tables (DataFrames, or paths of the CSV / NPZ files the pipeline writes) and the output paths,
draws one row of panels per dataset, and returns the saved (and closed) Figure, whose artists say
what was drawn. Heatmaps put β on the vertical axis, increasing upwards, and colour so that
brighter is better (the colour bar gives the values).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

Table = pd.DataFrame | str | os.PathLike

DATASET_LABELS = {
    "dsprites": "dSprites",
    "dsprites_procedural": "dSprites (procedural)",
    "shapes3d": "Shapes3D",
    "mpi3d_real": "MPI3D-real",
}


def setting_label(beta: float, lam: float) -> str:
    """``β=8, λ=32``."""
    return f"β={beta:g}, λ={lam:g}"


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def tile_images(images: np.ndarray, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Images k × H × W × C side by side as one H × (k·W + (k−1)·gap) × C strip."""
    _, height, _, channels = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (0, gap), (0, 0)), constant_values=fill)
    strip = padded.transpose(1, 0, 2, 3).reshape(height, -1, channels)
    return strip[:, : strip.shape[1] - gap]


def read_table(table: Table) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else pd.read_csv(table)


def dataset_order(table: pd.DataFrame, datasets: Sequence[str] | None) -> list[str]:
    """The datasets to draw, one row each: ``datasets`` (the config's order), or those of the
    table in its order."""
    present = list(dict.fromkeys(table["dataset"]))
    if datasets is None:
        return present
    missing = [name for name in datasets if name not in present]
    if missing:
        raise ValueError(f"no rows for the datasets {missing}; the table holds {present}")
    return list(datasets)


def phase_rows(table: pd.DataFrame, phase: str, figure: str) -> pd.DataFrame:
    rows = table[table["phase"] == phase]
    if rows.empty:
        raise ValueError(f"{figure}: the table has no {phase} rows")
    return rows


# ---- the chosen models of Figs 7-9 ----------------------------------------------------------


def check_settings(files: Sequence, settings: Sequence[Mapping], what: str) -> None:
    if len(files) != len(settings):
        raise ValueError(f"{len(files)} {what} files but {len(settings)} settings; they must pair")
    for setting in settings:
        missing = [key for key in ("dataset", "beta", "lambda") if key not in setting]
        if missing:
            raise ValueError(f"setting {dict(setting)} lacks the keys {missing}")


def setting_title(setting: Mapping) -> str:
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


def by_dataset(files: Sequence, settings: Sequence[Mapping]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for path, setting in zip(files, settings, strict=True):
        groups.setdefault(setting["dataset"], []).append((path, setting))
    return groups
