"""Scheduler resources of the jobs: runtimes per attempt, and the GPUs of the local machine.

Snakemake pins no GPUs to local jobs, so ``gpu`` is also the local scheduler's limit: at most
``resources.jobs_per_gpu`` jobs per visible GPU run at once (``lambdabeta.devices`` then spreads
them over the GPUs). The scope is one machine or one SLURM submission, never the whole cluster.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

GPU_STAGES = ("linear_adamw", "stabilize", "finetune", "evaluate")
"""The ``resources`` entries of the jobs that can run on a GPU: each asks for one with its
``gpu`` key, and runs on the CPU when it is 0 (``lambdabeta.settings.job_device``)."""


def runtime(minutes: float) -> Callable[[object, int], float]:
    """A job's ``runtime`` resource: ``minutes``, times the attempt (a retried job gets more)."""
    return lambda wildcards, attempt: minutes * attempt


def visible_gpus(environ: Mapping[str, str] = os.environ, run: Callable = subprocess.run) -> int:
    """GPUs a job started here can use: the entries of CUDA_VISIBLE_DEVICES up to the first one
    CUDA would not accept (as CUDA reads it; "" or "-1" hide all), else the GPUs `nvidia-smi`
    lists (``run`` runs it), else 0."""
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        try:
            listing = run(
                ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
        return sum(line.startswith("GPU ") for line in listing.splitlines())
    count = 0
    for entry in listed.split(","):
        entry = entry.strip()
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        count += 1
    return count


def local_gpu_limit(gpus: int, jobs_per_gpu: int) -> int | None:
    """How many `gpu: 1` jobs may run at once on this machine: `jobs_per_gpu` per GPU. None (no
    limit) without a GPU: there those jobs run on the CPU and only --cores bounds them."""
    return gpus * jobs_per_gpu if gpus > 0 else None


# ---- memory ----------------------------------------------------------------------------------

RUNTIME_MB = 400
"""What a deep job holds before its arrays: the interpreter, torch and the model (measured: a
process at 0.31 GB before its first training step)."""
TRAINING_MB_PER_IMAGE = 1.5
"""Peak memory per image of a training batch (activations, their gradients, the float batch):
measured on the CPU for the paper's model on RGB images, 1.45 MB at batch 64, 1.01 at 512, 0.78
at 1,024 (peak RSS above the process before the first step)."""
EVALUATION_MB_PER_IMAGE = 0.45
"""Peak memory per image of an evaluation batch (forward pass only): measured 0.44 MB at batch
250, 0.36 at 1,000."""
IMAGE_BYTES = 64 * 64
"""Bytes of one image channel (uint8, 64 × 64)."""


def memory_needs(config: Mapping[str, Any]) -> dict[str, float]:
    """MB the deep jobs need with ``config``'s settings (validated, defaults filled): a training
    job's batches (``deep.train.batch_size`` × ``pack_size`` images at a time) and an
    evaluation's images (``num_train + num_test`` held as uint8) and batches, each plus
    ``RUNTIME_MB``. An estimate from the measured constants above; {} without deep datasets."""
    deep = config.get("deep") or {}
    if not deep.get("datasets"):
        return {}
    train, evaluate = deep["train"], deep["evaluate"]
    channels = 3  # the largest of the paper's datasets (RGB); a bound for the greyscale ones
    training = RUNTIME_MB + TRAINING_MB_PER_IMAGE * train["batch_size"] * train["pack_size"]
    return {
        "stabilize": training,
        "finetune": training,
        "evaluate": RUNTIME_MB
        + EVALUATION_MB_PER_IMAGE * evaluate["batch_size"]
        + (evaluate["num_train"] + evaluate["num_test"]) * channels * IMAGE_BYTES / 2**20,
    }


def memory_problems(config: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """Deep jobs whose arrays cannot fit their ``resources.<job>.mem_mb`` (``memory_needs``),
    so that a setting that cannot fit is refused before it takes the machine down. Each problem
    is (config key, value, the rule it breaks)."""
    problems = []
    for job, need in memory_needs(config).items():
        have = config["resources"][job]["mem_mb"]
        if need > have:
            problems.append(
                (
                    f"resources.{job}.mem_mb",
                    have,
                    f"is below the ≈ {need:,.0f} MB the {job} jobs need with these settings "
                    "(deep.train.batch_size, pack_size, deep.evaluate.*): raise it or shrink them",
                )
            )
    return problems


# ---- suggested resources from measured job costs ---------------------------------------------

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


def _load_config(paths: Sequence[str]) -> dict[str, Any]:
    """The config of ``paths`` (later files override earlier ones, key by key), validated
    against the workflow's schema with its defaults filled in, as the workflow sees it."""
    import yaml
    from snakemake.utils import update_config, validate

    config: dict[str, Any] = {}
    for path in paths:
        with open(path) as handle:
            update_config(config, yaml.safe_load(handle) or {})
    schema = os.path.join(os.path.dirname(__file__), "..", "..", "..", "schemas")
    validate(config, os.path.join(schema, "config.schema.yaml"), set_default=True)
    return config


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lambdabeta.plan.resources JOB_COSTS [--configfile F ...]``: print the
    ``resources`` entries ``suggest_resources`` proposes, as YAML to paste into a config."""
    import argparse
    import csv

    parser = argparse.ArgumentParser(
        prog="python -m lambdabeta.plan.resources", description=main.__doc__
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
    config = _load_config(args.configfile)
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
