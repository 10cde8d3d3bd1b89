"""Scheduler resources of the jobs: runtimes per attempt, and the GPUs of the local machine.

Snakemake pins no GPUs to local jobs, so ``gpu`` is also the local scheduler's limit: at most
``resources.jobs_per_gpu`` jobs per visible GPU run at once (``lambdabeta.devices`` then spreads
them over the GPUs). The scope is one machine or one SLURM submission, never the whole cluster.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping

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
