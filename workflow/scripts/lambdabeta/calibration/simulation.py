"""Simulated deep tables: the paper's grid (8 β, 5 λ, the upper half of β "high"), the noise
of one run and :func:`simulate`, which draws a deep_metrics table from each setting's means.
``NEUTRAL`` holds the columns every claim's table has, at their neutral value.

Each run's value is its setting's mean plus one unit of noise, drawn independently per run;
finetunes of one stabilized model share its seed's draw as well (as they share its weights),
which cancels in every comparison within a seed. The noise (``NOISES``) is normal, Student t
with 3 degrees of freedom, or a centred gamma with shape 2 (skewness 1.4) pointing up or down,
each scaled to unit variance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

BETAS = (1.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
LAMBDAS = (0.0, 4.0, 8.0, 16.0, 32.0)
HIGH_BETAS = BETAS[len(BETAS) // 2 :]
LAST = len(BETAS) - 1

NEUTRAL = {"train_bce": 0.0, "recon_nll": 0.0, "mig": 0.0, "sap": 0.0, "im": 0.0,
           "active_latents": 0.0}  # fmt: skip
"""The columns every claim's table has, at 0: a scenario overrides those its claim reads."""

DATASET = "dsprites"

Noise = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def _gamma(sign: float) -> Noise:
    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return sign * (rng.gamma(2.0, size=shape) - 2.0) / np.sqrt(2.0)

    return draw


NOISES: dict[str, Noise] = {
    "normal": lambda rng, shape: rng.standard_normal(shape),
    "t3": lambda rng, shape: rng.standard_t(3, size=shape) / np.sqrt(3.0),
    "skewed up": _gamma(1.0),
    "skewed down": _gamma(-1.0),
}
"""Unit-variance noise of one run's value."""


# ---- tables ---------------------------------------------------------------------------------


Means = Callable[[str, str, float, float], Mapping[str, float]]
"""(dataset, phase, β, λ) → the mean of each column of that setting's runs."""


def simulate(
    means: Means,
    seeds: int,
    noise: Noise,
    rng: np.random.Generator,
    datasets: tuple[str, ...] = (DATASET,),
    scale: Mapping[str, float] | None = None,
    phases: tuple[str, ...] = ("stabilize", "finetune"),
) -> pd.DataFrame:
    """A deep_metrics table of the paper's grid: every run's columns are ``means(...)`` plus
    ``scale[column]`` (default 1) times noise, the noise of a finetune being its own draw plus
    its stabilized model's (module docstring)."""
    scale = scale or {}
    keys: list[tuple[str, str, float, float]] = []
    values: list[np.ndarray] = []
    columns: list[str] = []
    for dataset in datasets:
        stabilized: dict[float, np.ndarray] = {}
        for phase in phases:
            lambdas = LAMBDAS if phase == "finetune" else (0.0,)
            for beta in BETAS:
                for lam in lambdas:
                    centre = means(dataset, phase, beta, lam)
                    columns = list(centre)
                    # the seed's stabilized model, which all its finetunes start from
                    base = stabilized.setdefault(beta, noise(rng, (seeds, len(centre))))
                    draws = base
                    if phase != "stabilize":
                        draws = (noise(rng, (seeds, len(centre))) + base) / np.sqrt(2.0)
                    spread = np.array([scale.get(column, 1.0) for column in columns])
                    values.append(np.array([centre[c] for c in columns]) + spread * draws)
                    keys.append((dataset, phase, beta, lam))
    table = pd.DataFrame(np.concatenate(values), columns=columns)
    dataset, phase, beta, lam = (np.repeat(np.array(k), seeds) for k in zip(*keys, strict=True))
    table.insert(0, "seed", np.tile(np.arange(seeds), len(keys)))
    for name, column in (("lambda", lam), ("beta", beta), ("phase", phase), ("dataset", dataset)):
        table.insert(0, name, column.astype(float) if name in ("beta", "lambda") else column)
    return table
