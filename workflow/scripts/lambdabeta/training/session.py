"""A training session: the members of a pack that are at one step, trained together.

Members found at different steps (a kill between two members' checkpoint writes, or runs
interrupted in other packs) are trained from the earliest step, each joining the pack when the
pack reaches its step (``next_session``). A session gathers its members' weights and Adam states
into one pack (``lambdabeta.training.layouts``), steps it, writes curve rows and checkpoints, and
hands each member its own state back when it ends.

Failures: a member whose loss or weights turn NaN/inf stops alone, at the first curve row or
checkpoint that sees it (``find_failures``); the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from ..loader import DeviceImages
from ..settings import TrainSettings
from .curve import RowAccumulator, append_curve_row, term_count
from .gradients import make_pack_gradients
from .layouts import PackWeights, pack_weights
from .member import Member, pack_label
from .step import CudaGraphStep, forward_context, make_step

logger = logging.getLogger(__name__)


@dataclass
class Session:
    """Members at the same step trained together: the state a stretch of steps updates."""

    members: list[Member]
    device: torch.device
    weights: PackWeights
    optimizer: torch.optim.Optimizer
    accumulator: RowAccumulator
    step: int
    started: float = field(default_factory=time.perf_counter)

    @property
    def settings(self) -> TrainSettings:
        """The settings the members share (β, λ, seed and name are each member's own)."""
        return self.members[0].settings

    def elapsed(self, member: Member) -> float:
        """Wall seconds of ``member``'s run so far, over all its sessions."""
        return member.elapsed_before + time.perf_counter() - self.started

    def optimizer_state(self, k: int) -> dict[str, Any] | None:
        """Member ``k``'s Adam ``state_dict`` in its solo run's format (None before a step)."""
        state_dict = self.optimizer.state_dict()
        return self.weights.member_adam_state(state_dict, k) if state_dict["state"] else None


def next_session(members: list[Member]) -> tuple[list[Member], int] | None:
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


def start_session(members: list[Member], device: torch.device, mode: str) -> Session:
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
    controlled = {member.controlled for member in members}
    if len(controlled) > 1:
        raise ValueError("a pack cannot join runs with an adaptive λ and runs with a static one")
    accumulator = RowAccumulator(
        settings.log_every, len(members), term_count(settings.latent_dim, controlled.pop()), device
    )
    accumulator.restore([member.pending for member in members])
    return Session(
        members=members,
        device=device,
        weights=weights,
        optimizer=optimizer,
        accumulator=accumulator,
        step=members[0].step,
    )


def end_session(session: Session) -> None:
    """Hand each member its own weights, Adam state, open row and clock back."""
    seconds = time.perf_counter() - session.started
    for k, member in enumerate(session.members):
        member.weights = session.weights.member_weights(k)
        member.optimizer = session.optimizer_state(k)
        member.pending = session.accumulator.pending(k)
        member.step = session.step
        member.elapsed_before += seconds
        member.trained_seconds += seconds


def save_checkpoints(session: Session) -> None:
    """Write the checkpoint of every member still training."""
    pack = [member.name for member in session.members]
    for k, member in enumerate(session.members):
        if member.failure is None:
            member.step = session.step
            member.save(
                weights=session.weights.member_weights(k),
                optimizer=session.optimizer_state(k),
                pending=session.accumulator.pending(k),
                elapsed=session.elapsed(member),
                pack=pack,
            )


def find_failures(session: Session, step: int) -> bool:
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


def write_rows(session: Session, step: int) -> list[float]:
    """Close each member's curve row ending at ``step``: the mean of each term over its steps.
    Returns the first training member's row."""
    means, count = session.accumulator.take_means()
    rows = []
    for k, member in enumerate(session.members):
        if member.failure is None:
            row = [step, *means[k], session.elapsed(member), count]
            member.rows.append(row)
            append_curve_row(member.partial_curve, row)
            rows.append(row)
    return rows[0] if rows else []


KL_TERM = 2  # the index of the KL in a step's terms (loss, bce, kl, l2, …)


def _controlled(members: list[Member], terms: torch.Tensor) -> torch.Tensor:
    """The step's terms, with each adaptive member's λ of the step, averaged KL and set point
    appended (its controller updated from the step's KL: on the device, no sync)."""
    if not members[0].controlled:
        return terms
    extra = []
    for k, member in enumerate(members):
        controller = member.controller
        used = controller.lam.clone()
        controller.update(terms[k, KL_TERM])
        values = (used, controller.average, controller.set_point())
        extra.append(torch.stack([value.to(terms.dtype) for value in values]))
    return torch.cat([terms, torch.stack(extra)], dim=1)


def run_steps(session: Session, data: DeviceImages, stop: int, progress_interval: float) -> None:
    """Train the session's members from its step to ``stop``, or until a member fails; then
    end the session."""
    settings, device, members = session.settings, session.device, session.members
    pack_gradients = make_pack_gradients(
        session.weights,
        data,
        [member.settings.beta for member in members],
        # an adaptive member's λ is its controller's tensor, updated in place after each step
        [member.controller.lam if member.controlled else member.settings.lam for member in members],
        settings.latent_dim,
        forward_context=forward_context(settings, device),
        wrap=torch.compile if settings.compile else lambda function: function,
    )
    step_fn = make_step(session.optimizer, pack_gradients)
    if settings.cuda_graphs and device.type == "cuda":
        step_fn = CudaGraphStep(step_fn)
    # static buffers, refilled in place every step (what a captured CUDA graph needs)
    batch, latents = settings.batch_size, settings.latent_dim
    indices = torch.empty(len(members), batch, dtype=torch.long, device=device)
    noise = torch.empty(len(members), batch, latents, device=device)
    bar = tqdm(
        total=stop,
        initial=session.step,
        desc=pack_label([member.spec for member in members]),
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
            session.accumulator.add(_controlled(members, step_fn(indices, noise)))
            session.step = step
            bar.update()
            failed = False
            if step % settings.log_every == 0 or step == settings.steps:
                failed = find_failures(session, step)
                row = write_rows(session, step)
                if row:
                    bar.set_postfix(loss=f"{row[1]:.5g}", refresh=False)
            if step % settings.checkpoint_every == 0 and step < settings.steps:
                failed = find_failures(session, step)
                save_checkpoints(session)
            if failed:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    end_session(session)
