"""The training jobs: one rule per phase for any single run, and one rule per pack of runs.

- The one-run rules ``stabilize`` and ``finetune`` (wildcards) can produce every run.
- With ``deep.train.pack_size`` > 1, one rule per pack is added, with explicit outputs: the runs
  of a fixed block (pack_size consecutive seeds of one (dataset, β); λ of one stabilized model)
  that are not yet trained with today's science (``Finished``, ``lambdabeta.grid.packs``). The
  workflow puts it before the one-run rule (``ruleorder``).
- Finished runs are never in a pack: Snakemake deletes and rewrites every output of a job it
  runs, so a pack holding a finished run would train it again. A finished run keeps its one-run
  rule as producer, and that job is up to date: both kinds of job record the same params (the
  phase's shared science; a run's β, λ and seed are in its path), the same input (the dataset,
  and for finetunes the one stabilized model their pack starts from) and the same code.

So changing pack_size retrains nothing, adding a seed or a λ trains only the new runs (packed
when their block has two or more), and a science change plans the packs again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import grid
from ..settings import DeepSettings, TrainSettings
from .datasets import prepared_files

TRAIN_FILES = {"model": "model.pt", "curve": "train_log.csv", "summary": "run.json"}
"""The files a training run writes in its folder."""


def train_outputs(folder: str) -> dict[str, str]:
    """The files a training run writes in ``folder`` (a run's path or a wildcard pattern)."""
    return {key: f"{folder}/{name}" for key, name in TRAIN_FILES.items()}


def train_member(run: grid.Run) -> dict[str, Any]:
    """What the training script needs of one run: its name, its files and, beside them but not
    among them (so that Snakemake does not delete it when a job dies), its checkpoint folder."""
    return {
        "run": run.name,
        **train_outputs(run.path),
        "progress_dir": f"{run.path}/.progress-{run.phase}",
        "init": train_outputs(run.stabilized.path)["model"] if run.phase == "finetune" else None,
    }


class Finished:
    """Whether a run's files exist and record today's science (for a finetune, also: its
    stabilized model is finished and not newer than its files). Answers are cached: the files
    are read once per workflow definition."""

    def __init__(self, deep: DeepSettings):
        self.deep = deep
        self._known: dict[grid.Run, bool] = {}

    def __call__(self, run: grid.Run) -> bool:
        if run not in self._known:
            self._known[run] = self._finished(run)
        return self._known[run]

    def _finished(self, run: grid.Run) -> bool:
        files = train_outputs(run.path)
        if not all(os.path.isfile(path) for path in files.values()):
            return False
        try:
            with open(files["summary"]) as stream:
                recorded = json.load(stream)["settings"]
            # a static run's science has no controller (older run.json files lack the key)
            science = {key: recorded.get(key) for key in TrainSettings.SCIENCE}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        if science.pop("controller") is not None or science != self.deep.train_science(run):
            return False
        if run.phase == "stabilize":
            return True
        oldest = min(os.path.getmtime(path) for path in files.values())
        init = train_outputs(run.stabilized.path)["model"]
        return self(run.stabilized) and os.path.getmtime(init) <= oldest


Members = Callable[[Any, Any], list[dict[str, Any]]]
"""A rule's ``members`` param: ``(wildcards, output) → [train_member(run), …]``. Taking
``output`` marks it as derived from the outputs, so Snakemake does not record it among the
job's settings."""


@dataclass(frozen=True)
class TrainingRule:
    """What differs between the training rules: the one-run rules ``stabilize`` and
    ``finetune`` (wildcards) and one rule per pack (explicit files). ``images`` and ``init``
    are the rule's inputs (``init`` None for a stabilization)."""

    name: str
    phase: str
    images: str
    init: str | None
    output: dict[str, str]
    log: str
    members: Members
    packed: bool
    adaptive: bool = False
    reference: str | None = None  # an adaptive λ's reference curve, when it sets the target


def _one_run_members(phase: str) -> Members:
    return lambda wildcards, output: [train_member(grid.Run.from_wildcards(wildcards, phase))]


def _pack_members(pack: grid.Pack) -> Members:
    return lambda wildcards, output: [train_member(run) for run in pack.runs]


def _adaptive_rule(deep: DeepSettings, images: str, log_dir: str) -> TrainingRule:
    """The rule of the adaptive finetunes (``deep.adaptive``): from the stabilized model, and,
    when the target is the reference model's rate, after that model's training curve."""
    reference = None
    if deep.adaptive.get("target") is None:
        beta = deep.adaptive["reference_beta"]
        folder = f"{grid.RUNS_DIR}/{{dataset}}/beta{grid.format_number(beta)}/seed{{seed}}"
        reference = train_outputs(folder)["curve"]
    return TrainingRule(
        name="adapt",
        phase="finetune",
        images=images,
        init=train_outputs(grid.STABILIZED_DIR)["model"],
        output=train_outputs(grid.ADAPTIVE_DIR),
        log=f"{log_dir}/adaptive/finetune.log",
        members=lambda wildcards, output: [
            train_member(
                grid.Run(
                    wildcards.dataset, float(wildcards.beta), int(wildcards.seed), adaptive=True
                )
            )
        ],
        packed=False,
        adaptive=True,
        reference=reference,
    )


def training_rules(deep: DeepSettings, finished: Callable[[grid.Run], bool]) -> list[TrainingRule]:
    """The one-run rule of each phase, then one rule per pack of runs not ``finished``."""
    log_dir = "logs/train/{dataset}/beta{beta}/seed{seed}"
    images = prepared_files("{dataset}")["images"]
    rules = [
        TrainingRule(
            name="stabilize",
            phase="stabilize",
            images=images,
            init=None,
            output=train_outputs(grid.STABILIZED_DIR),
            log=f"{log_dir}/stabilize.log",
            members=_one_run_members("stabilize"),
            packed=False,
        ),
        TrainingRule(
            name="finetune",
            phase="finetune",
            images=images,
            init=train_outputs(grid.STABILIZED_DIR)["model"],
            output=train_outputs(grid.FINETUNED_DIR),
            log=f"{log_dir}/lambda{{lam}}/finetune.log",
            members=_one_run_members("finetune"),
            packed=False,
        ),
    ]
    if deep.adaptive.get("enabled"):
        rules.append(_adaptive_rule(deep, images, log_dir))
    if deep.pack_size == 1:
        return rules
    for phase in grid.PHASES:
        for pack in grid.packs(deep.section, phase, deep.pack_size, finished):
            rules.append(
                TrainingRule(
                    name=pack.name,
                    phase=pack.phase,
                    images=prepared_files(pack.dataset)["images"],
                    # the input of each member's own job, so that a finished member's job stays
                    # up to date
                    init=train_member(pack.runs[0])["init"],
                    output={
                        f"{key}_{k}": path
                        for k, run in enumerate(pack.runs)
                        for key, path in train_outputs(run.path).items()
                    },
                    log=f"logs/train/packs/{pack.name}.log",
                    members=_pack_members(pack),
                    packed=True,
                )
            )
    return rules
