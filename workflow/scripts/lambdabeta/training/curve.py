"""The training curve: its columns, its files, and the rows in progress on the device.

The curve has one row per ``log_every`` steps holding the *mean* of each loss term over the steps
since the previous row (``steps_in_row`` of them), so means over any window of whole rows are
exact. Loss terms are accumulated on the device (``RowAccumulator``) and read back only when a
row is written, so the step itself never waits for the device. Columns: ``step``, the terms of
``lambdabeta.loss.LOSS_TERMS``, the KL of each latent ``kl_z0 …``, for an adaptive λ the
``CONTROL_COLUMNS`` (the λ of the steps, the controller's averaged KL and its set point),
``seconds`` (wall time of the run so far) and ``steps_in_row``.

Readers (``read_curve``) refuse a curve that cannot be parsed, lacks the columns they need, holds
non-numbers or is not contiguous: it is moved aside (``train_log.csv`` →
``train_log.csv.corrupt``), so the next ``snakemake`` run trains the run again.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..io import CorruptFileError, atomic_path, corrupt_file
from ..loss import LOSS_TERMS

CONTROL_COLUMNS = ("lam", "kl_average", "set_point")
"""The columns an adaptive λ adds to each row: the mean λ of the row's steps, and the
controller's averaged KL and set point (means over the row's steps)."""


def curve_columns(latent_dim: int, controlled: bool = False) -> list[str]:
    """Header of the training-curve CSV."""
    latents = [f"kl_z{j}" for j in range(latent_dim)]
    control = list(CONTROL_COLUMNS) if controlled else []
    return ["step", *LOSS_TERMS, *latents, *control, "seconds", "steps_in_row"]


def term_count(latent_dim: int, controlled: bool = False) -> int:
    """How many values a step reports: ``LOSS_TERMS``, one KL per latent, and for an adaptive λ
    the ``CONTROL_COLUMNS``."""
    return len(LOSS_TERMS) + latent_dim + (len(CONTROL_COLUMNS) if controlled else 0)


def write_curve(
    path: Path, rows: list[list[float]], latent_dim: int, controlled: bool = False
) -> None:
    """The whole curve, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(curve_columns(latent_dim, controlled))
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


def _corrupt(path: Path, problem: str) -> CorruptFileError:
    """Move the curve at ``path`` aside; the error to raise says the run is trained again (the
    training job writes the curve)."""
    return corrupt_file(path, problem, action="trains the run again")


def _shown(columns: Sequence[str], limit: int = 12) -> str:
    """The first ``limit`` of ``columns`` for a message (a garbled header can be long)."""
    columns = [str(c) for c in columns]
    more = f" … ({len(columns)} in all)" if len(columns) > limit else ""
    return f"{columns[:limit]}{more}"


def _parse_failure(error: Exception) -> str:
    """The first line of a CSV parser's error, with its type."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def read_curve(curve_csv: str | os.PathLike, needs: Sequence[str]) -> pd.DataFrame:
    """The training curve at ``curve_csv``, checked to parse, to hold the columns ``needs``, to
    hold numbers only, and to have a whole number of steps in every row, one row after the other.

    A curve that fails is moved aside and ``CorruptFileError`` raised, naming the file, the
    columns it has and needs, and what recomputes it (the training run that writes it).
    """
    path = Path(curve_csv)
    if not path.is_file():
        raise FileNotFoundError(f"training curve {path} does not exist")
    try:
        curve = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError is a ValueError
        problem = f"cannot be parsed as a training curve ({_parse_failure(error)})"
        raise _corrupt(path, problem) from None
    missing = [name for name in needs if name not in curve.columns]
    if missing:
        problem = (
            f"training curve lacks column(s) {missing}: it has {_shown(curve.columns)}, "
            f"needs {list(needs)}"
        )
        raise _corrupt(path, problem)
    for name in curve.columns:
        if pd.api.types.is_numeric_dtype(curve[name]):
            continue
        # an object column: find a cell that is there but no number (a header alone has none)
        text = curve[name].notna() & pd.to_numeric(curve[name], errors="coerce").isna()
        if text.any():
            row = int(text.to_numpy().argmax())
            problem = (
                f"training curve has a non-number in column {name!r}: "
                f"{curve[name].iloc[row]!r} in row {row}"
            )
            raise _corrupt(path, problem)
    _check_rows(path, curve)
    return curve


def _check_rows(path: Path, curve: pd.DataFrame) -> None:
    """Every row has a ``step`` and a whole ``steps_in_row`` ≥ 1 (a truncated last line leaves
    them empty), and each step is the previous one plus its ``steps_in_row``."""
    for name in ("step", "steps_in_row"):
        if name not in curve.columns:
            continue
        values = curve[name].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values))
        if name == "steps_in_row":
            bad |= values < 1
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            problem = (
                f"training curve has {name} = {values[row]} in row {row}, expected a whole "
                f"number{' ≥ 1' if name == 'steps_in_row' else ''} (a damaged or cut-off line)"
            )
            raise _corrupt(path, problem)
    if not {"step", "steps_in_row"} <= set(curve.columns):
        return
    step = curve["step"].to_numpy(dtype=np.int64)
    steps_in_row = curve["steps_in_row"].to_numpy(dtype=np.int64)
    gaps = np.flatnonzero(np.diff(step) != steps_in_row[1:])
    if gaps.size:
        row = int(gaps[0]) + 1
        problem = (
            f"training curve is not contiguous at row {row}: step {step[row]} after "
            f"step {step[row - 1]} but steps_in_row {steps_in_row[row]} (rows lost or altered)"
        )
        raise _corrupt(path, problem)


def _is_curve_column(name: str) -> bool:
    """Whether a training curve can have a column ``name``."""
    latent = name.removeprefix("kl_z")
    return name in (*LOSS_TERMS, *CONTROL_COLUMNS, "step", "seconds", "steps_in_row") or (
        name.startswith("kl_z") and latent.isdigit()
    )


def tail_mean(curve_csv: str | os.PathLike, column: str, window: int) -> float:
    """Mean of ``column`` (a term of the curve, ``bce`` say) over the last ``window`` steps.

    Each row of the curve holds the mean over the steps (t − steps_in_row, t]; the result is
    ``Σ_r w_r · x_r / window`` with ``w_r`` the number of the row's steps that fall in the
    window, so the oldest row counts only with its overlap when ``window`` is not a multiple of
    the logging interval. Rows must be contiguous (each ``step`` is the previous one plus its
    ``steps_in_row``), and the curve must cover at least ``window`` steps.
    """
    curve_csv = Path(curve_csv)
    # a caller's mistake, not the file's: checked before the file can be blamed for it
    if not _is_curve_column(column):
        raise ValueError(f"{column!r} is not a column of a training curve")
    if window < 1:
        raise ValueError(f"the window must be ≥ 1 step (bce_window), got {window}")
    curve = read_curve(curve_csv, ("step", column, "steps_in_row"))
    steps_in_row = curve["steps_in_row"].to_numpy(dtype=np.int64)
    values = curve[column].to_numpy(dtype=np.float64)
    if steps_in_row.sum() < window:
        raise ValueError(
            f"training curve {curve_csv} covers {steps_in_row.sum()} steps, fewer than "
            f"bce_window = {window}; lower bce_window in the evaluation settings"
        )
    steps_after_row = np.cumsum(steps_in_row[::-1])[::-1] - steps_in_row
    weight = np.clip(window - steps_after_row, 0, steps_in_row)
    used = weight > 0
    if not np.isfinite(values[used]).all():
        raise ValueError(
            f"training curve {curve_csv} has non-finite {column} in its last {window} steps"
        )
    return float(np.dot(weight[used], values[used]) / window)


CONTROL_WINDOW = 0.1
"""The last fraction of a finetune's steps over which an adaptive λ is judged to hold its
target (``control_summary``)."""


def control_summary(curve_csv: str | os.PathLike) -> dict[str, float]:
    """An adaptive λ's record from its curve: its last λ (``final_lambda``), its set point at the
    end (``control_target``) and the largest relative deviation |ā − r|/r of the averaged KL from
    the set point over the rows of the last ``CONTROL_WINDOW`` of the steps
    (``control_error``); NaN for a static λ's curve (no ``CONTROL_COLUMNS``)."""
    curve = read_curve(curve_csv, ("step",))
    present = [name for name in CONTROL_COLUMNS if name in curve.columns]
    if not present:
        return {"final_lambda": np.nan, "control_error": np.nan, "control_target": np.nan}
    if len(present) < len(CONTROL_COLUMNS):
        # an adaptive λ writes all of them: a curve with some is damaged
        read_curve(curve_csv, ("step", *CONTROL_COLUMNS))
    last = curve["step"].max()
    tail = curve[curve["step"] > last * (1 - CONTROL_WINDOW)]
    deviation = (tail["kl_average"] - tail["set_point"]).abs() / tail["set_point"]
    return {
        "final_lambda": float(curve["lam"].iloc[-1]),
        "control_error": float(deviation.max()),
        "control_target": float(curve["set_point"].iloc[-1]),
    }
