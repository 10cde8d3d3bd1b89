"""The effect of λ: paired-by-seed changes of the finetuned models against λ = 0 at the same β.

Every finetune of one stabilized model (dataset, β, seed) starts from the same weights, so the
change a λ makes is measured within a seed: for each metric x and each λ > 0,

    d_s = x(β, λ, seed s) − x(β, λ = 0, seed s),

over the seeds s that have both runs, and the change is the mean of the d_s with its Student t
interval over seeds at the claims' level (:func:`lambdabeta.statistics.t_test`; 95 % at the
default one-sided 2.5 %), the interval the claims judge λ by.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import scores
from .aggregate import BASELINE_LAMBDA, _fixed, _markdown_table
from .grid import FINETUNE
from .statistics import LEVEL, Interval, t_test

EFFECT_METRICS = ("train_bce", "recon_nll", "mig", "sap", "im", "active_latents")
"""The columns every λ effect table has: both reconstruction measures, the paper's scores of
the encoder mean and the active latents (``effect_metrics`` adds the vocabulary's others)."""


def effect_metrics(metrics: pd.DataFrame) -> list[str]:
    """``EFFECT_METRICS``, then every other readable column of the score vocabulary
    (``lambdabeta.scores.readable_columns``: the other scores, of the mean and the sampled z)
    that the table has."""
    others = [c for c in scores.readable_columns() if c not in EFFECT_METRICS and c in metrics]
    return [*EFFECT_METRICS, *others]


class Finetunes:
    """The finetuned runs of a metrics table, grouped once by (dataset, β, λ) and sorted by
    seed, so that many paired comparisons read them without filtering the table again."""

    def __init__(self, metrics: pd.DataFrame):
        runs = metrics[metrics["phase"] == FINETUNE].sort_values("seed")
        self._groups = {
            (dataset, float(beta), float(lam)): block
            for (dataset, beta, lam), block in runs.groupby(["dataset", "beta", "lambda"])
        }
        self._columns: dict[tuple, np.ndarray] = {}

    def runs(self, dataset: str, beta: float, lam: float) -> pd.DataFrame | None:
        """The runs of one setting, sorted by seed; None where the grid lacks it."""
        return self._groups.get((dataset, float(beta), float(lam)))

    def _column(self, key: tuple, column: str) -> tuple[np.ndarray, np.ndarray]:
        if (key, column) not in self._columns:
            block = self._groups[key]
            values = block[column].to_numpy(dtype=float)
            self._columns[key, column] = (block["seed"].to_numpy(), values)
        return self._columns[key, column]

    def differences(self, dataset: str, beta: float, lam: float, column: str) -> pd.Series:
        """d_s = x(β, λ, s) − x(β, λ = 0, s), indexed by seed (ascending). Only seeds with both
        runs and finite values take part. Empty when either setting is absent."""
        treated = (dataset, float(beta), float(lam))
        baseline = (dataset, float(beta), BASELINE_LAMBDA)
        if treated not in self._groups or baseline not in self._groups:
            return pd.Series(dtype=float)
        seeds, x = self._column(treated, column)
        base_seeds, base = self._column(baseline, column)
        common, i, j = np.intersect1d(seeds, base_seeds, return_indices=True)
        differences = x[i] - base[j]
        finite = np.isfinite(differences)
        return pd.Series(differences[finite], index=pd.Index(common[finite], name="seed"))


def paired_differences(
    metrics: pd.DataFrame, dataset: str, beta: float, lam: float, column: str
) -> pd.Series:
    """d_s = x(β, λ, s) − x(β, λ = 0, s) of the finetuned runs, indexed by seed (ascending)
    (:meth:`Finetunes.differences`)."""
    return Finetunes(metrics).differences(dataset, beta, lam, column)


def lambda_change(
    finetunes: Finetunes,
    dataset: str,
    beta: float,
    lam: float,
    column: str,
    level: float = LEVEL,
) -> Interval:
    """Mean paired change of ``column`` from λ = 0 to ``lam`` at ``beta``, with its two-sided
    1 − 2·``level`` Student t interval."""
    differences = finetunes.differences(dataset, beta, lam, column)
    return t_test(differences.to_numpy(), alpha=level).interval


def lambda_effects(
    metrics: pd.DataFrame,
    level: float = LEVEL,
    columns: Sequence[str] = EFFECT_METRICS,
) -> pd.DataFrame:
    """The λ effect table: one row per dataset, β and λ > 0 of the finetuned grid.

    Columns ``dataset, beta, lambda, n_seeds``, then per metric x of ``columns``
    ``x_change, x_ci_low, x_ci_high``: the mean paired change against λ = 0 at the same β and
    its 1 − 2·``level`` interval. ``n_seeds`` counts the seeds paired for the first metric. A
    grid without λ = 0 gives an empty table (there is nothing to compare with).
    """
    missing = [
        c for c in ("dataset", "phase", "beta", "lambda", "seed", *columns) if c not in metrics
    ]
    if missing:
        raise ValueError(f"the metrics table lacks the columns {missing}")
    finetuned = metrics[metrics["phase"] == FINETUNE]
    finetunes = Finetunes(metrics)
    rows = []
    for (dataset, beta), runs in finetuned.groupby(["dataset", "beta"], sort=True):
        if not (runs["lambda"] == BASELINE_LAMBDA).any():
            continue
        for lam in sorted(runs.loc[runs["lambda"] > BASELINE_LAMBDA, "lambda"].unique()):
            row = {"dataset": dataset, "beta": beta, "lambda": lam}
            for i, column in enumerate(columns):
                change = lambda_change(finetunes, dataset, beta, lam, column, level)
                if i == 0:
                    row["n_seeds"] = change.n
                row |= {
                    f"{column}_change": change.estimate,
                    f"{column}_ci_low": change.low,
                    f"{column}_ci_high": change.high,
                }
            rows.append(row)
    header = ["dataset", "beta", "lambda", "n_seeds"]
    header += [f"{c}_{part}" for c in columns for part in ("change", "ci_low", "ci_high")]
    return pd.DataFrame(rows, columns=header)


def lambda_effects_markdown(effects: pd.DataFrame, columns: Sequence[str] = EFFECT_METRICS) -> str:
    """The λ effect table as Markdown, one table per dataset; cells read ``change [low, high]``."""
    lines = [
        "# The effect of λ: paired change against λ = 0 at the same β",
        "",
        "Mean over seeds of x(β, λ, seed) − x(β, 0, seed), with its Student t interval over "
        "seeds (95 % at the default claims.level) in brackets.",
        "",
    ]
    if effects.empty:
        return "\n".join([*lines, "No finetuned λ > 0 has a λ = 0 run to compare with.", ""])
    for dataset, block in effects.groupby("dataset", sort=False):
        header = ["β", "λ", "seeds", *(scores.label(c) for c in columns)]
        rows = []
        for _, row in block.iterrows():
            cells = []
            for column in columns:
                digits = scores.decimals(column)
                low = _fixed(row[f"{column}_ci_low"], digits, True)
                high = _fixed(row[f"{column}_ci_high"], digits, True)
                cells.append(f"{_fixed(row[f'{column}_change'], digits, True)} [{low}, {high}]")
            rows.append([f"{row['beta']:g}", f"{row['lambda']:g}", f"{row['n_seeds']:d}", *cells])
        lines += [f"## {dataset}", "", _markdown_table(header, rows), ""]
    return "\n".join(lines)
