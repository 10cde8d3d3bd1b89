"""What one job of the linear study runs: the description each rule's entry script rebuilds.

Each job's ``science()`` is everything that changes its output and nothing else: it is what the
rule puts in ``params`` (so changing a setting reruns exactly the jobs whose results it changes)
and what the entry script rebuilds the job from (``from_science``), so a job cannot read a
setting that does not rerun it. ``lambdabeta.linear.settings`` builds the jobs from the config.

This module uses the standard library only (see ``lambdabeta.linear.settings``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GradClip = float | tuple[float, float] | None


@dataclass(frozen=True)
class Dims:
    """One ``linear.dims`` entry: observation, latent and factor dimensions."""

    n: int
    m: int
    s: int

    @property
    def name(self) -> str:
        """The ``{dims}`` wildcard of this entry's output paths, e.g. ``n100_m10_s5``."""
        return f"n{self.n}_m{self.m}_s{self.s}"

    @classmethod
    def from_name(cls, name: str) -> Dims:
        match = re.fullmatch(r"n(\d+)_m(\d+)_s(\d+)", name)
        if match is None:
            raise ValueError(f"{name!r} is not a linear dims name like n100_m10_s5")
        return cls(*(int(part) for part in match.groups()))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def as_grad_clip(value: Any) -> GradClip:
    """A clip threshold as the solver takes it: None, a number, or a pair of numbers."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return (float(value[0]), float(value[1]))
    return float(value)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: the form a YAML config and a Snakemake params entry use."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def known_fields(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are fields of ``cls``; an unknown key is an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known: {sorted(names)}")
    return dict(values)


# ---- the settings of one solver run ------------------------------------------------------


@dataclass(frozen=True)
class FixedPointSettings:
    """Config ``linear.fixed_point``: the iteration cap and the convergence tolerance."""

    max_iter: int = 100_000
    tol: float = 1.0e-6

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> FixedPointSettings:
        values = known_fields(cls, section)
        return cls(**{k: (int if k == "max_iter" else float)(v) for k, v in values.items()})

    def science(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_science(cls, science: Mapping[str, Any]) -> FixedPointSettings:
        return cls.from_config(science)


@dataclass(frozen=True)
class AdamWRun:
    """The AdamW settings of one problem size (per-n values resolved). ``check_every`` is None
    when ``tol = 0`` (no early stop, so no checks) and ``epsilon`` None under ``log_cholesky``:
    neither can change the result there, so neither is part of the job."""

    steps: int
    lr: float
    weight_decay: float
    grad_clip: GradClip
    parameterization: str
    report: str
    tol: float
    epsilon: float | None = None
    check_every: int | None = None

    def science(self) -> dict[str, Any]:
        values = _plain(dataclasses.asdict(self))
        unused = [key for key in ("epsilon", "check_every") if values[key] is None]
        return {key: value for key, value in values.items() if key not in unused}

    @classmethod
    def from_science(cls, science: Mapping[str, Any]) -> AdamWRun:
        values = known_fields(cls, science)
        values["grad_clip"] = as_grad_clip(values["grad_clip"])
        return cls(**values)


# ---- one job each ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceJob:
    """The instance (Γ, Σ_V, σ²) of one dims entry: read from ``instance_file``, or drawn from
    ``factor_var_range`` and ``seed`` when there is none (they are None when there is one)."""

    dims: Dims
    noise_var: float
    instance_file: str | None = None
    factor_var_range: tuple[float, float] | None = None
    seed: int | None = None

    def science(self) -> dict[str, Any]:
        values = _plain(dataclasses.asdict(self))
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_science(cls, science: Mapping[str, Any]) -> InstanceJob:
        values = known_fields(cls, science)
        values["dims"] = Dims(**values["dims"])
        if "factor_var_range" in values:
            values["factor_var_range"] = tuple(values["factor_var_range"])
        return cls(**values)


@dataclass(frozen=True)
class StudyJob:
    """One method on one instance: every (β, λ, restart) of the grid.

    The instance itself (Γ, Σ_V, σ²) is the job's input file, not part of its settings.
    """

    dims: Dims
    method: str
    betas: tuple[float, ...]
    lambdas: tuple[float, ...]
    restarts: int
    init: str
    seed: int
    solver: FixedPointSettings | AdamWRun

    def science(self) -> dict[str, Any]:
        return {
            "dims": self.dims.to_dict(),
            "method": self.method,
            "betas": list(self.betas),
            "lambdas": list(self.lambdas),
            "restarts": self.restarts,
            "init": self.init,
            "seed": self.seed,
            self.method: self.solver.science(),
        }

    @classmethod
    def from_science(cls, science: Mapping[str, Any]) -> StudyJob:
        method = science["method"]
        solver = (FixedPointSettings if method == "fixed_point" else AdamWRun).from_science(
            science[method]
        )
        return cls(
            dims=Dims(**science["dims"]),
            method=method,
            betas=tuple(science["betas"]),
            lambdas=tuple(science["lambdas"]),
            restarts=int(science["restarts"]),
            init=science["init"],
            seed=int(science["seed"]),
            solver=solver,
        )


@dataclass(frozen=True)
class PhaseJob:
    """The phase study of one instance (``lambdabeta.linear.phase``): critical β per λ, the rank
    map and the rays, all solved by the fixed point from the authors' or the scaled-normal
    starts (``init``) of ``seed``."""

    dims: Dims
    lambdas: tuple[float, ...]
    rays: tuple[float, ...]
    ray_betas: tuple[float, ...]
    ray_restarts: int
    scan: tuple[float, float, int]
    resolution: float
    map_points: int
    tol: float
    max_iter: int
    adaptive_information: float
    adaptive_betas: tuple[float, ...]
    adaptive_iterations: int
    init: str
    seed: int

    def science(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_science(cls, science: Mapping[str, Any]) -> PhaseJob:
        values = known_fields(cls, science)
        low, high, per_decade = values["scan"]
        values |= {
            "dims": Dims(**values["dims"]),
            "scan": (float(low), float(high), int(per_decade)),
        }
        for key in ("lambdas", "rays", "ray_betas", "adaptive_betas"):
            values[key] = tuple(float(v) for v in values[key])
        return cls(**values)


@dataclass(frozen=True)
class ContractionJob:
    """The traced fixed-point runs of one instance, from the fixed point's starts."""

    dims: Dims
    betas: tuple[float, ...]
    lambdas: tuple[float, ...]
    iterations: int
    restarts: int
    init: str
    seed: int

    def science(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_science(cls, science: Mapping[str, Any]) -> ContractionJob:
        values = dict(science)
        return cls(
            **values
            | {
                "dims": Dims(**values["dims"]),
                "betas": tuple(values["betas"]),
                "lambdas": tuple(values["lambdas"]),
            }
        )
