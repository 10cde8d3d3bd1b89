"""Where a dataset's files live: its verified upstream file and its prepared arrays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PREPARED_FILES = {"images": "images.npy", "factors": "factors.npy", "meta": "meta.json"}
"""The files of a prepared dataset (``lambdabeta.loader`` reads them)."""


def upstream_file(datasets: Mapping[str, Any], dataset: str) -> str:
    """Where the upstream file of a downloadable dataset lives under resources/."""
    return f"resources/downloads/{dataset}/{datasets[dataset]['file']}"


def prepared_files(dataset: str) -> dict[str, str]:
    """The uniform on-disk files of a prepared dataset (``{dataset}`` may be a wildcard)."""
    return {key: f"resources/datasets/{dataset}/{name}" for key, name in PREPARED_FILES.items()}


def is_downloaded(datasets: Mapping[str, Any], dataset: str) -> bool:
    """Whether the dataset comes from an upstream file (the procedural one is rendered)."""
    return datasets[dataset]["format"] != "procedural"


FORMAT_GRIDS = {
    "dsprites_npz": (("shape", "scale", "orientation", "pos_x", "pos_y"), (3, 6, 40, 32, 32)),
    "procedural": (("shape", "scale", "orientation", "pos_x", "pos_y"), (3, 6, 40, 32, 32)),
    "shapes3d_h5": (
        ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
        (10, 10, 10, 8, 4, 15),
    ),
    "mpi3d_npz": (
        ("object_color", "object_shape", "object_size", "camera_height", "background_color",
         "horizontal_axis", "vertical_axis"),
        (6, 6, 2, 3, 3, 40, 40),
    ),
}  # fmt: skip
"""The published factor grid of each dataset format: factor names and sizes (C order)."""


def dataset_size(source: Mapping[str, Any]) -> int | None:
    """How many images a dataset source prepares: its format's grid (or its ``factor_sizes``),
    each factor cut to its ``subgrid`` count; None for an unknown format."""
    if source.get("format") not in FORMAT_GRIDS:
        return None
    names, sizes = FORMAT_GRIDS[source["format"]]
    sizes = source.get("factor_sizes") or sizes
    subgrid = source.get("subgrid") or {}
    size = 1
    for name, full in zip(names, sizes, strict=False):
        size *= min(int(subgrid.get(name, full)), int(full))
    return size
