"""The entry points: train one phase of one run (``train``) or of a pack of runs (``train_pack``).

A pack trains K runs of one dataset and phase in one process. Each member keeps everything its
solo run has: its own weights and fresh Adam, its own index and noise streams (the solo run's,
so its data order does not depend on its pack), its own β and λ, its own checkpoint and its own
output files. On CPU the members run one after another (``loop`` mode) and each member's numbers
are its solo run's, bit for bit; on CUDA one vmapped forward runs every layer for all K members
in one kernel (``vmap`` mode), and members agree with their solo runs to float32 rounding.
``train`` is a pack of one: there is one code path.

Failures: a member whose loss or weights turn NaN/inf stops alone; the others go on, finish and
write their outputs, and then ``NonFiniteLossError`` names every member that stopped. The
finished members then also keep a checkpoint at their last step, so that when a scheduler
deletes the outputs of the failed job, running it again rewrites them without training.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..devices import peak_gpu_mb
from ..io import job_log
from ..loader import DeviceImages
from ..model import IMAGE_SIZE
from ..settings import TrainSettings
from .layouts import PACK_MODES, default_mode, effective_mode
from .member import PackMember, finish, pack_label, resume, start_member
from .session import next_session, run_steps, start_session
from .step import configure_device

logger = logging.getLogger(__name__)

PER_MEMBER_SETTINGS = ("beta", "lam", "seed", "run_name")
"""The settings in which the members of one pack may differ; they share all the others."""


class NonFiniteLossError(FloatingPointError):
    """The loss (hence the input batch or the weights) became NaN or infinite."""


def train(
    settings: TrainSettings,
    images: np.ndarray,
    *,
    model_path: str | os.PathLike,
    log_path: str | os.PathLike,
    summary_path: str | os.PathLike,
    progress_dir: str | os.PathLike,
    init_model: str | os.PathLike | None = None,
    jobs_per_gpu: int = 1,
    progress_interval: float = 30.0,
) -> dict[str, Any]:
    """Train one phase of one run (a pack of one) and write the model, the training curve and
    a summary; return the summary.

    ``images`` is uint8 N × 64 × 64 × C (a memory map is fine: it is copied to the device once).
    ``init_model`` (finetune only, required there) is the stabilized model to start from.
    ``progress_dir`` holds the checkpoint and the partial curve while the phase runs; a checkpoint
    found there is resumed if its settings match (``CheckpointMismatchError`` otherwise), and the
    directory is removed once the outputs are written. ``jobs_per_gpu`` is passed to
    ``select_device``; the progress bar (on stderr) refreshes at most every
    ``progress_interval`` seconds. Raises ``NonFiniteLossError`` if a loss term becomes NaN/inf;
    the last checkpoint (written before the failure) is kept.
    """
    member = PackMember(
        settings=settings,
        model_path=Path(model_path),
        log_path=Path(log_path),
        summary_path=Path(summary_path),
        progress_dir=Path(progress_dir),
        init_model=None if init_model is None else Path(init_model),
    )
    summaries = train_pack(
        [member], images, jobs_per_gpu=jobs_per_gpu, progress_interval=progress_interval
    )
    return summaries[0]


def train_pack(
    members: Sequence[PackMember],
    images: np.ndarray,
    *,
    jobs_per_gpu: int = 1,
    progress_interval: float = 30.0,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Train the runs ``members`` (one dataset, one phase) together; each writes the files of
    its solo run. Returns their summaries, in order.

    The members may differ only in β, λ, seed and name (``PER_MEMBER_SETTINGS``); their device,
    thread and layout settings are the first member's. ``mode`` is ``"loop"`` or ``"vmap"``
    (see ``lambdabeta.training.layouts``; default: ``vmap`` on CUDA, ``loop`` on CPU).
    ``images``, ``jobs_per_gpu`` and ``progress_interval`` are as for ``train``. Each
    summary's ``pack`` record names the job that trained the run by its log file (``log``:
    ``lambdabeta.costs`` joins it to the job's benchmark record) and the job's peak GPU memory.
    If members'
    losses or weights become NaN/inf, the others finish and write their outputs first, then
    ``NonFiniteLossError`` names every failed member.
    """
    _check_images(images)
    members = list(members)
    _check_pack(members)
    if mode is not None and mode not in PACK_MODES:
        raise ValueError(f"pack mode must be one of {PACK_MODES} or None, got {mode!r}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(members[0].settings.threads)
    try:
        return _train_pack(members, images, jobs_per_gpu, progress_interval, mode)
    finally:
        torch.set_num_threads(previous_threads)


def _train_pack(
    specs: list[PackMember],
    images: np.ndarray,
    jobs_per_gpu: int,
    progress_interval: float,
    mode: str | None,
) -> list[dict[str, Any]]:
    settings = specs[0].settings
    label = pack_label(specs)
    device, device_name = configure_device(settings, label, jobs_per_gpu)
    mode = default_mode(device) if mode is None else mode
    members = [start_member(spec, images, device) for spec in specs]
    for member in members:
        resume(member)
    logger.info(
        "%s: %s phase, %d steps on %s (%d images %s), threads=%d, %s mode",
        label,
        settings.phase,
        settings.steps,
        device_name,
        images.shape[0],
        "×".join(map(str, images.shape[1:])),
        settings.threads,
        mode,
    )
    if not all(member.done for member in members):
        data = DeviceImages(images, device, channels_last=settings.channels_last)
        while (plan := next_session(members)) is not None:
            group, stop = plan
            run_steps(start_session(group, device, mode), data, stop, progress_interval)

    failed = [member for member in members if member.failure is not None]
    pack = {
        "runs": [spec.run_name for spec in specs],
        "mode": effective_mode(mode, len(specs)),
        "log": job_log(),
        # the process's peak, shared by its runs (null on the CPU: see the benchmark's max_rss)
        "peak_gpu_mb": peak_gpu_mb(device),
    }
    summaries = [
        finish(member, images.shape, device_name, pack, keep_progress=bool(failed))
        for member in members
        if member.failure is None
    ]
    if failed:
        others = len(members) - len(failed)
        finished = f"; the {others} other run(s) of the pack finished" if others else ""
        raise NonFiniteLossError("; ".join(member.failure for member in failed) + finished)
    return summaries


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        shape = getattr(images, "shape", None)
        raise ValueError(
            f"images must be a uint8 N×H×W×C array, got {type(images).__name__} "
            f"{getattr(images, 'dtype', '')} {shape}"
        )
    if images.shape[0] < 1 or images.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"images must be N×{IMAGE_SIZE}×{IMAGE_SIZE}×C with N ≥ 1, got {images.shape}"
        )


def _check_pack(members: list[PackMember]) -> None:
    """Members share every setting but ``PER_MEMBER_SETTINGS``, have distinct names and files,
    and each has an init model exactly if it finetunes."""
    if not members:
        raise ValueError("a pack needs at least one run")
    first = members[0].settings.to_dict()
    for member in members:
        settings = member.settings
        if (settings.phase == "finetune") != (member.init_model is not None):
            raise ValueError(
                f"{settings.run_name}: phase {settings.phase!r} "
                + ("needs an init_model" if member.init_model is None else "takes no init_model")
            )
        own = settings.to_dict()
        differing = sorted(
            key for key in own if key not in PER_MEMBER_SETTINGS and own[key] != first[key]
        )
        if differing:
            raise ValueError(
                f"the runs of a pack share every setting but {PER_MEMBER_SETTINGS}: "
                f"{settings.run_name} differs from {members[0].run_name} in {differing}"
            )
    for what in ("run_name", "model_path", "log_path", "summary_path", "progress_dir"):
        values = [getattr(member, what) for member in members]
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"the runs of a pack need distinct {what}s; repeated: {repeated}")
