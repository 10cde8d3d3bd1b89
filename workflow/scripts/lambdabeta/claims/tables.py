"""The tables the claims are judged from: where each one lives, and what its absence means.

Each ``ClaimTable`` names the study that produces it, the columns its claims need, the files
the claims rule reads for it (``inputs``: input name → path or paths, from the validated config)
and how they become one table (``read``, done by ``lambdabeta.claims.judge.read_tables``). A
claim names the tables it reads (``lambdabeta.claims.registry.claim``); the claims rule's
inputs are ``claim_inputs(config)``, the files of every table of the studies the config runs.

A claim whose study the config does not run is ``not run`` with its study's reason
(``STUDIES``); one whose study runs but whose table is absent (no contraction traces, say) with
the table's ``missing`` reason; an ``optional`` table reaches its judge as None instead.

This module uses the standard library only: the workflow definition imports it in the Snakemake
process, whose environment need not have the project's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import grid
from ..linear.jobs import Dims

STUDIES = {
    "linear": ("linear study", "the config has no linear study"),
    "deep": ("deep study", "the config trains no deep models"),
}
"""The scope and reason of the ``not run`` rows of a study the config does not run."""

NLL = "{nll}"
"""Stands for the deep NLL column (``ClaimSettings.nll``) in a table's required columns."""

Inputs = Callable[[Mapping[str, Any]], dict[str, str | list[str]]]


@dataclass(frozen=True)
class ClaimTable:
    """One table the claims read (module docstring)."""

    name: str
    study: str
    keys: tuple[str, ...]  # the names of its files among the claims rule's inputs
    inputs: Inputs
    read: str  # "csv": one file; "csvs": several, concatenated; "mi_matrices": MI concentration
    columns: tuple[str, ...] = ()
    missing: str = ""
    optional: bool = False


def _linear_dims(config: Mapping[str, Any]) -> list[str]:
    return [Dims(**dims).name for dims in config["linear"]["dims"]]


def _mi_suffixes(config: Mapping[str, Any]) -> list[str]:
    """The MI matrix files of each scored representation: mi_matrix.csv (the encoder mean's)
    and, when the sampled representation is scored, mi_matrix_sampled.csv."""
    scored = config["deep"].get("evaluate", {}).get("representations", ["mean"])
    return [""] + (["_sampled"] if "sampled" in scored else [])


def concentration_runs(config: Mapping[str, Any]) -> dict[str, list[grid.Run]]:
    """Fig 8's first (``reference``) and last (``concentrated``) settings, nearest grid points,
    for every seed and dataset: the runs whose MI matrices ``qualitative.mi_concentrated``
    compares (none when ``figures.mi_heatmaps`` names fewer than two settings)."""
    deep, pairs = config["deep"], config["figures"]["mi_heatmaps"]
    if len(pairs) < 2:
        return {"reference": [], "concentrated": []}
    shown = grid.figure_runs(deep, [pairs[0], pairs[-1]], config["figures"]["seed"])
    runs: dict[str, list[grid.Run]] = {"reference": [], "concentrated": []}
    for index, figure_run in enumerate(shown):
        role = "reference" if index % 2 == 0 else "concentrated"
        chosen = figure_run.run
        runs[role] += [
            grid.Run(chosen.dataset, chosen.beta, seed, chosen.lam) for seed in deep["seeds"]
        ]
    return runs


TABLES = {
    table.name: table
    for table in (
        ClaimTable(
            "linear",
            "linear",
            ("linear",),
            lambda config: {"linear": "results/tables/linear_metrics.csv"},
            "csv",
            columns=(
                *("n", "m", "s", "method", "beta", "lambda", "restart"),
                *("sap", "im", "mi_total", "a_norm", "b_norm", "sigma_w_dist", "sigma_z_dist"),
            ),
        ),
        ClaimTable(
            "traces",
            "linear",
            ("traces",),
            lambda config: {
                "traces": [
                    f"results/linear/{name}/contraction.csv" for name in _linear_dims(config)
                ]
            },
            "csvs",
            columns=("n", "m", "s", "beta", "lambda", "restart", "iteration", "b_norm"),
            missing="no contraction traces",
        ),
        ClaimTable(
            "phase",
            "linear",
            ("phase",),
            lambda config: {"phase": "results/tables/linear_phase.csv"},
            "csv",
            columns=(
                *("n", "m", "s", "lambda", "direction"),
                *("predicted_beta", "measured_beta", "relative_difference"),
            ),
            missing="no phase study",
        ),
        ClaimTable(
            "rays",
            "linear",
            ("rays",),
            lambda config: {"rays": "results/tables/linear_rays.csv"},
            "csv",
            columns=("n", "m", "s", "c", "beta", "lambda", "restart", "nll", "kl", "l2"),
            missing="no phase study",
        ),
        ClaimTable(
            "linear_adaptive",
            "linear",
            ("linear_adaptive",),
            lambda config: {"linear_adaptive": "results/tables/linear_adaptive.csv"},
            "csv",
            columns=("n", "m", "s", "beta", "lambda", "exact_lambda", "relative_error"),
            missing="no phase study",
        ),
        ClaimTable(
            "metrics",
            "deep",
            ("metrics",),
            lambda config: {"metrics": "results/tables/deep_metrics.csv"},
            "csv",
            columns=(
                *("dataset", "phase", "beta", "lambda", "seed"),
                *(NLL, "mig", "sap", "im", "active_latents"),
            ),
        ),
        ClaimTable(
            "selection",
            "deep",
            ("selection",),
            lambda config: {"selection": "results/tables/selection.csv"},
            "csv",
            missing="no selection table",
        ),
        ClaimTable(
            "concentration",
            "deep",
            tuple(f"mi_{r}{s}" for s in ("", "_sampled") for r in ("reference", "concentrated")),
            lambda config: {
                f"mi_{role}{suffix}": [f"{run.path}/mi_matrix{suffix}.csv" for run in runs]
                for suffix in _mi_suffixes(config)
                for role, runs in concentration_runs(config).items()
            },
            "mi_matrices",
            optional=True,
        ),
    )
}


def studies_run(config: Mapping[str, Any]) -> list[str]:
    """The studies (``STUDIES``) the config runs."""
    studies = []
    if config.get("linear") is not None:
        studies.append("linear")
    if config.get("deep", {}).get("datasets"):
        studies.append("deep")
    return studies


def claim_inputs(config: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """The claims rule's inputs: every file of every table of the studies ``config`` runs."""
    studies = studies_run(config)
    inputs: dict[str, str | list[str]] = {}
    for table in TABLES.values():
        if table.study in studies:
            inputs |= table.inputs(config)
    return inputs
