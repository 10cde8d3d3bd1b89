"""Tidy tables over the deep runs: one row per model, mean ± sd over seeds, changes from a baseline.

Three tables, each a plain :class:`pandas.DataFrame`:

- ``deep_metrics`` (:func:`collect_metrics`): one row per evaluated model, read from the
  ``metrics.json`` files of the evaluation stage.
- ``deep_summary`` (:func:`summarize`, then :func:`changes_vs_baseline`): per
  (dataset, phase, β, λ) the mean and sample standard deviation over seeds of every metric, the
  number of seeds, and each mean's change from the dataset's baseline model.
- readable renderings of the summary (:func:`summary_markdown`, :func:`summary_latex`).

A metric that is not finite in some run (a diverged training, say) is kept as NaN in
``deep_metrics`` and makes the mean and sd of its group NaN, so it shows in every table instead of
being averaged away.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from . import scores
from .grid import RECORD_PHASES, RUN_KEYS
from .io import read_json

logger = logging.getLogger("lambdabeta")

# the phases in protocol order, which is also the order of every table
PHASE_TITLES = {
    "stabilize": "stabilization (β-VAE, λ = 0)",
    "finetune": "finetuning (λβ-VAE)",
    "adaptive": "finetuning with adaptive λ",
}
GROUP_KEYS = ("dataset", "phase", "beta", "lambda")
SUMMARY_METRICS = ("recon_nll", "train_bce", "mig", "sap", "im", "active_latents", "kl_total")
"""The columns every metrics record must have (the paper's scores of the encoder mean and the
model's measures); the others of ``lambdabeta.scores`` are kept where every record has them."""


def optional_metrics() -> list[str]:
    """The other columns of the score vocabulary: the other representations' scores, the scores
    whose settings may turn them off (DCI, FactorVAE), the permutation nulls, the controller's."""
    return [c for c in scores.all_columns() if c not in SUMMARY_METRICS]


# Scalars of metrics.json kept in deep_metrics besides the metrics: how each model was evaluated,
# and what a latent independent of every factor scores (the plug-in bias of MIG and I_m).
EVALUATION_KEYS = ("num_train", "num_test", "num_bins", "mig_bias", "im_bias", "eval_seconds")

# The baseline every change is measured from: the plain VAE without the λ penalty.
BASELINE_BETA = 1.0
BASELINE_LAMBDA = 0.0


# ---- deep_metrics ---------------------------------------------------------------------------


def collect_metrics(
    paths: Iterable[str | os.PathLike],
    columns: Sequence[str] = SUMMARY_METRICS,
    optional: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read ``metrics.json`` files into one table, one row per evaluated model.

    Columns: the run keys ``dataset, phase, beta, lambda, seed``, then the metric ``columns``
    and the ``optional`` ones every record has, then ``EVALUATION_KEYS`` where present.
    Rows are sorted by dataset, phase (stabilization first), β, λ and seed. A stabilization
    record whose ``lambda`` is null is read as λ = 0, the value it was trained at.

    Raises ``ValueError`` naming the file when a record lacks a key or has an unknown phase, and
    naming both files when two records describe the same run. No file is an error too: an empty
    table would only fail later, further from the cause.
    """
    optional = optional_metrics() if optional is None else optional
    records, sources = [], {}
    paths = list(paths)
    present = [read_json(path) for path in paths]
    columns = [*columns, *(c for c in optional if present and all(c in r for r in present))]
    for path, record in zip(paths, present, strict=True):
        missing = [key for key in (*RUN_KEYS, *columns) if key not in record]
        if missing:
            raise ValueError(f"{path}: metrics record lacks the keys {missing}")
        if record["phase"] not in RECORD_PHASES:
            raise ValueError(
                f"{path}: phase is {record['phase']!r}, expected one of {RECORD_PHASES}"
            )
        if record["lambda"] is None and record["phase"] == "stabilize":
            record["lambda"] = 0.0
        row = {key: record[key] for key in (*RUN_KEYS, *columns)}
        row.update({key: record[key] for key in EVALUATION_KEYS if key in record})
        run = tuple(row[key] for key in RUN_KEYS)
        if run in sources:
            described = dict(zip(RUN_KEYS, run, strict=True))
            raise ValueError(f"{sources[run]} and {path} both hold the run {described}")
        sources[run] = path
        records.append(row)
    if not records:
        raise ValueError("no metrics files were given")

    table = pd.DataFrame.from_records(records)
    table = table.astype({"dataset": str, "phase": str, "beta": float, "lambda": float})
    table["seed"] = table["seed"].astype(int)
    table[list(columns)] = table[list(columns)].astype(float)
    if "final_lambda" in table:  # a static λ's is its λ
        table["final_lambda"] = table["final_lambda"].fillna(table["lambda"])
    _warn_non_finite(table, [c for c in columns if not c.startswith("control_")])
    return sort_runs(table, RUN_KEYS)


def sort_runs(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``table`` sorted by ``keys``, phases in protocol order (stabilization first)."""

    def protocol_order(column: pd.Series) -> pd.Series:
        return column.map(RECORD_PHASES.index) if column.name == "phase" else column

    return table.sort_values(list(keys), key=protocol_order, ignore_index=True)


def _warn_non_finite(table: pd.DataFrame, columns: Sequence[str]) -> None:
    bad = ~np.isfinite(table[list(columns)].to_numpy())
    for row, column in zip(*np.nonzero(bad), strict=True):
        run = ", ".join(f"{key}={table.at[row, key]}" for key in RUN_KEYS)
        name = columns[column]
        logger.warning("%s is %s for the run %s", name, table.at[row, name], run)


# ---- deep_summary ---------------------------------------------------------------------------


def metric_columns(metrics: pd.DataFrame) -> list[str]:
    """The metrics of a deep_metrics table: the columns of the score vocabulary it has."""
    return [c for c in scores.all_columns() if c in metrics]


def summarize(metrics: pd.DataFrame, columns: Sequence[str] = SUMMARY_METRICS) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds, per (dataset, phase, β, λ).

    For each metric ``x`` of ``columns``: ``x_mean`` = (1/n) Σ_s x_s and
    ``x_sd`` = sqrt(Σ_s (x_s − x_mean)² / (n − 1)), over the n seeds of the group; ``n_seeds`` is n.
    A group of one seed has ``x_sd`` = 0 (its ``n_seeds`` of 1 tells the reader there is no
    spread to estimate). A NaN in any seed makes that group's mean and sd NaN.
    """
    missing = [column for column in (*GROUP_KEYS, *columns) if column not in metrics]
    if missing:
        raise ValueError(f"metrics table lacks the columns {missing}")
    # an adaptive finetune's λ is NaN: its group keeps it
    groups = metrics.groupby(list(GROUP_KEYS), sort=True, dropna=False)[list(columns)]
    n_seeds = groups.size()
    # pandas skips NaN in group reductions; a group with a NaN is blanked out explicitly
    complete = groups.count().eq(n_seeds, axis=0)
    means = groups.mean().where(complete)
    single_seed = means.notna() & n_seeds.eq(1).to_numpy()[:, None]
    sds = groups.std(ddof=1).where(complete).mask(single_seed, 0.0)

    summary = pd.DataFrame({"n_seeds": n_seeds})
    for column in columns:
        summary[f"{column}_mean"] = means[column]
        summary[f"{column}_sd"] = sds[column]
    return sort_runs(summary.reset_index(), GROUP_KEYS)


def summary_metrics(summary: pd.DataFrame) -> list[str]:
    """Metric names of a summary table: those with a ``<name>_mean`` column, in column order."""
    return [column.removesuffix("_mean") for column in summary if column.endswith("_mean")]


def changes_vs_baseline(
    summary: pd.DataFrame,
    baseline_beta: float = BASELINE_BETA,
    baseline_lambda: float = BASELINE_LAMBDA,
) -> pd.DataFrame:
    """``summary`` with each mean's change from the baseline of its dataset and phase.

    For each metric ``x``: ``x_change`` = ``x_mean`` − ``x_mean`` at the baseline, where the
    baseline of a (dataset, phase) block is its row at (β = ``baseline_beta``,
    λ = ``baseline_lambda``): finetuned models are compared with the finetuned (1, 0) model,
    stabilized ones with the stabilized β = 1 model. When the block has no such β its smallest β
    is used, and likewise for λ; the columns ``baseline_beta`` and ``baseline_lambda`` name the
    baseline actually used for every row.
    """
    blocks = []
    for (dataset, phase), block in summary.groupby(["dataset", "phase"], sort=False):
        beta = _value_or_smallest(block["beta"], baseline_beta)
        at_beta = block[block["beta"] == beta]
        if at_beta["lambda"].isna().all():
            # adaptive finetunes have no λ of their own: compared with their own smallest β
            baseline = at_beta.iloc[0]
            block = block.assign(baseline_beta=beta, baseline_lambda=math.nan)
            for metric in summary_metrics(summary):
                block[f"{metric}_change"] = block[f"{metric}_mean"] - baseline[f"{metric}_mean"]
            blocks.append(block)
            continue
        lam = _value_or_smallest(at_beta["lambda"], baseline_lambda)
        if (beta, lam) != (baseline_beta, baseline_lambda):
            logger.warning(
                "%s, %s: no model at β=%g, λ=%g; changes are measured from β=%g, λ=%g",
                dataset,
                phase,
                baseline_beta,
                baseline_lambda,
                beta,
                lam,
            )
        baseline = at_beta[at_beta["lambda"] == lam].iloc[0]
        block = block.assign(baseline_beta=beta, baseline_lambda=lam)
        for metric in summary_metrics(summary):
            block[f"{metric}_change"] = block[f"{metric}_mean"] - baseline[f"{metric}_mean"]
        blocks.append(block)
    return pd.concat(blocks).loc[summary.index]


def _value_or_smallest(values: pd.Series, wanted: float) -> float:
    return float(wanted) if (values == wanted).any() else float(values.min())


# ---- readable tables ------------------------------------------------------------------------


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary as Markdown: one section and one table per dataset and phase.

    Each cell reads ``mean ± sd (change)``, the change being from the block's baseline
    (:func:`changes_vs_baseline`); a NaN reads ``n/a``.
    """

    def cell(mean: float, sd: float, change: float, digits: int) -> str:
        return f"{_fixed(mean, digits)} ± {_fixed(sd, digits)} ({_fixed(change, digits, True)})"

    sections = ["# Deep models: mean ± sd over seeds", ""]
    for title, legend, header, rows in _display_blocks(summary, "text", cell):
        sections += [f"## {title}", "", legend, "", _markdown_table(header, rows), ""]
    return "\n".join(sections)


def summary_latex(summary: pd.DataFrame) -> str:
    """The summary as LaTeX: one booktabs ``table`` per dataset and phase (needs ``booktabs``).

    Cells read ``$mean \\pm sd$ ($change$)`` as in :func:`summary_markdown`.
    """

    def cell(mean: float, sd: float, change: float, digits: int) -> str:
        if math.isnan(mean):
            return "n/a"
        spread = f"${_fixed(mean, digits)} \\pm {_fixed(sd, digits)}$"
        return f"{spread} (${_fixed(change, digits, True)}$)"

    tables = ["% Deep models: mean and sd over seeds. Requires \\usepackage{booktabs}.", ""]
    for title, legend, header, rows in _display_blocks(summary, "latex", cell):
        header = [_latex_text(text) for text in header[:3]] + header[3:]
        tables += [
            "\\begin{table}[ht]",
            "\\centering\\footnotesize",
            "\\setlength{\\tabcolsep}{3pt}",
            f"\\caption{{{_latex_text(title)}. {_latex_text(legend)}}}",
            f"\\begin{{tabular}}{{rrr{'l' * (len(header) - 3)}}}",
            "\\toprule",
            " & ".join(header) + " \\\\",
            "\\midrule",
            *(" & ".join(row) + " \\\\" for row in rows),
            "\\bottomrule",
            "\\end{tabular}",
            "\\end{table}",
            "",
        ]
    return "\n".join(tables)


def _display_blocks(
    summary: pd.DataFrame,
    style: str,
    cell: Callable[[float, float, float, int], str],
) -> Iterable[tuple[str, str, list[str], list[list[str]]]]:
    """(title, legend, header, rows) per dataset and phase, cells rendered by ``cell``, headers
    in the vocabulary's ``style`` (``scores.label``)."""
    if "baseline_beta" not in summary:
        summary = changes_vs_baseline(summary)
    # the readable tables show the vocabulary's readable columns; the CSV has them all
    readable = scores.readable_columns(scores.CHOSEN_REPRESENTATIONS)
    metrics = [metric for metric in readable if metric in set(summary_metrics(summary))]
    for (dataset, phase), block in summary.groupby(["dataset", "phase"], sort=False):
        first = block.iloc[0]
        legend = (
            "Mean ± sd over seeds; in parentheses the change of the mean from the baseline "
            f"β = {first['baseline_beta']:g}, λ = {_lambda_text(first['baseline_lambda'])}."
        )
        header = ["β", "λ", "seeds", *(scores.label(metric, style) for metric in metrics)]
        rows = [
            [
                f"{row['beta']:g}",
                _lambda_text(row["lambda"]),
                f"{row['n_seeds']:d}",
                *(
                    cell(
                        row[f"{metric}_mean"],
                        row[f"{metric}_sd"],
                        row[f"{metric}_change"],
                        scores.decimals(metric),
                    )
                    for metric in metrics
                ),
            ]
            for _, row in block.iterrows()
        ]
        yield f"{dataset}, {PHASE_TITLES.get(phase, phase)}", legend, header, rows


def _lambda_text(lam: float) -> str:
    """λ as the readable tables show it: ``adaptive`` where a controller set it (NaN)."""
    return "adaptive" if math.isnan(lam) else f"{lam:g}"


def _fixed(value: float, digits: int, signed: bool = False) -> str:
    """``value`` with ``digits`` decimals; ``n/a`` for NaN; never a negative zero."""
    if math.isnan(value):
        return "n/a"
    rounded = round(float(value), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:{'+' if signed else ''}.{digits}f}"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table with columns padded to a common width; numbers right-aligned."""
    widths = [max(len(text) for text in column) for column in zip(header, *rows, strict=True)]

    def line(texts: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(text.rjust(width) for text, width in zip(texts, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (width + 1) + ":" for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _latex_text(text: str) -> str:
    """Plain text as LaTeX: special characters escaped, β, λ and ± as math."""
    for char in "\\&%$#_{}":
        text = text.replace(char, "\\" + char)
    for symbols, command in (
        ("λβ", "\\lambda\\beta"),
        ("β", "\\beta"),
        ("λ", "\\lambda"),
        ("±", "\\pm"),
    ):
        text = text.replace(symbols, f"${command}$")
    return text


# ---- the linear-Gaussian study ------------------------------------------------------------

LINEAR_KEYS = ("n", "m", "s", "method", "beta", "lambda")
LINEAR_METRICS = (
    "nll",
    "kl",
    "l2",
    "sap",
    "im",
    "mi_total",
    "a_norm",
    "b_norm",
    "sigma_w_dist",
    "sigma_z_dist",
    "residual",
    "iterations",
    "reported_iteration",
    "rank",
    "predicted_rank",
    "oracle_nll",
    "oracle_kl",
    "oracle_l2",
    "critical_beta",
    "critical_lambda",
    "nll_per_decade",
    "kl_per_decade",
)


def summarize_linear(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (ddof = 1) over restarts per (n, m, s, method, β, λ) of the linear study,
    with the number of restarts, the fraction that converged and the fraction that attained a
    minimum (``attained_mean``; NaN for AdamW, where it is not judged)."""
    table = table.assign(attained=pd.to_numeric(table["attained"], errors="coerce"))
    grouped = table.groupby(list(LINEAR_KEYS), sort=True)
    stats = grouped[[*LINEAR_METRICS, "attained"]].agg(["mean", "std"])
    stats.columns = [f"{column}_{stat}" for column, stat in stats.columns]
    stats = stats.drop(columns="attained_std")
    stats.insert(0, "restarts", grouped.size())
    stats.insert(1, "converged", grouped["converged"].mean())
    return stats.reset_index()
