"""What one evaluation produces (:class:`EvaluationResult`) and its files: ``metrics.json``, the
MI matrices, the reconstructions and the traversals (``lambdabeta.evaluate``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..grid import RUN_KEYS
from ..io import atomic_path, write_json


@dataclass(frozen=True)
class ReconstructionSample:
    """Dataset rows ``indices`` (k), their images and reconstructions (uint8 k × H × W × C)."""

    indices: np.ndarray
    originals: np.ndarray
    reconstructions: np.ndarray


@dataclass(frozen=True)
class Traversals:
    """Each latent swept from a test image's μ: ``images`` (m × steps × H × W × C uint8, rows in
    ``order``, the latents by decreasing KL), the swept ``values``, each latent's ``kl`` and the
    ``original`` image (dataset row ``index``)."""

    index: int
    original: np.ndarray
    values: np.ndarray
    order: np.ndarray
    kl: np.ndarray
    images: np.ndarray


@dataclass(frozen=True)
class EvaluationResult:
    """Everything one evaluation produces.

    ``metrics`` holds JSON-ready values; ``mi_matrices`` the m × K mutual information (nats)
    between discretised latents (index ``latent``) and factors (one column per factor name) of
    each representation.
    """

    metrics: dict[str, Any]
    mi_matrices: dict[str, pd.DataFrame]
    reconstructions: ReconstructionSample
    traversals: Traversals

    @property
    def mi_matrix(self) -> pd.DataFrame:
        """The encoder mean's MI matrix (Fig 8's)."""
        return self.mi_matrices["mean"]


# ---- writers -----------------------------------------------------------------------------------


def write_evaluation(
    result: EvaluationResult,
    *,
    metrics_path: str | os.PathLike,
    mi_matrix_path: str | os.PathLike,
    reconstructions_path: str | os.PathLike,
    traversals_path: str | os.PathLike,
    mi_matrix_sampled_path: str | os.PathLike | None = None,
    run: Mapping[str, Any] | None = None,
) -> None:
    """Write ``metrics.json`` (run keys first), ``mi_matrix.csv`` (the mean's),
    ``mi_matrix_sampled.csv`` (when the sampled representation was scored and a path is given),
    ``reconstructions.npz`` and ``traversals.npz``.

    ``run`` identifies the model (``RUN_KEYS``: dataset, phase, beta, lambda, seed). Every file
    is written atomically.
    """
    record: dict[str, Any] = {}
    if run is not None:
        missing = [key for key in RUN_KEYS if key not in run]
        if missing:
            raise ValueError(f"run description lacks key(s) {missing} (expected {list(RUN_KEYS)})")
        record.update({key: run[key] for key in RUN_KEYS})
    clashes = sorted(set(record) & set(result.metrics))
    if clashes:
        raise ValueError(f"run keys {clashes} collide with metric names")
    record.update(result.metrics)
    write_json(metrics_path, record)
    matrices = {"mean": mi_matrix_path, "sampled": mi_matrix_sampled_path}
    for name, path in matrices.items():
        if path is not None:
            with atomic_path(path) as tmp:
                result.mi_matrices[name].to_csv(tmp, index=True, index_label="latent")
    sample = result.reconstructions
    _write_npz(reconstructions_path, originals=sample.originals,
               reconstructions=sample.reconstructions, indices=sample.indices)  # fmt: skip
    traversals = result.traversals
    _write_npz(traversals_path, index=traversals.index, original=traversals.original,
               values=traversals.values, order=traversals.order, kl=traversals.kl,
               images=traversals.images)  # fmt: skip


def _write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """The arrays, compressed, written whole or not at all."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
