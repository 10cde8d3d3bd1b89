"""Run the real workflow with Snakemake in a scratch directory, for the integration tests."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"

TINY_LINEAR = {
    "linear": {
        "dims": [{"n": 12, "m": 3, "s": 2}],
        "restarts": 2,
        "betas": [1, 8],
        "lambdas": [0, 4],
        "methods": ["fixed_point", "adamw"],
        "adamw": {"steps": 200, "lr": 1.0e-2},
        "contraction": {"betas": [2, 4], "lambdas": [0, 2], "iterations": 10, "restarts": 2},
        "phase": {
            **{"lambdas": [0.5], "rays": [0.25], "ray_betas": [2, 4], "ray_restarts": 1},
            **{"scan": [1.0e-2, 1.0e3, 2], "resolution": 1.0e-2, "map_points": 4},
            "max_iter": 5000,
            "adaptive_betas": [2, 8],
            "adaptive_iterations": 60,
        },
    },
    "deep": {"datasets": [], "betas": [1], "lambdas": [0], "seeds": [0]},
}
"""A linear study of seconds and no deep runs: the tiny config of the linear workflow tests."""


def write_config(directory: Path, config: dict, name: str = "test.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path, *args: str, config: Path | None = None, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    """``snakemake -s <repo>/Snakefile -d workdir [args] [--configfile config]``.

    Targets and options go in ``args``; the config file comes last, because ``--configfile``
    takes several values and would swallow a target after it.
    """
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    if config is not None:
        command += ["--configfile", str(config)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def with_setting(config: dict, path: str, value) -> dict:
    """A copy of ``config`` with the dotted key ``path`` (e.g. ``deep.train.lr``) set to
    ``value``, creating the sections on the way."""
    config = copy.deepcopy(config)
    *parents, key = path.split(".")
    node = config
    for parent in parents:
        node = node.setdefault(parent, {})
    node[key] = value
    return config
