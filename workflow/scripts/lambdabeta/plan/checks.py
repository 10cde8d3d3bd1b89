"""Checks of the config that its schema cannot express; each error names the config key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import grid
from ..linear.jobs import Dims


def config_error(key: str, message: str) -> ValueError:
    """The error of a bad config value: ``config key '<key>': <message>``."""
    return ValueError(f"config key '{key}': {message}")


def check_config(config: Mapping[str, Any]) -> None:
    """Raise the ``config_error`` of the first problem of a schema-validated config."""
    linear = config.get("linear")
    if linear is not None:
        names = [Dims(**dims).name for dims in linear["dims"]]
        if len(set(names)) != len(names):
            raise config_error("linear.dims", f"entries must be distinct, got {names}")
        for dims in linear["dims"]:
            if dims["m"] < 2:
                raise config_error(
                    "linear.dims", f"m must be at least 2 for SAP's top-two gap: {dims}"
                )
        if linear.get("instance_file") is not None:
            for dims in linear["dims"]:
                path = linear["instance_file"].format(**dims)
                if not os.path.isfile(path):
                    raise config_error(
                        "linear.instance_file", f"{path} (for {dims}) does not exist"
                    )
    deep, datasets = config.get("deep", {"datasets": []}), config.get("datasets", {})
    for name in deep["datasets"]:
        if name not in datasets:
            raise config_error(
                "deep.datasets",
                f"'{name}' is not defined under `datasets:` (defined: {sorted(datasets)})",
            )
    if deep["datasets"] and config["figures"]["seed"] not in deep["seeds"]:
        raise config_error(
            "figures.seed",
            f"figure seed {config['figures']['seed']} is not one of the grid's seeds "
            f"{deep['seeds']}",
        )


def figure_runs(config: Mapping[str, Any], pairs) -> list[dict[str, Any]]:
    """The runs (records with their folder) that show the requested (β, λ) ``pairs``."""
    deep = config.get("deep", {"datasets": []})
    if not deep["datasets"]:
        return []
    chosen = grid.figure_runs(deep, pairs, config["figures"]["seed"])
    return [figure_run.record() for figure_run in chosen]
