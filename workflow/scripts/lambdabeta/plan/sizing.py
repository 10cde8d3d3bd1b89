"""Scheduler resources sized from measured job costs: ``python -m lambdabeta.plan.sizing
JOB_COSTS --configfile F`` turns a pilot run's ``results/tables/job_costs.csv`` into
``resources`` entries for the runs a config asks for (``suggest_resources``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from . import checks
from .resources import memory_needs

SCHEMA = os.path.join(
    os.path.dirname(__file__), os.pardir, os.pardir, os.pardir, "schemas", "config.schema.yaml"
)
"""The workflow's config schema (``workflow/schemas``)."""

SUGGESTED_STAGES = ("prepare", "linear", "linear_adamw", "stabilize", "finetune", "evaluate")
"""The ``resources`` entries the helper suggests values for (the job kinds of
``job_costs.csv`` that have one)."""
SCALED_STAGES = ("stabilize", "finetune", "evaluate")
"""The kinds whose cost the helper scales from the pilot's sizes to the config's; the others'
suggestions hold only for a pilot of the config's own sizes (the linear study's n and
iterations, the real dataset files), and are printed as comments."""
TRAINING_STEPS = {"stabilize": "stabilize_steps", "finetune": "finetune_steps"}
"""The ``deep.train`` key of each training phase's step count."""
MEMORY_STEP_MB = 1000
RUNTIME_STEP_MINUTES = 10


def _round_up(value: float, step: float) -> int:
    return int(math.ceil(max(value, step) / step) * step)


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def suggest_resources(
    costs: Sequence[Mapping[str, str]],
    config: Mapping[str, Any],
    runtime_margin: float = 2.0,
    memory_margin: float = 1.5,
) -> dict[str, dict[str, Any]]:
    """``mem_mb`` and ``runtime`` (minutes) per job kind for the runs ``config`` asks for, from
    the rows of a pilot run's ``job_costs.csv`` (``costs``, as ``csv.DictReader`` reads it).

    memory: the largest max RSS of the kind × ``memory_margin``, and at least the estimate of
    ``memory_needs`` for ``config`` (batches scale with ``batch_size`` × ``pack_size``).
    runtime: training jobs scale by images trained, ``config``'s steps × batch size × pack
    size at the slowest measured job throughput (steps/s × batch size × pack size), plus the
    largest time a job spent outside its steps (start, data, writing); evaluations by images
    scored, at the slowest measured time per image; other kinds as measured. Each is ×
    ``runtime_margin``, rounded up. Time proportional to the images is exact for a saturated
    device (a CPU) and an upper bound where more images use an idle GPU better. The pilot's
    device is the suggestion's: run the pilot where the jobs will run (a GPU node for GPU
    jobs). Each entry also says what it came from (``source``) and whether it was scaled
    (``scaled``: ``SCALED_STAGES``; the others as measured). Kinds the pilot did not run are
    left out.
    """
    needs = memory_needs(config)
    suggestions = {}
    for stage in SUGGESTED_STAGES:
        rows = [row for row in costs if row["kind"] == stage]
        if not rows:
            continue
        rss = max(_number(row["max_rss_mb"]) or 0.0 for row in rows)
        seconds = [_number(row["seconds"]) or 0.0 for row in rows]
        devices = sorted({row["device"] for row in rows if row.get("device")})
        source = f"{len(rows)} pilot job(s){' on ' + ', '.join(devices) if devices else ''}"
        if stage in TRAINING_STEPS:
            timed = [row for row in rows if _number(row["steps_per_second"])]
            # a job's throughput: each run's steps/s × its batch × the runs stepping together
            rate = min(
                _number(row["steps_per_second"])
                * _number(row["batch_size"])
                * _number(row["pack_size"])
                for row in timed
            )
            outside = max(
                _number(row["seconds"]) - _number(row["steps"]) / _number(row["steps_per_second"])
                for row in timed
            )
            train = config["deep"]["train"]
            steps, batch = train[TRAINING_STEPS[stage]], train["batch_size"] * train["pack_size"]
            estimate = steps * batch / rate + max(outside, 0.0)
            source += f": {rate:,.0f} images/s (slowest) for {steps:,} steps of {batch} images"
        elif stage == "evaluate":
            per_image = max(
                _number(row["seconds"]) / _number(row["images"])
                for row in rows
                if _number(row["images"])
            )
            evaluate = config["deep"]["evaluate"]
            images = evaluate["num_train"] + evaluate["num_test"]
            estimate = per_image * images
            source += f": {per_image * 1000:.3g} s per 1,000 images for {images:,} images"
        else:
            estimate = max(seconds)
            source += f": at most {estimate:.0f} s at the pilot's sizes (not scaled)"
        memory = max(rss * memory_margin, needs.get(stage, 0.0))
        suggestions[stage] = {
            "mem_mb": _round_up(memory, MEMORY_STEP_MB),
            "runtime": _round_up(estimate * runtime_margin / 60, RUNTIME_STEP_MINUTES),
            "source": f"{source}; max RSS " + (f"{rss:,.0f} MB" if rss else "not measured"),
            "scaled": stage in SCALED_STAGES,
        }
    return suggestions


def load_config(paths: Sequence[str]) -> dict[str, Any]:
    """The config of ``paths`` (later files override earlier ones, key by key) as the workflow
    sees it: each file checked for YAML errors, the whole against the workflow's schema (errors
    by dotted key, ``lambdabeta.plan.checks``), then its defaults filled in."""
    import yaml
    from snakemake.utils import update_config, validate

    config: dict[str, Any] = {}
    for path in paths:
        checks.check_config_file(path)
        with open(path, encoding="utf-8") as handle:
            update_config(config, yaml.safe_load(handle))
    checks.check_schema(config, SCHEMA, paths)
    validate(config, SCHEMA, set_default=True)
    return config


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lambdabeta.plan.sizing JOB_COSTS [--configfile F ...]``: print the
    ``resources`` entries ``suggest_resources`` proposes, as YAML to paste into a config."""
    import argparse
    import csv

    parser = argparse.ArgumentParser(
        prog="python -m lambdabeta.plan.sizing", description=main.__doc__
    )
    parser.add_argument("job_costs", help="a pilot run's results/tables/job_costs.csv")
    parser.add_argument(
        "--configfile",
        nargs="+",
        default=["config/config.yaml"],
        help="the config of the runs to size (default: config/config.yaml)",
    )
    parser.add_argument("--runtime-margin", type=float, default=2.0)
    parser.add_argument("--memory-margin", type=float, default=1.5)
    args = parser.parse_args(argv)
    with open(args.job_costs, newline="") as handle:
        costs = list(csv.DictReader(handle))
    config = load_config(args.configfile)
    suggestions = suggest_resources(costs, config, args.runtime_margin, args.memory_margin)
    print(f"# from {args.job_costs}, sized for {' + '.join(args.configfile)}")
    print("resources:")
    for stage, entry in suggestions.items():
        # the entry as the config has it (threads, gpu), with the suggested memory and runtime;
        # one measured at the pilot's own sizes only as a comment, for a pilot of the same sizes
        merged = config["resources"][stage] | {k: entry[k] for k in ("mem_mb", "runtime")}
        line = f"{stage}: {{{', '.join(f'{k}: {v}' for k, v in merged.items())}}}"
        print(f"  # {entry['source']}")
        print(f"  {line}" if entry["scaled"] else f"  # {line}")


if __name__ == "__main__":
    main()
