"""Choosing the training device, and sharing several GPUs between concurrent local jobs.

Snakemake does not set ``CUDA_VISIBLE_DEVICES`` for local jobs, so on a workstation with several
visible GPUs every job would otherwise pick ``cuda:0``. Each job therefore claims a *slot*: an
exclusive ``fcntl.flock`` on the file ``gpu{index}-slot{slot}.lock`` in a lock directory shared by
all jobs, held for the lifetime of the process (the kernel releases it when the process exits,
however it exits). A GPU with ``jobs_per_gpu`` slots runs at most that many jobs at a time. Under
SLURM, which sets ``CUDA_VISIBLE_DEVICES``, a job sees one GPU and simply uses ``cuda:0``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch

from .plan.resources import visible_gpus
from .settings import check_device_spec

LOCK_DIR_ENV = "LAMBDABETA_GPU_LOCK_DIR"
"""Environment variable that overrides the directory holding the GPU slot lock files."""


logger = logging.getLogger(__name__)


@dataclass
class GpuSlot:
    """A claimed (GPU index, slot) pair; the lock holds while ``lock_file`` is open."""

    gpu: int
    slot: int
    lock_file: IO[str]

    def release(self) -> None:
        """Give the slot back to other processes."""
        if not self.lock_file.closed:
            fcntl.flock(self.lock_file, fcntl.LOCK_UN)
            self.lock_file.close()


# Slots claimed by this process; kept referenced so that their lock files stay open (and locked)
# until the process ends.
_held_slots: list[GpuSlot] = []


def default_lock_dir() -> Path:
    """``$LAMBDABETA_GPU_LOCK_DIR`` if set, else a per-user directory in the system temp dir."""
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"lambdabeta-gpu-locks-{os.getuid()}"


def try_claim_gpu_slot(
    num_gpus: int, jobs_per_gpu: int, lock_dir: str | os.PathLike
) -> GpuSlot | None:
    """Claim the first free slot without waiting, or return None when all are taken.

    Slots are visited slot-major (slot 0 of every GPU, then slot 1 of every GPU, …) so that
    concurrent jobs spread over the GPUs before any GPU takes a second job.
    """
    if num_gpus < 1 or jobs_per_gpu < 1:
        raise ValueError(f"need num_gpus ≥ 1 and jobs_per_gpu ≥ 1, got {num_gpus}, {jobs_per_gpu}")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(jobs_per_gpu):
        for gpu in range(num_gpus):
            lock_file = open(lock_dir / f"gpu{gpu}-slot{slot}.lock", "a")  # noqa: SIM115 (held)
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock_file.close()
                continue
            lock_file.truncate(0)
            lock_file.write(f"{os.getpid()}\n")
            lock_file.flush()
            return GpuSlot(gpu=gpu, slot=slot, lock_file=lock_file)
    return None


def claim_gpu_slot(
    num_gpus: int,
    jobs_per_gpu: int = 1,
    lock_dir: str | os.PathLike | None = None,
    poll_seconds: float = 10.0,
    timeout: float | None = None,
) -> GpuSlot:
    """Claim a free (GPU, slot), waiting ``poll_seconds`` between tries while all are taken.

    Raises ``TimeoutError`` after ``timeout`` seconds (None waits for ever).
    """
    lock_dir = default_lock_dir() if lock_dir is None else Path(lock_dir)
    start = time.monotonic()
    waiting_logged = False
    while True:
        slot = try_claim_gpu_slot(num_gpus, jobs_per_gpu, lock_dir)
        if slot is not None:
            if waiting_logged:
                logger.info("claimed GPU %d slot %d", slot.gpu, slot.slot)
            return slot
        waited = time.monotonic() - start
        if timeout is not None and waited >= timeout:
            raise TimeoutError(
                f"all {num_gpus} GPU(s) × {jobs_per_gpu} slot(s) in {lock_dir} stayed taken "
                f"for {waited:.0f} s"
            )
        if not waiting_logged:
            logger.info(
                "all %d GPU(s) × %d slot(s) in %s are taken; retrying every %g s",
                num_gpus,
                jobs_per_gpu,
                lock_dir,
                poll_seconds,
            )
            waiting_logged = True
        time.sleep(poll_seconds)


def peak_gpu_mb(device: torch.device) -> float | None:
    """The most GPU memory this process's tensors have held on ``device`` so far, in MiB
    (``torch.cuda.max_memory_allocated``; the caching allocator reserves somewhat more); None on
    the CPU, whose memory the job's benchmark record measures (max RSS)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def cuda_unusable(setting: str, gpus: int) -> str:
    """Why a job that sees ``gpus`` GPU(s) cannot use them with this torch, and what to do."""
    build = (
        f"a CUDA {torch.version.cuda} build (the driver may be older than it needs)"
        if torch.version.cuda
        else "a CPU build"
    )
    return (
        f"this job sees {gpus} GPU(s) but torch {torch.__version__}, {build}, cannot use them "
        f"(torch.cuda.is_available() is False), so it would train on the CPU. Install a CUDA "
        f"build that the driver supports (envs/README.md), or run on the CPU on purpose: set "
        f"{setting} to 'cpu' or the job's resources.<job>.gpu to 0"
    )


def select_device(
    spec: str,
    jobs_per_gpu: int = 1,
    lock_dir: str | os.PathLike | None = None,
    setting: str = "device",
) -> torch.device:
    """The torch device for ``spec`` (``auto`` = CUDA if available, else CPU).

    ``cuda:N`` is used as given. ``auto``/``cuda`` with one visible GPU use ``cuda:0``; with
    several, the process claims a GPU slot (see the module docstring) and keeps it until it exits.
    A GPU that torch does not see is an error naming ``setting``, the config key of ``spec``;
    so is ``auto`` where a GPU is visible (``CUDA_VISIBLE_DEVICES``, ``nvidia-smi``) but torch
    cannot use it: a CPU build of torch, or a CUDA build newer than the driver, would otherwise
    train a GPU job on the CPU without a word.
    """
    check_device_spec(spec)
    if spec == "auto" and not torch.cuda.is_available():
        gpus = visible_gpus()
        if gpus:
            raise RuntimeError(cuda_unusable(setting, gpus))
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    hint = f"; set {setting} to 'auto' or 'cpu' to run on the CPU"
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"{setting} {spec!r} requested but CUDA is not available to torch: it sees no CUDA "
            f"device{hint}"
        )
    num_gpus = torch.cuda.device_count()
    if spec.startswith("cuda:"):
        index = int(spec.split(":")[1])
        if index >= num_gpus:
            raise RuntimeError(
                f"{setting} {spec!r} requested but torch sees only {num_gpus} CUDA device(s){hint}"
            )
        return torch.device(spec)
    if num_gpus == 1:
        return torch.device("cuda:0")
    slot = claim_gpu_slot(num_gpus, jobs_per_gpu, lock_dir)
    _held_slots.append(slot)
    logger.info("using GPU %d (slot %d of %d)", slot.gpu, slot.slot, jobs_per_gpu)
    return torch.device(f"cuda:{slot.gpu}")
