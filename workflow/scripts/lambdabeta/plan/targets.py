"""The final outputs a config asks for: every figure and table of the studies it runs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

LINEAR_FIGURES = [
    "fig2_linear_beta_sweep",
    "fig3_linear_lambda_heatmaps",
    "fig_linear_contraction",
    "fig_linear_phase",
]
DEEP_FIGURES = [
    "fig4_beta_sweep",
    "fig5_lambda_heatmaps",
    "fig6_tchebycheff",
    "fig7_reconstructions",
    "fig8_mi_heatmaps",
    "fig9_traversals",
]
LINEAR_TABLES = [
    *("linear_metrics.csv", "linear_summary.csv"),
    *("linear_phase.csv", "linear_rays.csv", "linear_adaptive.csv"),
]
DEEP_TABLES = ["deep_metrics.csv", "deep_summary.csv", "deep_summary.md", "deep_summary.tex"]
SELECTION_TABLES = ["selection.csv", "tchebycheff_scores.csv", "pareto_front.csv"]
LAMBDA_TABLES = ["lambda_effect.csv", "lambda_effect.md"]
CLAIMS_TABLES = ["claims.csv", "claims.md", "claims_verdicts.rst", "claims_lines.rst"]
COSTS_TABLES = ["job_costs.csv"]


def figure_files(names: Iterable[str]) -> list[str]:
    """The PDF and PNG of each named figure."""
    return [f"results/figures/{name}.{ext}" for name in names for ext in ("pdf", "png")]


def table_files(names: Iterable[str]) -> list[str]:
    return [f"results/tables/{name}" for name in names]


SAMPLED_FIGURES = ["fig4_beta_sweep_sampled", "fig5_lambda_heatmaps_sampled"]
"""Figs 4-5 of the sampled representation, when ``deep.evaluate.representations`` scores it."""


def deep_figures(config: Mapping[str, Any]) -> list[str]:
    """The deep figures the config asks for: the paper's, the traversals, and Figs 4-5 of the
    sampled representation when it is scored."""
    scored = config["deep"].get("evaluate", {}).get("representations", ["mean"])
    adaptive = (config["deep"].get("adaptive") or {}).get("enabled", False)
    return (
        DEEP_FIGURES
        + (SAMPLED_FIGURES if "sampled" in scored else [])
        + (["fig_adaptive"] if adaptive else [])
    )


def all_targets(config: Mapping[str, Any]) -> list[str]:
    """Every final output ``config`` asks for."""
    targets = table_files(CLAIMS_TABLES + COSTS_TABLES)
    if config.get("linear") is not None:
        targets += table_files(LINEAR_TABLES) + figure_files(LINEAR_FIGURES)
    datasets = config.get("deep", {}).get("datasets", [])
    if datasets:
        targets += [f"results/datasets/{d}_samples.png" for d in datasets]
        targets += table_files(DEEP_TABLES + SELECTION_TABLES + LAMBDA_TABLES)
        targets += figure_files(deep_figures(config))
    return targets


def lost_intermediates(
    table: str, sources: Iterable[str], exists: Callable[[str], bool] = os.path.exists
) -> list[str]:
    """The ``sources`` of an existing ``table`` that are gone from disk.

    Snakemake does not remake a deleted intermediate file while the outputs built from it exist
    and are newer ("Nothing to be done"), so a deleted ``metrics.json`` would leave its old
    values in ``deep_metrics.csv`` for good, and a corrupt model moved aside (``<file>.corrupt``)
    would never be trained again. Asking for the lost files as targets remakes them, and, being
    newer than what was built from them, everything after them.
    """
    if not exists(table):
        return []
    return [source for source in sources if not exists(source)]
