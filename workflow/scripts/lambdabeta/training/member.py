"""One run of a pack: the files it reads and writes, its state between sessions, how it ends.

A run's files: ``model_path`` (the trained model), ``log_path`` (the training curve),
``summary_path`` (``run.json``) and, while it trains, ``progress_dir`` with its checkpoint and
partial curve (``lambdabeta.training.checkpoint``). A finetune starts from ``init_model``, the
stabilized model's file; a stabilization from the seeded initialisation of its seed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..control import ControllerSettings, ControllerState
from ..io import write_json
from ..model import VAE, load_model, save_weights
from ..settings import TrainSettings
from . import checkpoint
from .curve import final_terms, term_count, write_curve
from .streams import initial_model, make_generators

logger = logging.getLogger(__name__)


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


def pack_label(members: Sequence[PackMember]) -> str:
    """How log lines name a pack: the run's name for a pack of one."""
    if len(members) == 1:
        return members[0].run_name
    return f"pack of {len(members)} ({members[0].run_name}, …)"


@dataclass
class Member:
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
    controller: ControllerState | None = None  # an adaptive λ's, on the device

    @property
    def controlled(self) -> bool:
        return self.controller is not None

    @property
    def settings(self) -> TrainSettings:
        return self.spec.settings

    @property
    def name(self) -> str:
        return self.spec.run_name

    @property
    def checkpoint_path(self) -> Path:
        return self.spec.progress_dir / checkpoint.CHECKPOINT_FILE

    @property
    def partial_curve(self) -> Path:
        return self.spec.progress_dir / checkpoint.PARTIAL_CURVE_FILE

    @property
    def done(self) -> bool:
        return self.failure is not None or self.step >= self.settings.steps

    def save(
        self,
        *,
        weights: dict[str, torch.Tensor],
        optimizer: dict[str, Any] | None,
        pending: torch.Tensor,
        elapsed: float,
        pack: list[str],
    ) -> None:
        """Write the run's checkpoint after its current step."""
        checkpoint.write_checkpoint(
            self.checkpoint_path,
            identity=self.identity,
            step=self.step,
            weights=weights,
            optimizer=optimizer,
            index_rng=self.index_generator.get_state(),
            noise_rng=self.noise_generator.get_state(),
            pending=pending,
            rows=self.rows,
            elapsed=elapsed,
            pack=pack,
            controller=self.controller.state_dict() if self.controlled else None,
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
    return model.train(), checkpoint.file_sha256(init_model)


def start_member(spec: PackMember, images: np.ndarray, device: torch.device) -> Member:
    """A run's initial state: seeded (or loaded) weights, fresh Adam and generators."""
    settings = spec.settings
    model, init_sha256 = _build_model(settings, int(images.shape[-1]), spec.init_model)
    model = model.to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    index_generator, noise_generator = make_generators(settings, device)
    controller = None
    if settings.controller is not None:
        controller = ControllerState(ControllerSettings(**settings.controller), device)
    return Member(
        spec=spec,
        identity=checkpoint.run_identity(settings, images.shape, init_sha256),
        weights={name: tensor.detach() for name, tensor in model.named_parameters()},
        optimizer=None,
        index_generator=index_generator,
        noise_generator=noise_generator,
        pending=torch.empty(0, term_count(settings.latent_dim, controller is not None)),
        controller=controller,
    )


def resume(member: Member) -> None:
    """Continue from the checkpoint in the run's progress directory, if there is one of this
    run; start its partial curve."""
    saved = checkpoint.read_checkpoint(
        member.spec.progress_dir, member.identity, member.weights, member.name
    )
    if saved is not None:
        with torch.no_grad():
            for name, tensor in member.weights.items():
                tensor.copy_(saved["model"][name])
        member.optimizer = saved["optimizer"]
        member.index_generator.set_state(saved["index_rng"])
        member.noise_generator.set_state(saved["noise_rng"])
        member.pending = saved["pending"]
        member.rows = saved["rows"]
        member.step = member.start_step = saved["step"]
        member.elapsed_before = saved["elapsed"]
        if member.controlled:
            member.controller.load_state_dict(saved["controller"])
        logger.info(
            "%s: resuming from step %d of %d", member.name, member.step, member.settings.steps
        )
    write_curve(member.partial_curve, member.rows, member.settings.latent_dim, member.controlled)


def finish(
    member: Member,
    data_shape: Sequence[int],
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
        "data_shape": list(data_shape),
        "init_model": None if spec.init_model is None else str(spec.init_model),
        "init_model_sha256": member.identity["init_model_sha256"],
    }
    summary = _summary(member, resolved, pack)
    if keep_progress:
        member.save(
            weights=member.weights,
            optimizer=member.optimizer,
            pending=member.pending,
            elapsed=member.elapsed_before,
            pack=pack["runs"],
        )
    write_curve(spec.log_path, member.rows, settings.latent_dim, member.controlled)
    write_json(spec.summary_path, summary)
    save_weights(
        spec.model_path, member.weights, int(data_shape[-1]), settings.latent_dim, resolved
    )
    if not keep_progress:
        checkpoint.remove_progress(spec.progress_dir)
    logger.info(
        "%s: done, %d steps in %.1f s, final loss %.5g",
        member.name,
        settings.steps,
        summary["wall_seconds"],
        summary["final"]["loss"],
    )
    return summary


def _summary(member: Member, resolved: dict[str, Any], pack: dict[str, Any]) -> dict[str, Any]:
    """The phase's summary record; ``final`` holds the terms of the last curve row and ``pack``
    the runs trained in the same process (and how)."""
    settings = member.settings
    last = member.rows[-1]
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
        "final": final_terms(last, settings.latent_dim),
        "final_row_steps": last[-1],
        "init_model": resolved["init_model"],
        "pack": pack,
        # an adaptive λ: where the controller ended (the last row's means)
        "final_lambda": last[-5] if member.controlled else settings.lam,
    }
