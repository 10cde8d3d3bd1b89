"""``results/tables/job_costs.csv``: what every job of a run cost, measured.

One row per job whose benchmark record is on disk (``lambdabeta.plan.costs``: Snakemake's
``benchmark:`` TSV, wall and CPU seconds, peak memory, I/O), joined for the deep jobs to the
records they wrote themselves: a training job's ``run.json`` (device, steps, steps/s, pack, the
peak GPU memory of the process) and an evaluation's ``metrics.json`` (device, images scored,
peak GPU memory). A pack row stands for its runs together: their names, how many, and the β and
λ they share (empty where they differ).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .grid import RUNS_DIR, Run
from .plan.costs import BENCHMARKS_DIR, KINDS, evaluated_run, job_kind, log_file, training_run

COLUMNS = [
    "kind",
    "job",
    "dataset",
    "beta",
    "lambda",
    "seed",
    "pack_size",
    "runs",
    "device",
    "steps",
    "batch_size",
    "images",
    "seconds",
    "cpu_seconds",
    "max_rss_mb",
    "io_in_mb",
    "io_out_mb",
    "steps_per_second",
    "peak_gpu_mb",
]
"""The table's columns: the job (kind, its log below ``logs/`` without ``.log``), what it
computed (dataset, β, λ, seed, pack size and run names for deep jobs; training steps and batch
size, or images evaluated), where (device), and what it cost (Snakemake's benchmark: ``s``,
``cpu_time``, ``max_rss``, ``io_in``, ``io_out``; the job's own records: steps/s and peak GPU
MiB)."""

BENCHMARK_COLUMNS = {
    "s": "seconds",
    "cpu_time": "cpu_seconds",
    "max_rss": "max_rss_mb",
    "io_in": "io_in_mb",
    "io_out": "io_out_mb",
}
"""Snakemake's benchmark columns (seconds, MB) and their names here."""


def read_benchmark(path: str | Path) -> dict[str, float]:
    """The measurements of one benchmark record; with ``--benchmark-repeats`` the last repeat.
    Snakemake writes ``-`` where it could not measure (a job too short to sample): NaN here."""
    table = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    missing = set(BENCHMARK_COLUMNS) - set(table.columns)
    if missing or table.empty:
        raise ValueError(f"{path}: not a Snakemake benchmark record (missing {sorted(missing)})")
    row = table.iloc[-1]
    return {name: float(row[column]) for column, name in BENCHMARK_COLUMNS.items()}


def _shared(values: Iterable[Any]) -> Any:
    """The one value all runs of a job share, or None where they differ."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _run_columns(runs: list[str]) -> dict[str, Any]:
    # as the deep tables record runs: a stabilization's λ is 0, an adaptive one's NaN
    records = [Run.from_name(name).record() for name in runs]
    return {
        "dataset": _shared(run["dataset"] for run in records),
        "beta": _shared(run["beta"] for run in records),
        "lambda": _shared(run["lambda"] for run in records),
        "seed": _shared(run["seed"] for run in records),
        "pack_size": len(records),
        "runs": ";".join(runs),
    }


def _training_columns(log: str, summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the run records say of the training job that wrote ``log``: its runs are the one
    its log names, or for a pack those whose summary names the log."""
    run = training_run(log)
    if run is not None:
        summary = summaries.get(run)
        runs = list(summary["pack"]["runs"]) if summary else [run]
    else:
        runs = [name for name, s in summaries.items() if s["pack"].get("log") == log]
        summary = summaries[runs[0]] if runs else None
    columns = _run_columns(runs) if runs else {}
    if summary is not None:
        # each run's own rate (null for a run resumed at its end); a pack's runs step together
        speeds = [summaries[r]["steps_per_second"] for r in runs if r in summaries]
        speeds = [speed for speed in speeds if speed is not None]
        columns |= {
            "device": summary["device"],
            "steps": summary["steps"] - summary["resumed_from_step"],
            "batch_size": summary["settings"]["batch_size"],
            "steps_per_second": sum(speeds) / len(speeds) if speeds else None,
            "peak_gpu_mb": summary["pack"].get("peak_gpu_mb"),
        }
    return columns


def _evaluation_columns(run: str, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    columns = _run_columns([run])
    if metrics is not None:
        columns |= {
            "device": metrics.get("device"),
            "images": metrics["num_train"] + metrics["num_test"],
            "peak_gpu_mb": metrics.get("peak_gpu_mb"),
        }
    return columns


def job_costs(
    benchmarks: Mapping[str, Mapping[str, float]],
    summaries: Mapping[str, Mapping[str, Any]],
    metrics: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """The job cost table: one row per job of ``benchmarks`` (benchmark path → its
    measurements), joined to the training ``summaries`` and evaluation ``metrics`` (run name →
    ``run.json`` / ``metrics.json``). Rows sorted by kind (the order of the pipeline), then job."""
    rows = []
    for benchmark, measured in benchmarks.items():
        log = log_file(benchmark)
        kind = job_kind(log)
        row: dict[str, Any] = {"kind": kind, "job": log.removeprefix("logs/").removesuffix(".log")}
        if kind in ("stabilize", "finetune"):
            row |= _training_columns(log, summaries)
        elif (run := evaluated_run(log)) is not None:
            row |= _evaluation_columns(run, metrics.get(run))
        rows.append(row | measured)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["kind"] = pd.Categorical(table["kind"], categories=KINDS, ordered=True)
    return table.sort_values(["kind", "job"], kind="stable").reset_index(drop=True)


def _records(runs_dir: Path, name: str) -> dict[str, dict[str, Any]]:
    """Every ``name`` record below ``runs_dir``, by run name; unreadable ones are skipped (the
    evaluation and training jobs check their own inputs; this table only reports)."""
    records = {}
    for path in sorted(runs_dir.rglob(name)):
        try:
            records[path.parent.relative_to(runs_dir).as_posix()] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return records


def collect(
    benchmarks_dir: str | Path = BENCHMARKS_DIR, runs_dir: str | Path = RUNS_DIR
) -> pd.DataFrame:
    """``job_costs`` of every benchmark record below ``benchmarks_dir`` (paths as the workflow
    writes them, relative to the working directory) and the run records below ``runs_dir``."""
    records = sorted(Path(benchmarks_dir).rglob("*.tsv"))
    benchmarks = {path.as_posix(): read_benchmark(path) for path in records}
    runs = Path(runs_dir)
    return job_costs(benchmarks, _records(runs, "run.json"), _records(runs, "metrics.json"))
