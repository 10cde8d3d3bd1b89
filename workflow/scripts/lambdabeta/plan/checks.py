"""Every check of the config, run when the workflow is parsed, before any job is planned.

A wrong value must never reach a job: a job that fails on it has already had Snakemake delete
its previous outputs. So the workflow definition checks, in this order, and reports every
problem at once, each as ``<dotted key> = <value>: <the rule it breaks>`` with the config
files it came from (:class:`ConfigError`):

1. each config file parses (:func:`check_config_file`: a YAML error names the file, line and
   column);
2. the schema (:func:`check_schema`), its errors named by the key they concern (jsonschema's
   own "is not valid under any of the given schemas" says neither which key nor why);
3. what the schema cannot say (:func:`check_config`): every number finite; the settings every
   job builds from the config (``lambdabeta.settings``, ``lambdabeta.linear.settings``), built
   here with the same code, their errors named by the key; and the rules between keys (sizes
   against the dataset's known size, windows against step counts, bounds against each other,
   grid references against the grid, m ≤ n and s ≤ n, the memory a job's arrays need against
   its ``mem_mb``).

This module uses the standard library and Snakemake's own dependencies (jsonschema, PyYAML)
only: the workflow definition imports it in the Snakemake process.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import grid
from ..linear.jobs import Dims
from ..settings import SettingError
from . import datasets as dataset_files
from . import resources as job_resources


@dataclass(frozen=True)
class Problem:
    """One bad config value: its dotted ``key``, the ``value`` and the ``rule`` it breaks."""

    key: str
    value: Any
    rule: str

    def __str__(self) -> str:
        return f"{self.key} = {self.value!r}: {self.rule}"


class ConfigError(ValueError):
    """Every problem of a config, one line each, with the files the config came from."""

    def __init__(self, problems: Sequence[Problem], sources: Sequence[str] = ()):
        self.problems = list(problems)
        origin = f" (from {', '.join(str(s) for s in sources)})" if sources else ""
        lines = "\n".join(f"  - config key {problem}" for problem in self.problems)
        count = len(self.problems)
        super().__init__(
            f"the config{origin} has {count} problem{'s' if count > 1 else ''}; nothing was "
            f"run:\n{lines}"
        )


def config_error(key: str, message: str) -> ValueError:
    """The error of a bad config value: ``config key '<key>': <message>``."""
    return ValueError(f"config key '{key}': {message}")


# ---- 1. files --------------------------------------------------------------------------------


def check_config_file(path: str | os.PathLike) -> None:
    """Raise an error naming ``path``, the line and the column where it stops being YAML, or
    saying that it does not hold a mapping of config keys."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(
            f"config file {path}{where} is not valid YAML: {error.problem or error.context}"
        ) from None
    except yaml.YAMLError as error:
        raise ValueError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(content, dict):
        raise ValueError(
            f"config file {path} must hold a mapping of config keys (such as `deep:`), "
            f"got {type(content).__name__}"
        )


# ---- 2. the schema ----------------------------------------------------------------------------


def dotted(path: Iterable[Any]) -> str:
    """``deep.adaptive.betas`` for the path ('deep', 'adaptive', 'betas'); list positions in
    brackets (``linear.dims[1].n``)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(the whole config)"


def check_schema(config: Mapping[str, Any], schema_path: str, sources: Sequence[str] = ()) -> None:
    """Every schema error of ``config``, by key (:class:`ConfigError`). For a value that fits
    none of several alternatives, the error of the alternative it came closest to."""
    import jsonschema
    import yaml

    with open(schema_path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        deepest = jsonschema.exceptions.best_match([error]) if error.context else error
        while deepest.context:
            deepest = jsonschema.exceptions.best_match(deepest.context)
        problems.append(Problem(dotted(deepest.absolute_path), deepest.instance, deepest.message))
    if problems:
        raise ConfigError(problems, sources)


# ---- 3. what the schema cannot say ------------------------------------------------------------


def non_finite(value: Any, path: tuple = ()) -> list[Problem]:
    """Every NaN or infinite number in ``value`` (a config or part of one), by key."""
    if isinstance(value, Mapping):
        return [p for key, item in value.items() for p in non_finite(item, (*path, key))]
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in non_finite(item, (*path, i))]
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(dotted(path), value, "must be a finite number")]
    return []


# the config key of each field of the deep settings classes (lambdabeta.settings)
_TRAIN_KEYS = {
    "latent_dim": "deep.latent_dim",
    "beta": "deep.betas",
    "lam": "deep.lambdas",
    "seed": "deep.seeds",
    "controller": "deep.adaptive",
}


def setting_problems(config: Mapping[str, Any]) -> list[Problem]:
    """The errors of the settings every deep job builds from the config, built here the same
    way (one per settings class: each stops at its first), named by config key."""
    from ..settings import DeepSettings

    deep = DeepSettings.from_config(config.get("deep"))
    if not deep.datasets:
        return []
    section = deep.section
    problems = []
    run = grid.Run(deep.datasets[0], float(section["betas"][0]), int(section["seeds"][0]))
    finetuned = grid.Run(run.dataset, run.beta, run.seed, float(section["lambdas"][0]))
    for phase, member in ((grid.STABILIZE, run), (grid.FINETUNE, finetuned)):
        renamed = _TRAIN_KEYS | {"steps": f"deep.train.{phase}_steps"}
        try:
            deep.train_settings(member, deep.phase_science(phase), threads=1, granted_gpus=0)
        except SettingError as error:
            problems.append(_named(error, section, "deep.train", renamed))
    try:
        deep.evaluation_settings(deep.evaluation_science(), granted_gpus=1)
    except SettingError as error:
        problems.append(_named(error, section, "deep.evaluate", {"device": "deep.train.device"}))
    return problems


def _named(
    error: SettingError, section: Mapping[str, Any], prefix: str, renamed: Mapping[str, str]
) -> Problem:
    """The problem of a settings error: its field's config key and value, its message."""
    key = renamed.get(error.field, f"{prefix}.{error.field}")
    value: Any = section
    for part in key.split(".")[1:]:
        value = value.get(part, "?") if isinstance(value, Mapping) else "?"
    rule = str(error)
    rule = rule.removeprefix(f"{error.field} ")  # "lr must be …" → "must be …"
    return Problem(key, value, rule)


def cross_key_problems(config: Mapping[str, Any]) -> list[Problem]:
    """The rules between keys (module docstring)."""
    return [
        *_linear_problems(config.get("linear")),
        *_deep_problems(config),
        *(Problem(*problem) for problem in job_resources.memory_problems(config)),
    ]


def _linear_problems(linear: Mapping[str, Any] | None) -> list[Problem]:
    if linear is None:
        return []
    problems = []
    names = [Dims(**dims).name for dims in linear["dims"]]
    if len(set(names)) != len(names):
        problems.append(Problem("linear.dims", names, "entries must be distinct"))
    for i, dims in enumerate(linear["dims"]):
        if dims["m"] < 2:
            problems.append(
                Problem(
                    f"linear.dims[{i}].m",
                    dims["m"],
                    "must be at least 2 (SAP's gap between the two best latents needs two)",
                )
            )
        for key in ("m", "s"):
            if dims[key] > dims["n"]:
                problems.append(
                    Problem(
                        f"linear.dims[{i}].{key}",
                        dims[key],
                        f"must be at most n = {dims['n']} (the data dimension)",
                    )
                )
    if linear.get("instance_file") is not None:
        for dims in linear["dims"]:
            path = linear["instance_file"].format(**dims)
            if not os.path.isfile(path):
                problems.append(
                    Problem("linear.instance_file", path, f"(for {dims}) does not exist")
                )
    return problems


def _deep_problems(config: Mapping[str, Any]) -> list[Problem]:
    deep, sources = config.get("deep", {"datasets": []}), config.get("datasets", {})
    problems = [
        Problem(
            "deep.datasets", name, f"is not defined under `datasets:` (defined: {sorted(sources)})"
        )
        for name in deep["datasets"]
        if name not in sources
    ]
    if not deep["datasets"] or problems:
        return problems
    if config["figures"]["seed"] not in deep["seeds"]:
        problems.append(
            Problem(
                "figures.seed",
                config["figures"]["seed"],
                f"is not one of the grid's seeds {deep['seeds']}",
            )
        )
    train, evaluate = deep["train"], deep["evaluate"]
    for name in deep["datasets"]:
        size = dataset_files.dataset_size(sources[name])
        if size is None:
            continue
        if train["batch_size"] > size:
            problems.append(
                Problem(
                    "deep.train.batch_size",
                    train["batch_size"],
                    f"is larger than dataset {name!r} ({size} images)",
                )
            )
        drawn = evaluate["num_train"] + evaluate["num_test"]
        if drawn > size:
            problems.append(
                Problem(
                    "deep.evaluate.num_train",
                    evaluate["num_train"],
                    f"+ num_test = {drawn} evaluation images, more than dataset "
                    f"{name!r} holds ({size})",
                )
            )
    shortest = min(train["stabilize_steps"], train["finetune_steps"])
    if evaluate["bce_window"] > shortest:
        problems.append(
            Problem(
                "deep.evaluate.bce_window",
                evaluate["bce_window"],
                f"is longer than the shortest training phase ({shortest} steps): "
                "the BCE is averaged over a phase's last steps",
            )
        )
    return problems + _adaptive_problems(deep)


def _adaptive_problems(deep: Mapping[str, Any]) -> list[Problem]:
    adaptive = deep.get("adaptive") or {}
    if not adaptive.get("enabled"):
        return []
    problems = []
    low, start, high = (adaptive[k] for k in ("lambda_min", "initial_lambda", "lambda_max"))
    if not low < high:
        problems.append(
            Problem(
                "deep.adaptive.lambda_min", low, f"must be below deep.adaptive.lambda_max = {high}"
            )
        )
    elif not low <= start <= high:
        problems.append(
            Problem(
                "deep.adaptive.initial_lambda",
                start,
                f"must lie in [lambda_min, lambda_max] = [{low}, {high}]",
            )
        )
    if adaptive.get("target") is None and adaptive["reference_beta"] not in deep["betas"]:
        problems.append(
            Problem(
                "deep.adaptive.reference_beta",
                adaptive["reference_beta"],
                f"is not one of deep.betas {deep['betas']}: its stabilized model "
                "sets the target (or give deep.adaptive.target in nats)",
            )
        )
    chosen = adaptive.get("betas")
    if chosen is not None:
        stray = [b for b in chosen if b not in deep["betas"]]
        if stray:
            problems.append(
                Problem("deep.adaptive.betas", stray, f"are not in deep.betas {deep['betas']}")
            )
    return problems


def check_config(config: Mapping[str, Any], sources: Sequence[str] = ()) -> None:
    """Raise a :class:`ConfigError` with every problem of a schema-validated config."""
    problems: dict[str, Problem] = {}
    for problem in non_finite(config) + setting_problems(config) + cross_key_problems(config):
        problems.setdefault(problem.key, problem)  # a key's first problem says it
    if problems:
        raise ConfigError(list(problems.values()), sources)


def figure_runs(config: Mapping[str, Any], pairs) -> list[dict[str, Any]]:
    """The runs (records with their folder) that show the requested (β, λ) ``pairs``."""
    deep = config.get("deep", {"datasets": []})
    if not deep["datasets"]:
        return []
    chosen = grid.figure_runs(deep, pairs, config["figures"]["seed"])
    return [figure_run.record() for figure_run in chosen]
