"""The training curve: its columns, its files, and the rows in progress on the device.

The curve has one row per ``log_every`` steps holding the *mean* of each loss term over the steps
since the previous row (``steps_in_row`` of them), so means over any window of whole rows are
exact. Loss terms are accumulated on the device (``RowAccumulator``) and read back only when a
row is written, so the step itself never waits for the device. Columns: ``step``, the terms of
``lambdabeta.loss.LOSS_TERMS``, the KL of each latent ``kl_z0 …``, ``seconds`` (wall time of the
run so far) and ``steps_in_row``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch

from ..io import atomic_path
from ..loss import LOSS_TERMS


def curve_columns(latent_dim: int) -> list[str]:
    """Header of the training-curve CSV."""
    latents = [f"kl_z{j}" for j in range(latent_dim)]
    return ["step", *LOSS_TERMS, *latents, "seconds", "steps_in_row"]


def term_count(latent_dim: int) -> int:
    """How many loss terms a step reports: ``LOSS_TERMS`` and one KL per latent."""
    return len(LOSS_TERMS) + latent_dim


def write_curve(path: Path, rows: list[list[float]], latent_dim: int) -> None:
    """The whole curve, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(curve_columns(latent_dim))
        writer.writerows(rows)


def append_curve_row(path: Path, row: list[float]) -> None:
    """One more row of the partial curve (for watching a run; resuming uses the rows stored in
    the checkpoint)."""
    with open(path, "a", newline="") as stream:
        csv.writer(stream).writerow(row)


def final_terms(row: Sequence[float], latent_dim: int) -> dict:
    """The loss terms of a curve row by name, with ``kl_per_latent``."""
    count = len(LOSS_TERMS)
    final: dict = dict(zip(LOSS_TERMS, row[1 : 1 + count], strict=True))
    final["kl_per_latent"] = list(row[1 + count : 1 + count + latent_dim])
    return final


class RowAccumulator:
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
