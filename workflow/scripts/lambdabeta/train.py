"""Training one phase of the two-phase λβ-VAE protocol (paper §5.2), resumable and reproducible.

A phase is ``stabilize`` (a β-VAE trained from a seeded initialisation) or ``finetune`` (the
λβ-VAE objective, starting from a stabilized model's weights with a fresh Adam). Each step draws
``batch_size`` image indices uniformly with replacement and the reparameterisation noise from two
seeded ``torch.Generator`` on the training device; the images live on that device as uint8
(``DeviceImages``), so a step involves no host↔device transfer and no per-image Python.

Reproducibility:

* weight initialisation is seeded from ``seed`` alone, so a seed starts every β from the same
  model; the index and noise streams are derived from ``(seed, phase, λ)`` with
  ``np.random.SeedSequence``, so the λ finetunes of one stabilization see different streams;
* every ``checkpoint_every`` steps, the model, the optimizer, both generator states, the step and
  the curve so far are written atomically to ``progress_dir/checkpoint.pt``; a run restarted after
  a kill resumes from it and ends with bitwise the same weights and curve (on CPU; the
  ``seconds`` column is wall time) as a run that was never interrupted. A checkpoint of
  different settings is refused, never resumed.

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
import dataclasses
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .devices import check_device_spec, select_device
from .io import atomic_path, write_json
from .loader import DeviceImages
from .model import IMAGE_SIZE, VAE, LossTerms, lambda_beta_loss, load_model, save_model

logger = logging.getLogger(__name__)

PHASES = ("stabilize", "finetune")
PRECISIONS = ("fp32", "bf16")
LOSS_COLUMNS = ("loss", "bce", "kl", "l2")
CHECKPOINT_FILE = "checkpoint.pt"
PARTIAL_CURVE_FILE = "curve.partial.csv"
CHECKPOINT_FORMAT = 1

_POSITIVE_INTEGERS = (
    "steps",
    "batch_size",
    "checkpoint_every",
    "log_every",
    "latent_dim",
    "threads",
)

# Settings that do not change what a run computes: a checkpoint resumes across them.
_LOGISTICS_KEYS = ("run_name", "threads", "checkpoint_every")

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
class TrainSettings:
    """Everything that defines one training phase (the keys of config ``deep.train`` with
    ``steps`` for stabilize_steps/finetune_steps, plus the run's β, λ, seed and phase)."""

    steps: int
    beta: float
    lam: float
    seed: int
    phase: str
    run_name: str
    batch_size: int = 64
    lr: float = 1.0e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1.0e-8
    checkpoint_every: int = 5000
    log_every: int = 500
    device: str = "auto"
    precision: str = "fp32"
    tf32: bool = True
    compile: bool = False
    channels_last: bool = False
    cuda_graphs: bool = False
    latent_dim: int = 15
    threads: int = 1

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTEGERS:
            _set(self, name, _integer(name, getattr(self, name), minimum=1))
        _set(self, "seed", _integer("seed", self.seed, minimum=0))
        for name in ("beta", "lam", "lr"):
            _set(self, name, _number(name, getattr(self, name), minimum=0.0))
        eps = _number("adam_eps", self.adam_eps, minimum=0.0)
        if eps == 0.0:
            raise ValueError("adam_eps must be > 0, got 0")
        _set(self, "adam_eps", eps)
        betas = tuple(self.adam_betas) if isinstance(self.adam_betas, list | tuple) else ()
        if len(betas) != 2 or not all(_is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        _set(self, "adam_betas", (float(betas[0]), float(betas[1])))
        for name in ("tf32", "compile", "channels_last", "cuda_graphs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        check_device_spec(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if not isinstance(self.run_name, str) or not self.run_name:
            raise ValueError(f"run_name must be a non-empty string, got {self.run_name!r}")
        if self.compile and self.cuda_graphs:
            raise ValueError(
                "compile and cuda_graphs cannot both be true: capturing a torch.compile'd step "
                "in a hand-made CUDA graph is not supported; choose one"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainSettings:
        """Settings from a mapping with exactly the field names as keys."""
        fields = dataclasses.fields(cls)
        unknown = sorted(set(values) - {field.name for field in fields})
        if unknown:
            raise ValueError(
                f"unknown training settings {unknown}; known: {sorted(f.name for f in fields)}"
            )
        required = [f.name for f in fields if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise ValueError(f"training settings lack {missing}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python (JSON-ready) view of the settings."""
        values = dataclasses.asdict(self)
        values["adam_betas"] = list(self.adam_betas)
        return values


def _set(settings: TrainSettings, name: str, value: Any) -> None:
    object.__setattr__(settings, name, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _integer(name: str, value: Any, minimum: int) -> int:
    if not _is_number(value) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value: Any, minimum: float) -> float:
    if not _is_number(value) or not np.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number ≥ {minimum}, got {value!r}")
    return float(value)


# ---- seeds ---------------------------------------------------------------------------------


def _seed_from(seed: int, *spawn_key: int) -> int:
    """A 63-bit torch seed from ``SeedSequence(seed, spawn_key)``."""
    state = np.random.SeedSequence(seed, spawn_key=spawn_key).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def initialisation_seed(seed: int) -> int:
    """Torch seed of the weight initialisation: a function of ``seed`` alone."""
    return _seed_from(seed, _INIT_STREAM)


def stream_seeds(seed: int, phase: str, lam: float) -> tuple[int, int]:
    """Torch seeds of the batch-index and noise streams of ``(seed, phase, λ)``.

    λ enters through the 64 bits of its float64 representation, so every distinct λ value gets
    its own streams.
    """
    phase_code = PHASES.index(phase)
    lam_bits = int(np.float64(lam).view(np.uint64))
    return (
        _seed_from(seed, _INDEX_STREAM, phase_code, lam_bits),
        _seed_from(seed, _NOISE_STREAM, phase_code, lam_bits),
    )


def make_generators(
    settings: TrainSettings, device: torch.device
) -> tuple[torch.Generator, torch.Generator]:
    """Seeded generators (batch indices, reparameterisation noise) on ``device``."""
    index_seed, noise_seed = stream_seeds(settings.seed, settings.phase, settings.lam)
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


def _pack(terms: LossTerms) -> torch.Tensor:
    """One vector (loss, bce, kl, l2, kl_z0 … kl_z{m-1}) per step, detached from the graph."""
    head = torch.stack((terms.loss, terms.bce, terms.kl, terms.l2))
    return torch.cat((head, terms.kl_per_latent)).detach()


def _make_step(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    data: DeviceImages,
    settings: TrainSettings,
    device: torch.device,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The function running one optimisation step on a batch; returns the packed loss terms."""
    use_bf16 = settings.precision == "bf16"
    # autocast's weight-cast cache must be off while a CUDA graph is captured
    cache = not settings.cuda_graphs

    def forward_loss(x: torch.Tensor, noise: torch.Tensor) -> LossTerms:
        with torch.autocast(device.type, torch.bfloat16, enabled=use_bf16, cache_enabled=cache):
            logits, mu, logvar = model(x, noise)
        return lambda_beta_loss(logits, x, mu, logvar, settings.beta, settings.lam)

    if settings.compile:
        forward_loss = torch.compile(forward_loss)

    def step(indices: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        terms = forward_loss(data.batch(indices), noise)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        return _pack(terms)

    return step


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
    """Per-step loss terms of the curve row in progress, kept on the device."""

    def __init__(self, rows: int, width: int, device: torch.device):
        self.values = torch.empty(rows, width, device=device)
        self.count = 0

    def add(self, terms: torch.Tensor) -> None:
        self.values[self.count].copy_(terms)
        self.count += 1

    def first_nonfinite(self) -> int | None:
        """Offset (0-based) of the first step with a NaN/inf term, or None (syncs the device)."""
        finite = torch.isfinite(self.values[: self.count]).all(dim=1)
        if bool(finite.all()):
            return None
        return int(torch.argmin(finite.to(torch.uint8)))

    def take_mean(self) -> tuple[list[float], int]:
        """Mean of each term over the accumulated steps (in float64), and their number; resets."""
        mean = self.values[: self.count].double().mean(dim=0).tolist()
        count, self.count = self.count, 0
        return mean, count

    def state(self) -> torch.Tensor:
        return self.values[: self.count].cpu()

    def restore(self, pending: torch.Tensor) -> None:
        self.count = int(pending.shape[0])
        self.values[: self.count].copy_(pending.to(self.values.device))


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
    """What a checkpoint must agree on to be resumed: settings, data shape, initial weights."""
    identity = {k: v for k, v in settings.to_dict().items() if k not in _LOGISTICS_KEYS}
    identity["data_shape"] = list(images.shape)
    identity["init_model_sha256"] = init_sha256
    return identity


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


def _configure_device(settings: TrainSettings, jobs_per_gpu: int) -> tuple[torch.device, str]:
    """Resolve the device and apply the device-wide switches; returns (device, its name)."""
    device = select_device(settings.device, jobs_per_gpu)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
        return device, torch.cuda.get_device_name(device)
    if settings.precision == "bf16":
        raise ValueError(
            f"{settings.run_name}: precision 'bf16' needs a CUDA device, but training runs on "
            "CPU; set precision to 'fp32' for CPU runs"
        )
    if settings.cuda_graphs:
        logger.info("%s: cuda_graphs ignored on CPU", settings.run_name)
    if not settings.channels_last:
        # PyTorch runs transposed convolutions through oneDNN only in NHWC layout on CPU
        logger.info(
            "%s: channels_last is off; on CPU, channels_last=true trains this model faster "
            "(oneDNN transposed convolutions)",
            settings.run_name,
        )
    return device, "cpu"


# ---- the phase -------------------------------------------------------------------------------


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
    """Train one phase and write the model, the training curve and a summary; return the summary.

    ``images`` is uint8 N × 64 × 64 × C (a memory map is fine: it is copied to the device once).
    ``init_model`` (finetune only, required there) is the stabilized model to start from.
    ``progress_dir`` holds the checkpoint and the partial curve while the phase runs; a checkpoint
    found there is resumed if its settings match (``CheckpointMismatchError`` otherwise), and the
    directory is removed once the outputs are written. ``jobs_per_gpu`` is passed to
    ``select_device``; the progress bar (on stderr) refreshes at most every
    ``progress_interval`` seconds. Raises ``NonFiniteLossError`` if a loss term becomes NaN/inf;
    the last checkpoint (written before the failure) is kept.
    """
    _check_images(images)
    if (settings.phase == "finetune") != (init_model is not None):
        raise ValueError(
            f"{settings.run_name}: phase {settings.phase!r} "
            + ("needs an init_model" if init_model is None else "takes no init_model")
        )
    progress_dir = Path(progress_dir)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(
            settings,
            images,
            model_path=Path(model_path),
            log_path=Path(log_path),
            summary_path=Path(summary_path),
            progress_dir=progress_dir,
            init_model=None if init_model is None else Path(init_model),
            jobs_per_gpu=jobs_per_gpu,
            progress_interval=progress_interval,
        )
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


def _train(
    settings: TrainSettings,
    images: np.ndarray,
    *,
    model_path: Path,
    log_path: Path,
    summary_path: Path,
    progress_dir: Path,
    init_model: Path | None,
    jobs_per_gpu: int,
    progress_interval: float,
) -> dict[str, Any]:
    run = settings.run_name
    device, device_name = _configure_device(settings, jobs_per_gpu)
    model, init_sha256 = _build_model(settings, int(images.shape[-1]), init_model)
    model = model.to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=settings.lr,
        betas=settings.adam_betas,
        eps=settings.adam_eps,
        fused=True,
        capturable=settings.cuda_graphs and device.type == "cuda",
    )
    index_generator, noise_generator = make_generators(settings, device)
    latent_dim = settings.latent_dim
    accumulator = _RowAccumulator(settings.log_every, len(LOSS_COLUMNS) + latent_dim, device)
    identity = _run_identity(settings, images, init_sha256)
    checkpoint_path = progress_dir / CHECKPOINT_FILE
    partial_curve = progress_dir / PARTIAL_CURVE_FILE

    progress_dir.mkdir(parents=True, exist_ok=True)
    for stale in progress_dir.glob(f".{CHECKPOINT_FILE}.*"):  # left by a kill during a write
        stale.unlink()
    rows: list[list[float]] = []
    start_step, elapsed_before = 0, 0.0
    if checkpoint_path.is_file():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        _check_identity(checkpoint, identity, checkpoint_path, run)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        index_generator.set_state(checkpoint["index_rng"])
        noise_generator.set_state(checkpoint["noise_rng"])
        accumulator.restore(checkpoint["pending"])
        rows = checkpoint["rows"]
        start_step, elapsed_before = checkpoint["step"], checkpoint["elapsed"]
        logger.info("%s: resuming from step %d of %d", run, start_step, settings.steps)
    _write_curve(partial_curve, rows, latent_dim)

    logger.info(
        "%s: %s phase, %d steps on %s (%d images %s), threads=%d",
        run,
        settings.phase,
        settings.steps,
        device_name,
        images.shape[0],
        "×".join(map(str, images.shape[1:])),
        settings.threads,
    )
    data = DeviceImages(images, device, channels_last=settings.channels_last)
    step_fn = _make_step(model, optimizer, data, settings, device)
    if settings.cuda_graphs and device.type == "cuda":
        step_fn = _CudaGraphStep(step_fn, warmup=_CUDA_GRAPH_WARMUP_STEPS)
    indices = torch.empty(settings.batch_size, dtype=torch.long, device=device)
    noise = torch.empty(settings.batch_size, latent_dim, device=device)

    def fail_if_nonfinite(step: int) -> None:
        """Raise if a step since the last row, or the weights after ``step``, are not finite."""
        offset = accumulator.first_nonfinite()
        if offset is not None:
            bad_step = step - accumulator.count + offset + 1
            raise NonFiniteLossError(
                f"{run}: non-finite loss at step {bad_step} (NaN/inf in the input batch or the "
                f"weights); the last good checkpoint is {checkpoint_path}"
            )
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise NonFiniteLossError(
                f"{run}: non-finite weights after step {step}; the last good checkpoint is "
                f"{checkpoint_path}"
            )

    model.train()
    session_start = time.perf_counter()
    bar = tqdm(
        total=settings.steps,
        initial=start_step,
        desc=run,
        unit="step",
        file=sys.stderr,
        mininterval=progress_interval,
    )
    with contextlib.closing(bar):
        for step in range(start_step + 1, settings.steps + 1):
            torch.randint(
                images.shape[0], (settings.batch_size,), generator=index_generator, out=indices
            )
            torch.randn(noise.shape, generator=noise_generator, out=noise)
            accumulator.add(step_fn(indices, noise))
            bar.update()
            if step % settings.log_every == 0 or step == settings.steps:
                fail_if_nonfinite(step)
                means, count = accumulator.take_mean()
                seconds = elapsed_before + time.perf_counter() - session_start
                row = [step, *means, seconds, count]
                rows.append(row)
                _append_curve_row(partial_curve, row)
                bar.set_postfix(loss=f"{means[0]:.5g}", refresh=False)
            if step % settings.checkpoint_every == 0 and step < settings.steps:
                fail_if_nonfinite(step)
                checkpoint = {
                    "format": CHECKPOINT_FORMAT,
                    "identity": identity,
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "index_rng": index_generator.get_state(),
                    "noise_rng": noise_generator.get_state(),
                    "pending": accumulator.state(),
                    "rows": rows,
                    "elapsed": elapsed_before + time.perf_counter() - session_start,
                }
                with atomic_path(checkpoint_path) as tmp:
                    torch.save(checkpoint, tmp)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    session_seconds = time.perf_counter() - session_start

    resolved = {
        **settings.to_dict(),
        "resolved_device": device_name,
        "data_shape": list(images.shape),
        "init_model": None if init_model is None else str(init_model),
        "init_model_sha256": init_sha256,
    }
    summary = _summary(settings, resolved, rows, start_step, session_seconds)
    _write_curve(log_path, rows, latent_dim)
    write_json(summary_path, summary)
    save_model(model_path, model, resolved)
    _remove_progress(progress_dir)
    logger.info(
        "%s: done, %d steps in %.1f s (%.2f steps/s this session), final loss %.5g",
        run,
        settings.steps,
        summary["wall_seconds"],
        summary["steps_per_second"],
        summary["final"]["loss"],
    )
    return summary


def _summary(
    settings: TrainSettings,
    resolved: dict[str, Any],
    rows: list[list[float]],
    start_step: int,
    session_seconds: float,
) -> dict[str, Any]:
    """The phase's summary record; ``final`` holds the terms of the last curve row."""
    last = rows[-1]
    terms = len(LOSS_COLUMNS)
    final: dict[str, Any] = dict(zip(LOSS_COLUMNS, last[1 : 1 + terms], strict=True))
    final["kl_per_latent"] = last[1 + terms : 1 + terms + settings.latent_dim]
    return {
        "run_name": settings.run_name,
        "phase": settings.phase,
        "steps": settings.steps,
        "settings": resolved,
        "device": resolved["resolved_device"],
        "torch_version": torch.__version__,
        "wall_seconds": last[-2],
        "resumed_from_step": start_step,
        "steps_per_second": (settings.steps - start_step) / session_seconds,
        "final": final,
        "final_row_steps": last[-1],
        "init_model": resolved["init_model"],
    }
