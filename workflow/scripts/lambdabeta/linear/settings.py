"""Typed settings of the linear-Gaussian study, built from the validated ``linear`` config section.

``LinearSettings.from_config`` reads the section (its defaults filled in by the config schema,
``workflow/schemas/config.schema.yaml``; the defaults of the classes here are the same values,
held equal by a test) and hands out one job description per rule (``lambdabeta.linear.jobs``):

- ``InstanceJob``: what the instance file of one ``dims`` entry depends on;
- ``StudyJob``: one method on one instance, with the settings of that method only;
- ``ContractionJob``: the fixed-point traces of the contraction figure.

A job's ``science()`` is what its rule puts in ``params``. Threads and ``adamw.device`` are
logistics: the entry scripts take them from the scheduler and the config, and no job carries them.

Settings that differ by problem size are given per n: ``{50: 30000, 100: 50000}`` (a mapping
from n to the value) or one value for every n.

This module uses the standard library only: the workflow definition imports it in the Snakemake
process, whose environment need not have the project's dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import check_device_spec
from .jobs import (
    AdamWRun,
    ContractionJob,
    Dims,
    FixedPointSettings,
    GradClip,
    InstanceJob,
    PhaseJob,
    StudyJob,
    as_grad_clip,
    known_fields,
)

METHODS = ("fixed_point", "adamw")
INITS = ("authors", "scaled_normal")
PARAMETERIZATIONS = ("authors", "log_cholesky")
REPORTS = ("best", "last")

__all__ = [
    "AdamWRun",
    "AdamWSettings",
    "ContractionJob",
    "ContractionSettings",
    "Dims",
    "FixedPointSettings",
    "InstanceJob",
    "LinearSettings",
    "StudyJob",
    "for_n",
]


def for_n(key: str, value: Any, n: int) -> Any:
    """The value of a per-n setting at problem size n: ``value[n]`` for a mapping keyed by n,
    else ``value`` itself."""
    if not isinstance(value, Mapping):
        return value
    if n not in value:
        raise ValueError(
            f"config key 'linear.{key}': no entry for n = {n} (it has entries for n = "
            f"{sorted(value)}); add one, or give one value for every n"
        )
    return value[n]


# ---- config sections -----------------------------------------------------------------------


@dataclass(frozen=True)
class AdamWSettings:
    """Config ``linear.adamw``; ``steps`` and ``grad_clip`` may be given per n.

    The defaults are the authors' protocol: Σ = LLᵀ + εI with L projected to lower-triangular
    (``parameterization: authors``), ε = 5·10⁻⁵, the lowest-loss iterate reported
    (``report: best``), lr 10⁻³ and weight decay 0.01, with their step budget and clip
    thresholds for n = 100 (50,000 steps; (A, B) clipped at 2, the covariance factors at 3) for
    every n; config/config.yaml gives their values per n (n = 50: 30,000 steps, clips 1 and 2).

    ``device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) is how a job that was granted a GPU
    (``resources.linear_adamw.gpu``) uses it: logistics, so ``for_n`` leaves it out of the job
    (``lambdabeta.settings.job_device`` resolves it when the job runs).
    """

    steps: int | Mapping[int, int] = 50_000
    lr: float = 1.0e-3
    weight_decay: float = 0.01
    grad_clip: GradClip | Mapping[int, GradClip] = (2.0, 3.0)
    parameterization: str = "authors"
    epsilon: float = 5.0e-5
    report: str = "best"
    tol: float = 0.0
    check_every: int = 500
    device: str = "auto"

    def __post_init__(self) -> None:
        try:
            check_device_spec(self.device)
        except ValueError as error:
            raise ValueError(f"config key 'linear.adamw.device': {error}") from None
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"config key 'linear.adamw.parameterization': {self.parameterization!r} is not "
                f"one of {PARAMETERIZATIONS}"
            )
        if self.report not in REPORTS:
            raise ValueError(
                f"config key 'linear.adamw.report': {self.report!r} is not one of {REPORTS}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> AdamWSettings:
        values = known_fields(cls, section)
        if isinstance(values.get("steps"), Mapping):
            values["steps"] = {int(n): int(steps) for n, steps in values["steps"].items()}
        if "grad_clip" in values:
            clip = values["grad_clip"]
            values["grad_clip"] = (
                {int(n): as_grad_clip(c) for n, c in clip.items()}
                if isinstance(clip, Mapping)
                else as_grad_clip(clip)
            )
        return cls(**values)

    def for_n(self, n: int) -> AdamWRun:
        """The settings at problem size n; a per-n setting without an entry for n is an error
        that names the key."""
        return AdamWRun(
            steps=int(for_n("adamw.steps", self.steps, n)),
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            grad_clip=as_grad_clip(for_n("adamw.grad_clip", self.grad_clip, n)),
            parameterization=self.parameterization,
            report=self.report,
            tol=float(self.tol),
            epsilon=float(self.epsilon) if self.parameterization == "authors" else None,
            check_every=int(self.check_every) if self.tol > 0 else None,
        )


@dataclass(frozen=True)
class ContractionSettings:
    """Config ``linear.contraction``: the grid and length of the traced fixed-point runs."""

    betas: tuple[float, ...] = (1, 2, 4, 8, 16)
    lambdas: tuple[float, ...] = (0, 2)
    iterations: int = 40
    restarts: int = 5

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ContractionSettings:
        values = known_fields(cls, section)
        for key in ("betas", "lambdas"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class PhaseSettings:
    """Config ``linear.phase``: the λ of the critical-β table, the rays (values of
    c = λ/(β − 1) and their β), the scan and bisection of β, the rank map's points per axis, the
    fixed point's stopping rule there, and the adaptive-λ check (its target I(X; Y), its β and
    iterations)."""

    lambdas: tuple[float, ...] = (0.01, 0.1, 1, 2, 8)
    rays: tuple[float, ...] = (0.05, 0.25, 1.0)
    ray_betas: tuple[float, ...] = (1.5, 2, 4, 8, 32)
    ray_restarts: int = 3
    scan: tuple[float, float, int] = (1.0e-4, 1.0e5, 4)
    resolution: float = 1.0e-4
    map_points: int = 24
    tol: float = 1.0e-10
    max_iter: int = 100_000
    adaptive_information: float = 2.0
    adaptive_betas: tuple[float, ...] = (2, 4, 16)
    adaptive_iterations: int = 600

    def __post_init__(self) -> None:
        low, high, per_decade = self.scan
        if not 0 < low < high or per_decade < 1:
            raise ValueError(
                "config key 'linear.phase.scan': [lowest β − 1, highest β − 1, points per "
                f"decade] with 0 < lowest < highest and at least one point, got {list(self.scan)}"
            )
        if min(self.ray_betas) <= 1:
            raise ValueError(
                "config key 'linear.phase.ray_betas': every β of a ray must exceed 1 (at β = 1 "
                f"no λ lies on a ray), got {list(self.ray_betas)}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PhaseSettings:
        values = known_fields(cls, section)
        for key in ("lambdas", "rays", "ray_betas", "adaptive_betas"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        if "scan" in values:
            low, high, per_decade = values["scan"]
            values["scan"] = (float(low), float(high), int(per_decade))
        return cls(**values)


# ---- the whole section ----------------------------------------------------------------------


@dataclass(frozen=True)
class LinearSettings:
    """Config ``linear``: the instances, the (β, λ) grid, the starts and both solvers."""

    dims: tuple[Dims, ...]
    restarts: int
    betas: tuple[float, ...]
    lambdas: tuple[float, ...]
    methods: tuple[str, ...]
    noise_var: float = 0.05
    factor_var_range: tuple[float, float] = (0.1, 1.0)
    init: str = "authors"
    fixed_point: FixedPointSettings = field(default_factory=FixedPointSettings)
    adamw: AdamWSettings = field(default_factory=AdamWSettings)
    seed: int = 0
    instance_file: str | None = None
    contraction: ContractionSettings = field(default_factory=ContractionSettings)
    phase: PhaseSettings = field(default_factory=PhaseSettings)

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"config key 'linear.init': {self.init!r} is not one of {INITS}")
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"config key 'linear.methods': {unknown} not among {METHODS}")
        if "adamw" in self.methods:
            for dims in self.dims:
                self.adamw.for_n(dims.n)  # every per-n setting has a value for every n

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> LinearSettings:
        """Settings from the validated config section (missing optional keys: the defaults)."""
        values = known_fields(cls, section)
        values["dims"] = tuple(Dims(**d) for d in values["dims"])
        for key in ("betas", "lambdas", "methods", "factor_var_range"):
            if key in values:
                values[key] = tuple(values[key])
        nested = {
            "fixed_point": FixedPointSettings,
            "adamw": AdamWSettings,
            "contraction": ContractionSettings,
            "phase": PhaseSettings,
        }
        for key, settings_class in nested.items():
            if key in values:
                values[key] = settings_class.from_config(values[key])
        return cls(**values)

    def dims_named(self, name: str) -> Dims:
        """The dims entry whose ``{dims}`` wildcard is ``name``."""
        for dims in self.dims:
            if dims.name == name:
                return dims
        raise ValueError(f"no linear.dims entry matches {name}")

    def instance_file_for(self, dims: Dims) -> str | None:
        """The user's instance file for ``dims`` ({n}, {m}, {s} filled in), or None."""
        if self.instance_file is None:
            return None
        return self.instance_file.format(**dims.to_dict())

    def instance_files(self, dims_name: str) -> list[str]:
        """The user's instance file for the dims named ``dims_name`` as a list: the input of
        the instance job (empty when the instance is drawn)."""
        path = self.instance_file_for(self.dims_named(dims_name))
        return [] if path is None else [path]

    def instance_job(self, dims_name: str) -> InstanceJob:
        dims = self.dims_named(dims_name)
        instance_file = self.instance_file_for(dims)
        if instance_file is not None:
            return InstanceJob(dims, float(self.noise_var), instance_file=instance_file)
        return InstanceJob(
            dims,
            float(self.noise_var),
            factor_var_range=tuple(float(v) for v in self.factor_var_range),
            seed=self.seed,
        )

    def study_job(self, dims_name: str, method: str) -> StudyJob:
        dims = self.dims_named(dims_name)
        if method not in self.methods:
            raise ValueError(f"linear.methods has no {method!r}: {self.methods}")
        solver = self.fixed_point if method == "fixed_point" else self.adamw.for_n(dims.n)
        return StudyJob(
            dims=dims,
            method=method,
            betas=tuple(float(b) for b in self.betas),
            lambdas=tuple(float(v) for v in self.lambdas),
            restarts=self.restarts,
            init=self.init,
            seed=self.seed,
            solver=solver,
        )

    def phase_job(self, dims_name: str) -> PhaseJob:
        phase = self.phase
        return PhaseJob(
            dims=self.dims_named(dims_name),
            lambdas=phase.lambdas,
            rays=phase.rays,
            ray_betas=phase.ray_betas,
            ray_restarts=phase.ray_restarts,
            scan=phase.scan,
            resolution=phase.resolution,
            map_points=phase.map_points,
            tol=phase.tol,
            max_iter=phase.max_iter,
            adaptive_information=phase.adaptive_information,
            adaptive_betas=phase.adaptive_betas,
            adaptive_iterations=phase.adaptive_iterations,
            init=self.init,
            seed=self.seed,
        )

    def contraction_job(self, dims_name: str) -> ContractionJob:
        contraction = self.contraction
        return ContractionJob(
            dims=self.dims_named(dims_name),
            betas=tuple(float(b) for b in contraction.betas),
            lambdas=tuple(float(v) for v in contraction.lambdas),
            iterations=contraction.iterations,
            restarts=contraction.restarts,
            init=self.init,
            seed=self.seed,
        )
