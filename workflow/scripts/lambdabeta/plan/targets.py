"""The final outputs a config asks for: every figure and table of the studies it runs (the
figures: those of the registry, ``lambdabeta.plan.figures``, that the config wants)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import figures

LINEAR_TABLES = [
    *("linear_metrics.csv", "linear_summary.csv"),
    *("linear_phase.csv", "linear_rays.csv", "linear_adaptive.csv"),
]
DEEP_TABLES = ["deep_metrics.csv", "deep_summary.csv", "deep_summary.md", "deep_summary.tex"]
SELECTION_TABLES = ["selection.csv", "tchebycheff_scores.csv", "pareto_front.csv"]
LAMBDA_TABLES = ["lambda_effect.csv", "lambda_effect.md"]
CLAIMS_TABLES = ["claims.csv", "claims.md", "claims_verdicts.rst", "claims_lines.rst"]
COSTS_TABLES = ["job_costs.csv"]


def table_files(names: Iterable[str]) -> list[str]:
    return [f"results/tables/{name}" for name in names]


def all_targets(config: Mapping[str, Any]) -> list[str]:
    """Every final output ``config`` asks for."""
    targets = table_files(CLAIMS_TABLES + COSTS_TABLES)
    if figures.runs_linear(config):
        targets += table_files(LINEAR_TABLES)
        targets += figures.figure_files(figures.wanted(config, figures.LINEAR))
    if figures.runs_deep(config):
        targets += [f"results/datasets/{d}_samples.png" for d in config["deep"]["datasets"]]
        targets += table_files(DEEP_TABLES + SELECTION_TABLES + LAMBDA_TABLES)
        targets += figures.figure_files(figures.wanted(config, figures.DEEP))
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
