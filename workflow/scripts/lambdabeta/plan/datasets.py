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
