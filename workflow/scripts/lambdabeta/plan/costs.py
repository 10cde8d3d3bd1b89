"""Where each job's measured cost is recorded, and which kind of job a record belongs to.

Every rule that computes has a ``benchmark:`` file (Snakemake writes the job's wall and CPU
seconds, peak memory and I/O there, as a TSV) at the path of its log moved from ``logs/`` to
``results/benchmarks/``: one path scheme, so a job's log, its benchmark and the run records that
name the log (``run.json``'s ``pack.log``) find each other. Standard library only: the workflow
definition imports it.
"""

from __future__ import annotations

import posixpath

LOGS_DIR = "logs"
BENCHMARKS_DIR = "results/benchmarks"

KINDS = (
    "fetch",
    "prepare",
    "linear",
    "linear_adamw",
    "stabilize",
    "finetune",
    "evaluate",
    "table",
    "figure",
)
"""The kinds of job in ``job_costs.csv``; those that are keys of ``resources`` in the config
(prepare, linear, linear_adamw, stabilize, finetune, evaluate) are what the resources helper
(``python -m lambdabeta.plan.sizing``) suggests values for."""


def benchmark_file(log: str) -> str:
    """The benchmark record of the job whose log is ``log`` (a path, or a Snakemake pattern,
    below ``logs/``): ``logs/evaluate/{run}.log`` → ``results/benchmarks/evaluate/{run}.tsv``."""
    relative = posixpath.relpath(log, LOGS_DIR)
    if relative.startswith("..") or not relative.endswith(".log"):
        raise ValueError(f"a job's log must be a .log file below {LOGS_DIR}/, got {log!r}")
    return f"{BENCHMARKS_DIR}/{relative.removesuffix('.log')}.tsv"


def log_file(benchmark: str) -> str:
    """The log of the job whose benchmark record is ``benchmark`` (inverse of
    ``benchmark_file``)."""
    relative = posixpath.relpath(benchmark, BENCHMARKS_DIR)
    if relative.startswith("..") or not relative.endswith(".tsv"):
        raise ValueError(f"not a benchmark record below {BENCHMARKS_DIR}/: {benchmark!r}")
    return f"{LOGS_DIR}/{relative.removesuffix('.tsv')}.log"


def job_kind(log: str) -> str:
    """The kind of job (one of ``KINDS``) that wrote ``log``, from the log layout of the rules:
    ``train/…/stabilize.log`` and ``train/packs/stabilize_pack_….log`` are ``stabilize``,
    finetunes (static and adaptive λ) ``finetune``, the linear study's AdamW ``linear_adamw``
    and its other jobs ``linear``."""
    parts = posixpath.relpath(log, LOGS_DIR).removesuffix(".log").split("/")
    top, name = parts[0], parts[-1]
    if top == "train":
        phase = name.split("_pack_")[0] if parts[1] == "packs" else name
        if phase in ("stabilize", "finetune"):
            return phase
    elif top == "evaluate":
        return "evaluate"
    elif top == "datasets":
        return "fetch" if name.startswith("fetch_") else "prepare"
    elif top == "linear":
        return "linear_adamw" if name == "adamw" else "linear"
    elif top == "tables":
        return "table"
    elif top == "figures":
        return "figure"
    raise ValueError(f"no job kind for the log {log!r}")


def training_run(log: str) -> str | None:
    """The run a one-run training job trained (its folder below ``results/runs``), from its log;
    None for a pack, whose runs its members' ``run.json`` name (``pack.runs``, ``pack.log``)."""
    parts = posixpath.relpath(log, LOGS_DIR).split("/")
    if parts[0] != "train" or parts[1] == "packs":
        return None
    return "/".join(parts[1:-1])


def evaluated_run(log: str) -> str | None:
    """The run an evaluation job scored, from its log; None for other jobs."""
    relative = posixpath.relpath(log, LOGS_DIR)
    if not relative.startswith("evaluate/"):
        return None
    return relative.removeprefix("evaluate/").removesuffix(".log")


JOB_COSTS = "results/tables/job_costs.csv"


def measured_outputs(targets: list[str]) -> list[str]:
    """The input of the job cost table: every other final output, so that it is built after
    every job it reports on."""
    return [target for target in targets if target != JOB_COSTS]
