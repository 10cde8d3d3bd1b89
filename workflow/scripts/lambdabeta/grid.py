"""The experiment grid: which runs a config asks for, and where each run's files live.

A deep run is identified by (dataset, phase, β, λ, seed). Phase 1 (``stabilize``) trains a β-VAE
at λ = 0 once per (dataset, β, seed); phase 2 (``finetune``) continues that model for every λ of
the grid. Each run owns one folder below ``results/runs/``::

    results/runs/<dataset>/beta<β>/seed<seed>               stabilize
    results/runs/<dataset>/beta<β>/seed<seed>/lambda<λ>     finetune
    results/runs/<dataset>/beta<β>/seed<seed>/adaptive      finetune with adaptive λ

An adaptive finetune (``deep.adaptive``) trains like a static one, from the same stabilized model
on the same batches, with λ set by a controller (``lambdabeta.control``); its record's phase is
``adaptive`` and its ``lambda`` NaN (its final λ is a metric).

This module is the only place that spells those paths or parses them: the Snakemake rules take
their output patterns and wildcard constraints from here, and the scripts their run records.
Numbers are written as ``format_number`` writes them (8, 0.5, 1e-05), so a path never depends on
how the config happened to spell a value (8 or 8.0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PHASES = ("stabilize", "finetune")
"""The two training phases, in protocol order."""
STABILIZE, FINETUNE = PHASES
ADAPTIVE = "adaptive"
"""The record phase of an adaptive finetune (it trains in the ``finetune`` phase)."""
RECORD_PHASES = (*PHASES, ADAPTIVE)
"""The phases of the tables' rows, in protocol order."""
ADAPTIVE_FOLDER = "adaptive"

RUN_KEYS = ("dataset", "phase", "beta", "lambda", "seed")
"""The keys that identify a run in every record and table (λ is 0 for a stabilized run)."""

RUNS_DIR = "results/runs"

NUMBER = r"[0-9][0-9.e+-]*"
"""How β, λ (and seeds) look in a path."""

DATASET_NAME = r"[A-Za-z0-9_]+"

RUN_NAME = rf"{DATASET_NAME}/beta{NUMBER}/seed\d+(/lambda{NUMBER}|/adaptive)?"
"""A run folder relative to ``RUNS_DIR``, e.g. ``dsprites/beta8/seed0/lambda4``."""

WILDCARD_CONSTRAINTS = {
    "dataset": DATASET_NAME,
    "beta": NUMBER,
    "lam": NUMBER,
    "seed": r"\d+",
    "run": RUN_NAME,
}
"""The Snakemake wildcard constraints of the run paths below."""

STABILIZED_DIR = f"{RUNS_DIR}/{{dataset}}/beta{{beta}}/seed{{seed}}"
FINETUNED_DIR = f"{STABILIZED_DIR}/lambda{{lam}}"
ADAPTIVE_DIR = f"{STABILIZED_DIR}/{ADAPTIVE_FOLDER}"
RUN_DIR = f"{RUNS_DIR}/{{run}}"
"""Snakemake patterns of a run folder, by phase, and of any run (``{run}`` is a run name)."""

_RUN_NAME = re.compile(
    rf"(?P<dataset>{DATASET_NAME})/beta(?P<beta>{NUMBER})/seed(?P<seed>\d+)"
    rf"(/lambda(?P<lam>{NUMBER})|/(?P<adaptive>adaptive))?"
)


def format_number(value: float) -> str:
    """How a grid value appears in a path: integers without a decimal point (8, not 8.0),
    others as Python's shortest round-tripping repr (0.5, 1e-05)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"grid values must be finite, got {value}")
    return str(int(value)) if value.is_integer() else repr(value)


@dataclass(frozen=True)
class Run:
    """One training run of the grid. ``lam`` is None for a stabilization (phase 1) and for an
    ``adaptive`` finetune, whose λ a controller sets."""

    dataset: str
    beta: float
    seed: int
    lam: float | None = None
    adaptive: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(DATASET_NAME, self.dataset):
            raise ValueError(f"dataset names are letters, digits and _, got {self.dataset!r}")
        object.__setattr__(self, "beta", float(self.beta))
        object.__setattr__(self, "seed", int(self.seed))
        if self.lam is not None:
            if self.adaptive:
                raise ValueError("an adaptive finetune has no fixed λ")
            object.__setattr__(self, "lam", float(self.lam))

    @property
    def phase(self) -> str:
        """The training phase: ``stabilize``, or ``finetune`` (static or adaptive λ)."""
        return "stabilize" if self.lam is None and not self.adaptive else "finetune"

    @property
    def name(self) -> str:
        """The run folder relative to ``RUNS_DIR``: ``dsprites/beta8/seed0[/lambda4|/adaptive]``."""
        name = f"{self.dataset}/beta{format_number(self.beta)}/seed{self.seed}"
        if self.adaptive:
            return f"{name}/{ADAPTIVE_FOLDER}"
        return name if self.lam is None else f"{name}/lambda{format_number(self.lam)}"

    @property
    def path(self) -> str:
        """The run folder: ``results/runs/<name>``."""
        return f"{RUNS_DIR}/{self.name}"

    @property
    def stabilized(self) -> Run:
        """The phase-1 run this run starts from (itself for a stabilization)."""
        return Run(self.dataset, self.beta, self.seed)

    def record(self) -> dict[str, Any]:
        """The run's identity as written in ``metrics.json`` and the tables (``RUN_KEYS``); an
        adaptive finetune's phase is ``adaptive`` and its λ NaN."""
        if self.adaptive:
            return {"dataset": self.dataset, "phase": ADAPTIVE, "beta": self.beta,
                    "lambda": math.nan, "seed": self.seed}  # fmt: skip
        return {
            "dataset": self.dataset,
            "phase": self.phase,
            "beta": self.beta,
            "lambda": 0.0 if self.lam is None else self.lam,
            "seed": self.seed,
        }

    @classmethod
    def from_name(cls, name: str) -> Run:
        """The run whose folder below ``RUNS_DIR`` is ``name`` (inverse of ``Run.name``)."""
        match = _RUN_NAME.fullmatch(name)
        if match is None:
            raise ValueError(
                f"{name!r} is not a run folder name like 'dsprites/beta8/seed0[/lambda4]'"
            )
        lam = match["lam"]
        return cls(
            match["dataset"],
            float(match["beta"]),
            int(match["seed"]),
            lam and float(lam),
            adaptive=match["adaptive"] is not None,
        )

    @classmethod
    def from_wildcards(cls, wildcards: Any, phase: str) -> Run:
        """The run of a job of the ``stabilize`` or ``finetune`` rule, from its wildcards."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        lam = float(wildcards.lam) if phase == "finetune" else None
        return cls(wildcards.dataset, float(wildcards.beta), int(wildcards.seed), lam)


def adaptive_runs(deep: Mapping[str, Any]) -> list[Run]:
    """The adaptive finetunes ``deep.adaptive`` asks for: one per dataset, β of
    ``deep.adaptive.betas`` (null: every β of the grid) and seed; none when it is off."""
    adaptive = deep.get("adaptive") or {}
    if not adaptive.get("enabled"):
        return []
    betas = adaptive.get("betas") or deep["betas"]
    return [
        Run(dataset, beta, seed, adaptive=True)
        for dataset in deep["datasets"]
        for beta in betas
        for seed in deep["seeds"]
    ]


def runs(deep: Mapping[str, Any], phase: str) -> list[Run]:
    """Every run of one phase that the ``deep`` config section asks for, in grid order
    (dataset, β, seed, then λ)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    grid = []
    for dataset in deep["datasets"]:
        for beta in deep["betas"]:
            for seed in deep["seeds"]:
                stabilized = Run(dataset, beta, seed)
                if phase == "stabilize":
                    grid.append(stabilized)
                else:
                    grid.extend(Run(dataset, beta, seed, lam) for lam in deep["lambdas"])
    return grid


@dataclass(frozen=True)
class Pack:
    """Runs of one dataset and phase trained together in one job (``packs``)."""

    name: str
    runs: tuple[Run, ...]

    @property
    def phase(self) -> str:
        return self.runs[0].phase

    @property
    def dataset(self) -> str:
        return self.runs[0].dataset


def _name_part(value: float) -> str:
    """A grid value as part of an identifier: 0.5 → 0p5, 1e-05 → 1em05."""
    return format_number(value).replace(".", "p").replace("-", "m").replace("+", "")


def packs(
    deep: Mapping[str, Any], phase: str, pack_size: int, finished: Callable[[Run], bool]
) -> list[Pack]:
    """The packs of one phase: the runs of the grid not yet ``finished``, in fixed blocks.

    Stabilizations are packed over seeds, one (dataset, β) at a time; finetunes over λ, one
    stabilized model (dataset, β, seed) at a time, so that a pack's members start from one
    model. The blocks are ``pack_size`` consecutive entries of the config's seed (or λ) list, so
    adding a seed or a λ never changes an existing block; a pack holds the block's runs that
    are not ``finished``, and a block with fewer than two such runs makes no pack (its run
    trains alone). Each pack is named after its block's first run, e.g.
    ``stabilize_pack_dsprites_beta8_seed0`` or ``finetune_pack_dsprites_beta0p5_seed3_lambda4``
    (a valid identifier, the same whichever of its runs are finished).
    """
    if pack_size < 1:
        raise ValueError(f"pack_size must be at least 1, got {pack_size}")
    grid = runs(deep, phase)
    blocks: dict[Any, list[Run]] = {}
    for run in grid:
        # a block's runs share (dataset, β) when stabilizing, their stabilized model otherwise
        key = (run.dataset, run.beta) if phase == "stabilize" else run.stabilized
        blocks.setdefault(key, []).append(run)
    chosen = []
    for members in blocks.values():
        for start in range(0, len(members), pack_size):
            block = members[start : start + pack_size]
            pending = tuple(run for run in block if not finished(run))
            if len(pending) < 2:
                continue
            first = block[0]
            name = f"{phase}_pack_{first.dataset}_beta{_name_part(first.beta)}_seed{first.seed}"
            if phase == "finetune":
                name += f"_lambda{_name_part(first.lam)}"
            chosen.append(Pack(name, pending))
    return chosen


def nearest_setting(
    requested: tuple[float, float], available: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    """The available (β, λ) nearest to ``requested``: nearest in log2 β first, then in λ.

    β is compared on a log scale because the grid is geometric (1, 4, 8, …, 256): 12 is nearer
    to 16 than to 8. Among the settings with that β the nearest λ wins. Exact ties go to the
    smaller value. Returns the setting as it appears in ``available``.
    """
    if len(available) == 0:
        raise ValueError("no settings available to choose from")
    beta, lam = (float(value) for value in requested)
    if beta <= 0 or any(float(b) <= 0 for b, _ in available):
        raise ValueError(f"β must be positive to compare on a log scale: {requested}, {available}")

    def beta_key(setting: tuple[float, float]) -> tuple[float, float]:
        return abs(math.log2(float(setting[0])) - math.log2(beta)), float(setting[0])

    nearest_beta = min(available, key=beta_key)[0]
    same_beta = [setting for setting in available if float(setting[0]) == float(nearest_beta)]
    return min(same_beta, key=lambda setting: (abs(float(setting[1]) - lam), float(setting[1])))


@dataclass(frozen=True)
class FigureRun:
    """A finetuned run shown in a figure, and the (β, λ) the figure config asked for."""

    run: Run
    requested_beta: float
    requested_lambda: float

    def record(self) -> dict[str, Any]:
        """What a figure script needs to know of the run (run keys, requested values, folder)."""
        return {
            **self.run.record(),
            "requested_beta": self.requested_beta,
            "requested_lambda": self.requested_lambda,
            "run": self.run.path,
        }


def figure_runs(
    deep: Mapping[str, Any], pairs: Iterable[Sequence[float]], seed: int
) -> list[FigureRun]:
    """The finetuned runs of ``seed`` that show the requested (β, λ) ``pairs`` on every dataset:
    each pair is replaced by the nearest grid point (``nearest_setting``)."""
    if seed not in deep["seeds"]:
        raise ValueError(f"figure seed {seed} is not one of the grid's seeds {deep['seeds']}")
    grid = [(beta, lam) for beta in deep["betas"] for lam in deep["lambdas"]]
    chosen = []
    for dataset in deep["datasets"]:
        for beta, lam in pairs:
            near_beta, near_lam = nearest_setting((beta, lam), grid)
            chosen.append(FigureRun(Run(dataset, near_beta, seed, near_lam), beta, lam))
    return chosen
