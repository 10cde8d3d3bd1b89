"""The claims rule's inputs and settings (its tables: ``lambdabeta.claims.tables``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..claims.tables import claim_inputs

__all__ = ["claim_inputs", "claim_settings", "mpi3d_dataset"]


def mpi3d_dataset(config: Mapping[str, Any]) -> str | None:
    """The trained dataset read from MPI3D-real's upstream file, if any."""
    datasets = config.get("datasets", {})
    names = [
        d
        for d in config.get("deep", {}).get("datasets", [])
        if datasets[d]["format"] == "mpi3d_npz"
    ]
    return names[0] if names else None


def claim_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The claims rule's ``params``: the arguments of ``ClaimSettings.from_config`` (every one
    of them changes a verdict)."""
    return {
        "claims": dict(config["claims"]),
        "reconstruction": config.get("deep", {}).get("reconstruction_metric", "train_bce"),
        "rho": float(config["selection"]["rho"]),
        "mpi3d_dataset": mpi3d_dataset(config),
        "figure_seed": config["figures"]["seed"],
    }
