"""Scheduler resources of the jobs: runtimes per attempt, and the GPUs of the local machine.

Snakemake pins no GPUs to local jobs, so ``gpu`` is also the local scheduler's limit: at most
``resources.jobs_per_gpu`` jobs per visible GPU run at once (``lambdabeta.devices`` then spreads
them over the GPUs). The scope is one machine or one SLURM submission, never the whole cluster.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
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
