"""Training one phase of the two-phase λβ-VAE protocol (paper §5.2), for one run or for a pack of
runs trained in one process, resumable and reproducible.

A phase is ``stabilize`` (a β-VAE trained from a seeded initialisation) or ``finetune`` (the
λβ-VAE objective, starting from a stabilized model's weights with a fresh Adam). Each step draws
``batch_size`` image indices uniformly with replacement and the reparameterisation noise from two
seeded ``torch.Generator`` on the training device; the images live on that device as uint8
(``DeviceImages``), so a step involves no host↔device transfer and no per-image Python.

Packs: ``train_pack`` trains K runs of one dataset and phase at once. Each member keeps
everything its solo run has: its own weights and fresh Adam, its own index and noise streams
(the solo run's, so its data order does not depend on its pack), its own β and λ, its own
checkpoint and its own output files. The K models are stacked and trained as one model whose
loss is the sum of theirs (``lambdabeta.packed``): on CPU the members run one after another
(``loop`` mode) and each member's numbers are its solo run's, bit for bit; on CUDA one vmapped
forward runs every layer for all K members in one kernel (``vmap`` mode), and members agree with
their solo runs to float32 rounding. ``train`` is a pack of one: there is one code path.

Reproducibility:

* weight initialisation is seeded from ``seed`` alone, so a seed starts every β from the same
  model; the index and noise streams are derived from ``(seed, phase)`` with
  ``np.random.SeedSequence``, so the λ finetunes of one stabilization see the same batches and
  noise and differ only by λ;
* every ``checkpoint_every`` steps, each member's model, optimizer, both generator states, step
  and curve so far are written atomically to its own ``progress_dir/checkpoint.pt``, in the
  format of a solo run: a run interrupted in one pack resumes alone or in another pack. A run
  restarted after a kill ends with bitwise the same weights and curve (on CPU; the ``seconds``
  column is wall time) as a run that was never interrupted. Members found at different steps
  (a kill between two members' checkpoint writes, or runs interrupted in other packs) are
  trained from the earliest step, each joining the pack when the pack reaches its step. A
  checkpoint whose science settings (``TrainSettings.science``) differ is refused, never
  resumed; logistics such as threads, device or the checkpoint interval may change between
  sessions.

Failures: a member whose loss or weights turn NaN/inf stops alone, at the first curve row or
checkpoint that sees it; the others go on, finish and write their outputs, and then
``NonFiniteLossError`` names every member that stopped. The finished members then also keep a
checkpoint at their last step, so that when a scheduler deletes the outputs of the failed job,
running it again rewrites them without training.

The training curve has one row per ``log_every`` steps holding the *mean* of each loss term over
the steps since the previous row (``steps_in_row`` of them), so means over any window of whole
rows are exact. Loss terms are accumulated on the device and read back only when a row is
written, so the step itself never waits for the device.

Device options: ``precision="bf16"`` autocasts the model to bfloat16 on CUDA and is refused on
CPU (where it would be emulated, slowly, and the run would not be the one its settings name);
``tf32`` sets the CUDA matmul/cuDNN TF32 flags; ``compile`` wraps forward and loss in
``torch.compile``; ``channels_last`` keeps images and weights NHWC (on CPU the faster layout for
this model's transposed convolutions); ``cuda_graphs`` captures the whole step — forward,
backward and a ``capturable`` Adam — in one CUDA graph, and is ignored on CPU. ``compile`` and
``cuda_graphs`` are exclusive.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .devices import select_device
from .grid import PHASES
from .io import atomic_path, write_json
from .loader import DeviceImages
from .model import IMAGE_SIZE, VAE, load_model, save_weights
from .packed import (
    PACK_MODES,
    PackGradients,
    PackWeights,
    default_mode,
    effective_mode,
    make_pack_gradients,
    pack_weights,
)
from .settings import TrainSettings

__all__ = ["PackMember", "TrainSettings", "train", "train_pack"]  # TrainSettings: from .settings

logger = logging.getLogger(__name__)

LOSS_COLUMNS = ("loss", "bce", "kl", "l2")
CHECKPOINT_FILE = "checkpoint.pt"
PARTIAL_CURVE_FILE = "curve.partial.csv"
# 2: the streams of a finetune depend on (seed, phase) only; format-1 checkpoints drew per λ
CHECKPOINT_FORMAT = 2

PER_MEMBER_SETTINGS = ("beta", "lam", "seed", "run_name")
"""The settings in which the members of one pack may differ; they share all the others."""

# Eager steps before a CUDA graph is captured (lazy state such as cuBLAS handles and Adam's
# moment buffers must exist before capture).
_CUDA_GRAPH_WARMUP_STEPS = 3

# Spawn-key tags of the random streams derived from a seed.
_INIT_STREAM, _INDEX_STREAM, _NOISE_STREAM = 0, 1, 2


class NonFiniteLossError(FloatingPointError):
    """The loss (hence the input batch or the weights) became NaN or infinite."""


class CheckpointMismatchError(ValueError):
    """A checkpoint in the progress directory belongs to a run with different settings."""


@dataclass(frozen=True)
class PackMember:
    """One run of a pack: its settings and the files it reads and writes.

    ``init_model`` (finetune only, required there) is the stabilized model to start from;
    ``progress_dir`` holds the run's checkpoint and partial curve while it trains.
    """

    settings: TrainSettings
    model_path: Path
    log_path: Path
    summary_path: Path
    progress_dir: Path
    init_model: Path | None = None

    def __post_init__(self) -> None:
        for name in ("model_path", "log_path", "summary_path", "progress_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.init_model is not None:
            object.__setattr__(self, "init_model", Path(self.init_model))

    @property
    def run_name(self) -> str:
        return self.settings.run_name


# ---- seeds ---------------------------------------------------------------------------------


def _seed_from(seed: int, *spawn_key: int) -> int:
    """A 63-bit torch seed from ``SeedSequence(seed, spawn_key)``."""
    state = np.random.SeedSequence(seed, spawn_key=spawn_key).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def initialisation_seed(seed: int) -> int:
    """Torch seed of the weight initialisation: a function of ``seed`` alone."""
    return _seed_from(seed, _INIT_STREAM)


def stream_seeds(seed: int, phase: str) -> tuple[int, int]:
    """Torch seeds of the batch-index and noise streams of ``(seed, phase)``.

    The streams do not depend on β or λ: every λ finetune of one stabilized model sees the same
    batches and the same noise (as in the authors' code, which reseeds with the run's seed before
    each λ), so a λ comparison within a seed differs only by λ.
    """
    phase_code = PHASES.index(phase)
    return (
        _seed_from(seed, _INDEX_STREAM, phase_code),
        _seed_from(seed, _NOISE_STREAM, phase_code),
    )


def make_generators(
    settings: TrainSettings, device: torch.device
) -> tuple[torch.Generator, torch.Generator]:
    """Seeded generators (batch indices, reparameterisation noise) on ``device``."""
    index_seed, noise_seed = stream_seeds(settings.seed, settings.phase)
    index_generator = torch.Generator(device=device)
    index_generator.manual_seed(index_seed)
    noise_generator = torch.Generator(device=device)
    noise_generator.manual_seed(noise_seed)
    return index_generator, noise_generator


def initial_model(in_channels: int, latent_dim: int, seed: int) -> VAE:
    """A freshly initialised VAE (on CPU) whose weights depend on ``seed`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(initialisation_seed(seed))
        return VAE(in_channels, latent_dim)


def curve_columns(latent_dim: int) -> list[str]:
    """Header of the training-curve CSV."""
    latents = [f"kl_z{j}" for j in range(latent_dim)]
    return ["step", *LOSS_COLUMNS, *latents, "seconds", "steps_in_row"]


# ---- the training step -------------------------------------------------------------------


def _make_step(
    optimizer: torch.optim.Optimizer, pack_gradients: PackGradients
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The function running one optimisation step of the pack on a batch of each member;
    returns the members' loss terms (K × terms)."""

    def step(indices: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        terms = pack_gradients(indices, noise)
        optimizer.step()
        return terms

    return step


def _autocast(settings: TrainSettings, device: torch.device) -> Callable[[], Any]:
    """The context the model's forward pass runs in: bfloat16 autocast for ``precision=bf16``."""
    # autocast's weight-cast cache must be off while a CUDA graph is captured
    return functools.partial(
        torch.autocast,
        device.type,
        torch.bfloat16,
        enabled=settings.precision == "bf16",
        cache_enabled=not settings.cuda_graphs,
    )


class _CudaGraphStep:
    """Replays one captured CUDA graph of a whole training step (forward, backward, Adam).

    The first calls run eagerly on a side stream, as capture requires; the next call captures
    the step and replays it. Callers must pass the same (static) index and noise tensors on
    every call, refilled in place, and read the returned (static) terms before the next call.
    """

    def __init__(self, step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], warmup: int):
        self.step = step
        self.warmup_left = warmup
        self.stream = torch.cuda.Stream()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.terms: torch.Tensor | None = None

    def __call__(self, indices: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.warmup_left > 0:
            self.warmup_left -= 1
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                terms = self.step(indices, noise)
            torch.cuda.current_stream().wait_stream(self.stream)
            return terms
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.terms = self.step(indices, noise)
        self.graph.replay()
        return self.terms


class _RowAccumulator:
    """Per-step loss terms of each member's curve row in progress, kept on the device."""

    def __init__(self, rows: int, members: int, width: int, device: torch.device):
        self.values = torch.empty(rows, members, width, device=device)
        self.count = 0

    def add(self, terms: torch.Tensor) -> None:
        """Append one step's terms (members × terms)."""
        self.values[self.count].copy_(terms)
        self.count += 1

    def first_nonfinite(self) -> list[int | None]:
        """For each member, the offset (0-based) of its first step with a NaN/inf term, or
        None (one device sync)."""
        members = self.values.shape[1]
        if self.count == 0:
            return [None] * members
        finite = torch.isfinite(self.values[: self.count]).all(dim=2)  # steps × members
        has_bad = (~finite).any(dim=0).tolist()
        first_bad = torch.argmin(finite.to(torch.uint8), dim=0).tolist()
        return [offset if bad else None for bad, offset in zip(has_bad, first_bad, strict=True)]

    def take_means(self) -> tuple[list[list[float]], int]:
        """Each member's mean of each term over the accumulated steps (in float64), and their
        number; resets."""
        means = [
            # contiguous: each member's mean is summed exactly as a solo run's
            self.values[: self.count, k].contiguous().double().mean(dim=0).tolist()
            for k in range(self.values.shape[1])
        ]
        count, self.count = self.count, 0
        return means, count

    def pending(self, k: int) -> torch.Tensor:
        """Member ``k``'s terms of the open row (steps × terms), copied to the CPU."""
        return self.values[: self.count, k].to("cpu", copy=True)

    def restore(self, pending: Sequence[torch.Tensor]) -> None:
        """Reopen the members' rows from their ``pending`` terms (one count for all)."""
        counts = {int(terms.shape[0]) for terms in pending}
        if len(counts) != 1:
            raise ValueError(f"pack members have open curve rows of {sorted(counts)} steps")
        self.count = counts.pop()
        for k, terms in enumerate(pending):
            self.values[: self.count, k].copy_(terms.to(self.values.device))


# ---- files -------------------------------------------------------------------------------


def _write_curve(path: Path, rows: list[list[float]], latent_dim: int) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(curve_columns(latent_dim))
        writer.writerows(rows)


def _append_curve_row(path: Path, row: list[float]) -> None:
    # the partial curve is for watching a run; resuming uses the rows stored in the checkpoint
    with open(path, "a", newline="") as stream:
        csv.writer(stream).writerow(row)


def _file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_identity(
    settings: TrainSettings, images: np.ndarray, init_sha256: str | None
) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: the science settings, the data shape and
    the initial weights."""
    return settings.science() | {
        "data_shape": list(images.shape),
        "init_model_sha256": init_sha256,
    }


def _check_identity(checkpoint: dict, identity: dict[str, Any], path: Path, run: str) -> None:
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


def _remove_progress(progress_dir: Path) -> None:
    """Delete the files this module writes in ``progress_dir``, then the directory if empty."""
    for pattern in (CHECKPOINT_FILE, PARTIAL_CURVE_FILE, f".{CHECKPOINT_FILE}.*"):
        for path in progress_dir.glob(pattern):
            path.unlink(missing_ok=True)
    try:
        progress_dir.rmdir()
    except OSError:
        logger.warning("left %s in place: it holds files this run did not write", progress_dir)


# ---- device options ------------------------------------------------------------------------


def _configure_device(
    settings: TrainSettings, label: str, jobs_per_gpu: int
) -> tuple[torch.device, str]:
    """Resolve the device and apply the device-wide switches; returns (device, its name)."""
    device = select_device(settings.device, jobs_per_gpu)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
        return device, torch.cuda.get_device_name(device)
    if settings.precision == "bf16":
        raise ValueError(
            f"{label}: precision 'bf16' needs a CUDA device, but training runs on CPU; set "
            "precision to 'fp32' for CPU runs"
        )
    if settings.cuda_graphs:
        logger.info("%s: cuda_graphs ignored on CPU", label)
    if not settings.channels_last:
        # PyTorch runs transposed convolutions through oneDNN only in NHWC layout on CPU
        logger.info(
            "%s: channels_last is off; on CPU, channels_last=true trains this model faster "
            "(oneDNN transposed convolutions)",
            label,
        )
    return device, "cpu"


# ---- entry points --------------------------------------------------------------------------


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
    (see ``lambdabeta.packed``; default: ``vmap`` on CUDA, ``loop`` on CPU). ``images``,
    ``jobs_per_gpu`` and ``progress_interval`` are as for ``train``. If members' losses or
    weights become NaN/inf, the others finish and write their outputs first, then
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


def _pack_label(members: Sequence[PackMember]) -> str:
    """How log lines name a pack: the run's name for a pack of one."""
    if len(members) == 1:
        return members[0].run_name
    return f"pack of {len(members)} ({members[0].run_name}, …)"


# ---- one run of a pack -----------------------------------------------------------------------


def _build_model(
    settings: TrainSettings, in_channels: int, init_model: Path | None
) -> tuple[VAE, str | None]:
    """The model to train (on CPU) and the sha256 of the file it was loaded from, if any."""
    if init_model is None:
        return initial_model(in_channels, settings.latent_dim, settings.seed), None
    model, _ = load_model(init_model)
    if (model.in_channels, model.latent_dim) != (in_channels, settings.latent_dim):
        raise ValueError(
            f"{init_model} has {model.in_channels} channel(s) and {model.latent_dim} latents, "
            f"but {settings.run_name} trains {in_channels} channel(s) and "
            f"{settings.latent_dim} latents"
        )
    return model.train(), _file_sha256(init_model)


@dataclass
class _Member:
    """One run of a pack between training sessions: what its checkpoint holds (the solo run's
    format) and how it ended."""

    spec: PackMember
    identity: dict[str, Any]
    weights: dict[str, torch.Tensor]  # on the device, laid out as the solo run's model
    optimizer: dict[str, Any] | None  # its Adam's state_dict; None for a fresh Adam
    index_generator: torch.Generator
    noise_generator: torch.Generator
    pending: torch.Tensor  # the open curve row: steps × terms, on the CPU
    rows: list[list[float]] = field(default_factory=list)
    step: int = 0
    start_step: int = 0
    elapsed_before: float = 0.0  # wall seconds of the run before the current session
    trained_seconds: float = 0.0  # wall seconds this process spent on its steps
    failure: str | None = None

    @property
    def settings(self) -> TrainSettings:
        return self.spec.settings

    @property
    def name(self) -> str:
        return self.spec.run_name

    @property
    def checkpoint_path(self) -> Path:
        return self.spec.progress_dir / CHECKPOINT_FILE

    @property
    def partial_curve(self) -> Path:
        return self.spec.progress_dir / PARTIAL_CURVE_FILE

    @property
    def done(self) -> bool:
        return self.failure is not None or self.step >= self.settings.steps


def _start_member(spec: PackMember, images: np.ndarray, device: torch.device) -> _Member:
    """A run's initial state: seeded (or loaded) weights, fresh Adam and generators."""
    settings = spec.settings
    model, init_sha256 = _build_model(settings, int(images.shape[-1]), spec.init_model)
    model = model.to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    index_generator, noise_generator = make_generators(settings, device)
    return _Member(
        spec=spec,
        identity=_run_identity(settings, images, init_sha256),
        weights={name: tensor.detach() for name, tensor in model.named_parameters()},
        optimizer=None,
        index_generator=index_generator,
        noise_generator=noise_generator,
        pending=torch.empty(0, len(LOSS_COLUMNS) + settings.latent_dim),
    )


def _resume(member: _Member) -> None:
    """Continue from the checkpoint in the run's progress directory, if there is one of this
    run."""
    progress_dir, run = member.spec.progress_dir, member.name
    progress_dir.mkdir(parents=True, exist_ok=True)
    for stale in progress_dir.glob(f".{CHECKPOINT_FILE}.*"):  # a kill during a write
        stale.unlink()
    path = member.checkpoint_path
    if path.is_file():
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        _check_identity(checkpoint, member.identity, path, run)
        saved = checkpoint["model"]
        if saved.keys() != member.weights.keys():
            raise CheckpointMismatchError(
                f"{path} holds weights {sorted(saved)}, {run} has {sorted(member.weights)}; "
                f"delete {progress_dir} to start over"
            )
        with torch.no_grad():
            for name, tensor in member.weights.items():
                tensor.copy_(saved[name])
        member.optimizer = checkpoint["optimizer"]
        member.index_generator.set_state(checkpoint["index_rng"])
        member.noise_generator.set_state(checkpoint["noise_rng"])
        member.pending = checkpoint["pending"]
        member.rows = checkpoint["rows"]
        member.step = member.start_step = checkpoint["step"]
        member.elapsed_before = checkpoint["elapsed"]
        logger.info("%s: resuming from step %d of %d", run, member.step, member.settings.steps)
    _write_curve(member.partial_curve, member.rows, member.settings.latent_dim)


def _write_checkpoint(
    member: _Member,
    *,
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any] | None,
    pending: torch.Tensor,
    elapsed: float,
    pack: list[str],
) -> None:
    """Write everything needed to continue the run after its current step, atomically."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "identity": member.identity,
        "step": member.step,
        "model": weights,
        "optimizer": optimizer,
        "index_rng": member.index_generator.get_state(),
        "noise_rng": member.noise_generator.get_state(),
        "pending": pending,
        "rows": member.rows,
        "elapsed": elapsed,
        "pack": pack,
    }
    with atomic_path(member.checkpoint_path) as tmp:
        torch.save(checkpoint, tmp)


# ---- a session: members at one step, trained together -------------------------------------


@dataclass
class _Session:
    """Members at the same step trained together (``lambdabeta.packed``): the state a stretch
    of steps updates. Each member takes its own state back when the session ends."""

    members: list[_Member]
    device: torch.device
    weights: PackWeights
    optimizer: torch.optim.Optimizer
    accumulator: _RowAccumulator
    step: int
    started: float = field(default_factory=time.perf_counter)

    @property
    def settings(self) -> TrainSettings:
        """The settings the members share (β, λ, seed and name are each member's own)."""
        return self.members[0].settings

    def elapsed(self, member: _Member) -> float:
        """Wall seconds of ``member``'s run so far, over all its sessions."""
        return member.elapsed_before + time.perf_counter() - self.started


def _next_session(members: list[_Member]) -> tuple[list[_Member], int] | None:
    """The members to train next and the step to train them to, or None when all are done.

    The members at the earliest step train together up to the next step some other member is
    at (where that one joins) or to the end.
    """
    active = [member for member in members if not member.done]
    if not active:
        return None
    start = min(member.step for member in active)
    group = [member for member in active if member.step == start]
    later = [member.step for member in active if member.step > start]
    return group, min(later, default=group[0].settings.steps)


def _start_session(members: list[_Member], device: torch.device, mode: str) -> _Session:
    """Gather the members' weights and Adam states into one pack and one optimizer."""
    settings = members[0].settings
    weights = pack_weights([member.weights for member in members], mode)
    optimizer = torch.optim.Adam(
        weights.parameters(),
        lr=settings.lr,
        betas=settings.adam_betas,
        eps=settings.adam_eps,
        fused=True,
        capturable=settings.cuda_graphs and device.type == "cuda",
    )
    states = [member.optimizer for member in members]
    if any(state is not None for state in states):
        if any(state is None for state in states):
            raise ValueError("a pack cannot join fresh runs with resumed ones at one step")
        optimizer.load_state_dict(weights.adam_state(states))
    width = len(LOSS_COLUMNS) + settings.latent_dim
    accumulator = _RowAccumulator(settings.log_every, len(members), width, device)
    accumulator.restore([member.pending for member in members])
    return _Session(
        members=members,
        device=device,
        weights=weights,
        optimizer=optimizer,
        accumulator=accumulator,
        step=members[0].step,
    )


def _member_optimizer_state(session: _Session, k: int) -> dict[str, Any] | None:
    state_dict = session.optimizer.state_dict()
    return session.weights.member_adam_state(state_dict, k) if state_dict["state"] else None


def _end_session(session: _Session) -> None:
    """Hand each member its own weights, Adam state, open row and clock back."""
    seconds = time.perf_counter() - session.started
    for k, member in enumerate(session.members):
        member.weights = session.weights.member_weights(k)
        member.optimizer = _member_optimizer_state(session, k)
        member.pending = session.accumulator.pending(k)
        member.step = session.step
        member.elapsed_before += seconds
        member.trained_seconds += seconds


def _save_checkpoints(session: _Session) -> None:
    """Write the checkpoint of every member still training."""
    pack = [member.name for member in session.members]
    for k, member in enumerate(session.members):
        if member.failure is None:
            member.step = session.step
            _write_checkpoint(
                member,
                weights=session.weights.member_weights(k),
                optimizer=_member_optimizer_state(session, k),
                pending=session.accumulator.pending(k),
                elapsed=session.elapsed(member),
                pack=pack,
            )


def _find_failures(session: _Session, step: int) -> bool:
    """Mark the members whose loss since the last row, or whose weights after ``step``, are
    not finite; return whether any member of the session has failed."""
    offsets = session.accumulator.first_nonfinite()
    finite = session.weights.finite_members()
    for k, member in enumerate(session.members):
        if member.failure is not None:
            continue
        checkpoint = member.checkpoint_path
        if offsets[k] is not None:
            bad_step = step - session.accumulator.count + offsets[k] + 1
            member.failure = (
                f"{member.name}: non-finite loss at step {bad_step} (NaN/inf in the input batch "
                f"or the weights); the last good checkpoint is {checkpoint}"
            )
        elif not finite[k]:
            member.failure = (
                f"{member.name}: non-finite weights after step {step}; the last good checkpoint "
                f"is {checkpoint}"
            )
        if member.failure is not None:
            logger.error("%s; the rest of its pack goes on", member.failure)
    return any(member.failure is not None for member in session.members)


def _write_rows(session: _Session, step: int) -> list[float]:
    """Close each member's curve row ending at ``step``: the mean of each term over its steps.
    Returns the first training member's row."""
    means, count = session.accumulator.take_means()
    rows = []
    for k, member in enumerate(session.members):
        if member.failure is None:
            row = [step, *means[k], session.elapsed(member), count]
            member.rows.append(row)
            _append_curve_row(member.partial_curve, row)
            rows.append(row)
    return rows[0] if rows else []


def _run_steps(session: _Session, data: DeviceImages, stop: int, progress_interval: float) -> None:
    """Train the session's members from its step to ``stop``, or until a member fails; then
    end the session."""
    settings, device, members = session.settings, session.device, session.members
    pack_gradients = make_pack_gradients(
        session.weights,
        data,
        [member.settings.beta for member in members],
        [member.settings.lam for member in members],
        settings.latent_dim,
        forward_context=_autocast(settings, device),
        wrap=torch.compile if settings.compile else lambda function: function,
    )
    step_fn = _make_step(session.optimizer, pack_gradients)
    if settings.cuda_graphs and device.type == "cuda":
        step_fn = _CudaGraphStep(step_fn, warmup=_CUDA_GRAPH_WARMUP_STEPS)
    # static buffers, refilled in place every step (what a captured CUDA graph needs)
    batch, latents = settings.batch_size, settings.latent_dim
    indices = torch.empty(len(members), batch, dtype=torch.long, device=device)
    noise = torch.empty(len(members), batch, latents, device=device)
    bar = tqdm(
        total=stop,
        initial=session.step,
        desc=_pack_label([member.spec for member in members]),
        unit="step",
        file=sys.stderr,
        mininterval=progress_interval,
    )
    session.started = time.perf_counter()
    with contextlib.closing(bar):
        for step in range(session.step + 1, stop + 1):
            for k, member in enumerate(members):
                # each member draws from its own streams, exactly as its solo run does
                torch.randint(len(data), (batch,), generator=member.index_generator, out=indices[k])
                torch.randn((batch, latents), generator=member.noise_generator, out=noise[k])
            session.accumulator.add(step_fn(indices, noise))
            session.step = step
            bar.update()
            failed = False
            if step % settings.log_every == 0 or step == settings.steps:
                failed = _find_failures(session, step)
                row = _write_rows(session, step)
                if row:
                    bar.set_postfix(loss=f"{row[1]:.5g}", refresh=False)
            if step % settings.checkpoint_every == 0 and step < settings.steps:
                failed = _find_failures(session, step)
                _save_checkpoints(session)
            if failed:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    _end_session(session)


# ---- the pack ----------------------------------------------------------------------------------


def _train_pack(
    specs: list[PackMember],
    images: np.ndarray,
    jobs_per_gpu: int,
    progress_interval: float,
    mode: str | None,
) -> list[dict[str, Any]]:
    settings = specs[0].settings
    label = _pack_label(specs)
    device, device_name = _configure_device(settings, label, jobs_per_gpu)
    mode = default_mode(device) if mode is None else mode
    members = [_start_member(spec, images, device) for spec in specs]
    for member in members:
        _resume(member)
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
        while (plan := _next_session(members)) is not None:
            group, stop = plan
            _run_steps(_start_session(group, device, mode), data, stop, progress_interval)

    failed = [member for member in members if member.failure is not None]
    pack = {"runs": [spec.run_name for spec in specs], "mode": effective_mode(mode, len(specs))}
    summaries = [
        _finish(member, images, device_name, pack, keep_progress=bool(failed))
        for member in members
        if member.failure is None
    ]
    if failed:
        others = len(members) - len(failed)
        finished = f"; the {others} other run(s) of the pack finished" if others else ""
        raise NonFiniteLossError("; ".join(member.failure for member in failed) + finished)
    return summaries


def _finish(
    member: _Member,
    images: np.ndarray,
    device_name: str,
    pack: dict[str, Any],
    *,
    keep_progress: bool,
) -> dict[str, Any]:
    """Write the run's curve, summary and model; remove its progress directory, or, with
    ``keep_progress``, leave a checkpoint at its last step there instead."""
    settings, spec = member.settings, member.spec
    resolved = {
        **settings.to_dict(),
        "resolved_device": device_name,
        "data_shape": list(images.shape),
        "init_model": None if spec.init_model is None else str(spec.init_model),
        "init_model_sha256": member.identity["init_model_sha256"],
    }
    summary = _summary(member, resolved, pack)
    if keep_progress:
        _write_checkpoint(
            member,
            weights=member.weights,
            optimizer=member.optimizer,
            pending=member.pending,
            elapsed=member.elapsed_before,
            pack=pack["runs"],
        )
    _write_curve(spec.log_path, member.rows, settings.latent_dim)
    write_json(spec.summary_path, summary)
    save_weights(
        spec.model_path, member.weights, int(images.shape[-1]), settings.latent_dim, resolved
    )
    if not keep_progress:
        _remove_progress(spec.progress_dir)
    logger.info(
        "%s: done, %d steps in %.1f s, final loss %.5g",
        member.name,
        settings.steps,
        summary["wall_seconds"],
        summary["final"]["loss"],
    )
    return summary


def _summary(member: _Member, resolved: dict[str, Any], pack: dict[str, Any]) -> dict[str, Any]:
    """The phase's summary record; ``final`` holds the terms of the last curve row and ``pack``
    the runs trained in the same process (and how)."""
    settings = member.settings
    last = member.rows[-1]
    terms = len(LOSS_COLUMNS)
    final: dict[str, Any] = dict(zip(LOSS_COLUMNS, last[1 : 1 + terms], strict=True))
    final["kl_per_latent"] = last[1 + terms : 1 + terms + settings.latent_dim]
    trained = settings.steps - member.start_step
    return {
        "run_name": settings.run_name,
        "phase": settings.phase,
        "steps": settings.steps,
        "settings": resolved,
        "device": resolved["resolved_device"],
        "torch_version": torch.__version__,
        "wall_seconds": last[-2],
        "resumed_from_step": member.start_step,
        # null when this session trained no step (the run was resumed at its end)
        "steps_per_second": trained / member.trained_seconds if trained else None,
        "final": final,
        "final_row_steps": last[-1],
        "init_model": resolved["init_model"],
        "pack": pack,
    }
