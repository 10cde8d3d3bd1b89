"""The checkpoint contract: what a run in progress writes, and when it may be resumed.

Every ``checkpoint_every`` steps, each run writes ``progress_dir/checkpoint.pt`` atomically: its
model, its Adam's ``state_dict``, both generator states, its step, its curve rows so far and the
terms of its open row, its wall time, and its *identity*. The file has the format of a solo run
whatever pack wrote it, so a run interrupted in one pack resumes alone or in another pack. A run
restarted after a kill ends with bitwise the same weights and curve (on CPU; the ``seconds``
column is wall time) as a run that was never interrupted.

The identity is what a checkpoint must agree on to be resumed: the science settings
(``TrainSettings.science``), the data shape and the sha256 of the initial weights (a finetune's
stabilized model). A checkpoint of another identity or format is refused with
``CheckpointMismatchError``, never resumed; logistics such as threads, device or the
checkpoint interval may change between sessions.

Keys of format 2 (format 1 drew a finetune's streams per λ): ``format, identity, step, model,
optimizer, index_rng, noise_rng, pending, rows, elapsed, pack``, and ``controller``, the state of
an adaptive λ's controller (None, or absent in older files, for a static λ). An adaptive run's
identity holds its controller's settings, so a resume under other settings is refused.

A checkpoint that does not load (``torch.load(weights_only=True)`` fails: random bytes, a
truncated file, a foreign pickle) or lacks these keys is moved aside to ``checkpoint.pt.corrupt``
and reported (``lambdabeta.model.load_record``); the next run of the job starts over.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_path
from ..model import load_record, require_keys
from ..settings import TrainSettings

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
PARTIAL_CURVE_FILE = "curve.partial.csv"
# 2: the streams of a finetune depend on (seed, phase) only; format-1 checkpoints drew per λ
CHECKPOINT_FORMAT = 2
CHECKPOINT_KEYS = (
    "format",
    "identity",
    "step",
    "model",
    "optimizer",
    "index_rng",
    "noise_rng",
    "pending",
    "rows",
    "elapsed",
    "pack",
)
"""What every checkpoint of ``CHECKPOINT_FORMAT`` holds (``controller`` may be absent)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint in the progress directory belongs to a run with different settings."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_identity(
    settings: TrainSettings, data_shape: Iterable[int], init_sha256: str | None
) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: the science settings, the data shape and
    the initial weights."""
    return settings.science() | {
        "data_shape": list(data_shape),
        "init_model_sha256": init_sha256,
    }


def check_identity(checkpoint: dict, identity: dict[str, Any], path: Path, run: str) -> None:
    """Refuse a checkpoint of another format or identity, naming what differs."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(
            f"{path} has checkpoint format {checkpoint.get('format')!r}, this version reads "
            f"{CHECKPOINT_FORMAT}; delete {path.parent} to start {run} over"
        )
    saved = checkpoint.get("identity", {})
    differing = sorted(k for k in saved.keys() | identity.keys() if saved.get(k) != identity.get(k))
    if differing:
        details = "; ".join(
            f"{k}: checkpoint {saved.get(k)!r}, now {identity.get(k)!r}" for k in differing
        )
        raise CheckpointMismatchError(
            f"{path} belongs to a different run of {run} ({details}). Restore the original "
            f"settings to resume it, or delete {path.parent} to start over."
        )


def read_checkpoint(
    progress_dir: Path, identity: dict[str, Any], weight_names: Iterable[str], run: str
) -> dict[str, Any] | None:
    """The checkpoint of ``run`` in ``progress_dir`` (created if missing), or None if there is
    none; refused (``CheckpointMismatchError``) if its identity or weights differ, moved aside
    (``CorruptFileError``) if it is not a checkpoint of this pipeline. Leftovers of a write that
    was killed are removed."""
    progress_dir.mkdir(parents=True, exist_ok=True)
    for stale in progress_dir.glob(f".{CHECKPOINT_FILE}.*"):  # a kill during a write
        stale.unlink()
    path = progress_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    recompute = f"the next `snakemake` run starts {run} over from step 0"
    checkpoint = load_record(path, ("format",), "a training checkpoint", recompute)
    check_identity(checkpoint, identity, path, run)
    # the format agrees: a key it has to hold is missing only from a damaged or foreign file
    require_keys(path, checkpoint, CHECKPOINT_KEYS, "a training checkpoint", recompute)
    names = sorted(weight_names)
    if sorted(checkpoint["model"]) != names:
        raise CheckpointMismatchError(
            f"{path} holds weights {sorted(checkpoint['model'])}, {run} has {names}; "
            f"delete {progress_dir} to start over"
        )
    return checkpoint


def write_checkpoint(
    path: Path,
    *,
    identity: dict[str, Any],
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any] | None,
    index_rng: torch.Tensor,
    noise_rng: torch.Tensor,
    pending: torch.Tensor,
    rows: list[list[float]],
    elapsed: float,
    pack: list[str],
    controller: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write everything needed to continue a run after ``step``, atomically."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "identity": identity,
        "step": step,
        "model": weights,
        "optimizer": optimizer,
        "index_rng": index_rng,
        "noise_rng": noise_rng,
        "pending": pending,
        "rows": rows,
        "elapsed": elapsed,
        "pack": pack,
        "controller": controller,
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def remove_progress(progress_dir: Path) -> None:
    """Delete the files this module writes in ``progress_dir``, then the directory if empty."""
    for pattern in (CHECKPOINT_FILE, PARTIAL_CURVE_FILE, f".{CHECKPOINT_FILE}.*"):
        for path in progress_dir.glob(pattern):
            path.unlink(missing_ok=True)
    try:
        progress_dir.rmdir()
    except OSError:
        logger.warning("left %s in place: it holds files this run did not write", progress_dir)
