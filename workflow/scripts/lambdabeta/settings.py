"""Typed, validated settings of the deep stages, built from the config: training here, evaluation
in ``lambdabeta.evaluation.settings``, and ``DeepSettings``, what the rules put in ``params``
(what every settings class shares is ``lambdabeta.setting_checks``).

Each settings class splits its fields into two kinds:

- **science**: what changes a job's results (β, the learning rate, the number of evaluation
  images, …). Only these reach a Snakemake rule's ``params``, so changing one reruns exactly the
  jobs it affects, and only these must agree for a training checkpoint to be resumed.
- **logistics**: how and where the job runs (threads, device, layouts and compilation, checkpoint
  interval, run name, evaluation batch size). The entry scripts read them from the config, so
  changing one never reruns anything.

The config schema (``workflow/schemas/config.schema.yaml``) fills in the defaults of the config;
the defaults of the classes here are the same values, held equal by a test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .evaluation.settings import EvaluationSettings
from .grid import PHASES, Run
from .setting_checks import (
    SettingError,
    Settings,
    boolean_setting,
    check_device_spec,
    integer_setting,
    is_number,
    number_setting,
)

# This module and .grid use the standard library only: the workflow definition imports them in
# the Snakemake process, whose environment need not have the project's dependencies.

PRECISIONS = ("fp32", "bf16")
CONTROLLER_KEYS = (
    *("target", "proportional", "integral", "lambda_min", "lambda_max", "initial_lambda"),
    *("ramp_steps", "averaging"),
)
"""The settings of an adaptive λ's controller (``lambdabeta.control.ControllerSettings``)."""
# ---- training ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSettings(Settings):
    """Everything that defines one training phase: the keys of config ``deep.train`` (with
    ``steps`` for stabilize_steps/finetune_steps), ``deep.latent_dim``, and the run's β, λ, seed,
    phase and name."""

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
    channels_last: bool = True
    cuda_graphs: bool = False
    latent_dim: int = 15
    threads: int = 1
    controller: dict[str, Any] | None = None

    # log_every is science: it sets the rows of the written training curve. precision and tf32
    # change the arithmetic itself; device, layouts, compilation and graphs only change which
    # kernels compute the same arithmetic.
    SCIENCE: ClassVar[tuple[str, ...]] = (
        "steps",
        "beta",
        "lam",
        "seed",
        "phase",
        "batch_size",
        "lr",
        "adam_betas",
        "adam_eps",
        "log_every",
        "precision",
        "tf32",
        "latent_dim",
        "controller",
    )
    LOGISTICS: ClassVar[tuple[str, ...]] = (
        "run_name",
        "checkpoint_every",
        "device",
        "compile",
        "channels_last",
        "cuda_graphs",
        "threads",
    )

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "latent_dim"):
            self._set(name, integer_setting(name, getattr(self, name), minimum=1))
        self._set("threads", integer_setting("threads", self.threads, minimum=1))
        self._set("seed", integer_setting("seed", self.seed, minimum=0))
        for name in ("beta", "lam", "lr"):
            self._set(name, number_setting(name, getattr(self, name), minimum=0.0))
        self._set("adam_eps", number_setting("adam_eps", self.adam_eps, minimum=0.0, strict=True))
        betas = tuple(self.adam_betas) if isinstance(self.adam_betas, list | tuple) else ()
        if len(betas) != 2 or not all(is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise SettingError(
                "adam_betas", f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}"
            )
        self._set("adam_betas", (float(betas[0]), float(betas[1])))
        for name in ("tf32", "compile", "channels_last", "cuda_graphs"):
            boolean_setting(name, getattr(self, name))
        check_device_spec(self.device)
        if self.precision not in PRECISIONS:
            raise SettingError(
                "precision", f"precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        if self.phase not in PHASES:
            raise SettingError("phase", f"phase must be one of {PHASES}, got {self.phase!r}")
        if not isinstance(self.run_name, str) or not self.run_name:
            raise SettingError(
                "run_name", f"run_name must be a non-empty string, got {self.run_name!r}"
            )
        if self.compile and self.cuda_graphs:
            raise SettingError(
                "compile",
                "compile and cuda_graphs cannot both be true: capturing a torch.compile'd step "
                "in a hand-made CUDA graph is not supported; choose one",
            )
        if self.controller is not None:
            unknown = sorted(set(self.controller) - set(CONTROLLER_KEYS))
            missing = sorted(set(CONTROLLER_KEYS) - set(self.controller))
            if unknown or missing or self.phase != "finetune":
                raise SettingError(
                    "controller",
                    "controller must be the adaptive λ's settings of a finetune, with the keys "
                    f"{list(CONTROLLER_KEYS)}; unknown {unknown}, missing {missing}",
                )

    def science(self) -> dict[str, Any]:
        """The fields that change results; ``controller`` only when λ is adaptive, so a static
        run's science is what it was before adaptive λ existed."""
        values = super().science()
        if values["controller"] is None:
            del values["controller"]
        return values

    @classmethod
    def for_run(
        cls, run: Run, science: Mapping[str, Any], logistics: Mapping[str, Any]
    ) -> TrainSettings:
        """The settings of ``run`` from its science (``DeepSettings.train_science``) and its
        logistics."""
        return cls.from_dict({**science, **logistics, "run_name": run.name})


# The training settings that do not come from config deep.train as they are: a run's own β, λ
# and seed (its path), its phase and that phase's step count, the latents (deep.latent_dim), its
# name, the job's threads (the scheduler's) and an adaptive λ's controller (deep.adaptive). The
# others are deep.train keys, by kind.
_NOT_TRAIN_KEYS = (
    *("beta", "lam", "seed", "phase", "steps", "latent_dim", "run_name", "threads"),
    "controller",
)
_TRAIN_CONFIG_SCIENCE = tuple(k for k in TrainSettings.SCIENCE if k not in _NOT_TRAIN_KEYS)
_TRAIN_CONFIG_LOGISTICS = tuple(k for k in TrainSettings.LOGISTICS if k not in _NOT_TRAIN_KEYS)


def run_science(run: Run) -> dict[str, Any]:
    """The science settings a run's identity fixes: its β, λ (0 when stabilizing) and seed."""
    return {"beta": run.beta, "lam": 0.0 if run.lam is None else run.lam, "seed": run.seed}


# ---- the deep study ------------------------------------------------------------------------


def job_device(spec: str, granted_gpus: int) -> str:
    """The device specification a job hands to ``lambdabeta.devices.select_device``: the
    configured ``spec`` when the scheduler granted the job a GPU (its ``gpu`` resource ≥ 1), else
    ``cpu``. One policy for every job kind: ``resources.<job>.gpu`` asks for a GPU, the device
    key says how a job uses the GPU it was granted, and a job granted none leaves the GPUs to
    the jobs that hold one, whatever its device key says."""
    check_device_spec(spec)
    return spec if granted_gpus >= 1 else "cpu"


@dataclass(frozen=True)
class DeepSettings:
    """Config ``deep`` as the schema validated it (its defaults filled in): the grid, and the
    science and logistics of its training and evaluation jobs.

    ``phase_science`` and ``evaluation_science`` are what the training and evaluation rules put
    in ``params``; the entry scripts rebuild a job's settings from those and from the
    logistics given here (``train_settings``, ``evaluation_settings``), so a job reads no
    setting that does not rerun it.
    """

    section: Mapping[str, Any]

    @classmethod
    def from_config(cls, deep: Mapping[str, Any] | None) -> DeepSettings:
        """From the validated ``deep`` section; a config without one trains nothing."""
        return cls(deep if deep is not None else {"datasets": []})

    @property
    def datasets(self) -> list[str]:
        return list(self.section["datasets"])

    @property
    def pack_size(self) -> int:
        """Runs per training job (1 when there is nothing to train)."""
        return int(self.section["train"]["pack_size"]) if self.datasets else 1

    @property
    def reconstruction_metric(self) -> str | None:
        return self.section.get("reconstruction_metric")

    def phase_science(self, phase: str) -> dict[str, Any]:
        """The science shared by every run of ``phase``: what a training rule puts in
        ``params``. A run's β, λ and seed are in its path, so the params of one run's job and of
        a job training several runs at once are the same."""
        train = self.section["train"]
        values = {key: train[key] for key in _TRAIN_CONFIG_SCIENCE}
        values["adam_betas"] = list(values["adam_betas"])
        return values | {
            "steps": train[f"{phase}_steps"],
            "phase": phase,
            "latent_dim": self.section["latent_dim"],
        }

    def train_science(self, run: Run) -> dict[str, Any]:
        """The science of ``run``'s training, what its checkpoint and ``run.json`` must agree
        on: ``phase_science`` with the run's own β, λ and seed (``run_science``)."""
        return self.phase_science(run.phase) | run_science(run)

    def train_settings(
        self, run: Run, phase_science: Mapping[str, Any], threads: int, granted_gpus: int
    ) -> TrainSettings:
        """The settings of ``run`` in a job whose params hold ``phase_science``, on ``threads``
        threads with ``granted_gpus`` GPUs (``job_device``)."""
        train = self.section["train"]
        logistics = {key: train[key] for key in _TRAIN_CONFIG_LOGISTICS}
        logistics |= {
            "threads": threads,
            "device": job_device(train["device"], granted_gpus),
        }
        return TrainSettings.for_run(run, {**phase_science, **run_science(run)}, logistics)

    # ---- adaptive λ (deep.adaptive) ----

    @property
    def adaptive(self) -> Mapping[str, Any]:
        """Config ``deep.adaptive`` (``enabled`` false when absent)."""
        return self.section.get("adaptive") or {"enabled": False}

    def adaptive_science(self) -> dict[str, Any]:
        """An adaptive finetune's science (its rule's ``params``): the finetune phase's, and the
        controller's law with either its ``target`` (nats) or, when that is null, the
        ``reference_beta`` whose stabilized model's rate sets it and the ``reference_window``
        (``deep.evaluate.bce_window``) of last steps that rate is averaged over."""
        law = {
            key: value for key, value in self.adaptive.items() if key not in ("enabled", "betas")
        }
        if law.get("target") is None:
            law["reference_window"] = self.section["evaluate"]["bce_window"]
        else:
            law.pop("reference_beta", None)  # the set point is the number: no reference model
        return self.phase_science("finetune") | {"adaptive": law}

    def adaptive_settings(
        self,
        run: Run,
        science: Mapping[str, Any],
        threads: int,
        granted_gpus: int,
        reference_rate: float | None,
    ) -> TrainSettings:
        """The settings of the adaptive finetune ``run`` in a job whose params hold ``science``
        (``adaptive_science``); ``reference_rate`` is the reference model's KL rate when the
        target is not a number of nats."""
        law = science["adaptive"]
        target = law["target"] if law["target"] is not None else reference_rate
        if target is None:
            raise ValueError(
                "config key 'deep.adaptive': give a target (nats) or a reference_beta whose "
                "stabilized model's rate is the target"
            )
        controller = {
            "target": float(target),
            "ramp_steps": round(law["ramp"] * science["steps"]),
            **{
                key: float(law[key])
                for key in CONTROLLER_KEYS
                if key not in ("target", "ramp_steps")
            },
        }
        phase = {key: value for key, value in science.items() if key != "adaptive"}
        settings = self.train_settings(run, phase, threads, granted_gpus)
        return dataclasses.replace(settings, controller=controller)

    def evaluation_science(self) -> dict[str, Any]:
        """The science of the evaluation settings: what the evaluation rule puts in ``params``."""
        return {key: self.section["evaluate"][key] for key in EvaluationSettings.SCIENCE}

    def evaluation_settings(
        self, science: Mapping[str, Any], granted_gpus: int
    ) -> EvaluationSettings:
        """The evaluation settings of a job whose params hold ``science``: the batch size from
        the config and the device training uses (``job_device``)."""
        logistics = {
            "batch_size": self.section["evaluate"]["batch_size"],
            "device": job_device(self.section["train"]["device"], granted_gpus),
        }
        return EvaluationSettings.from_dict({**science, **logistics})


# ---- datasets ------------------------------------------------------------------------------

# Of a `datasets:` entry, what the fetched file depends on (mirrors and a local copy are only
# where it comes from: the checksum pins its content) …
_DOWNLOAD_SCIENCE = ("file", "checksum", "size")
# … and what the prepared arrays depend on.
_PREPARATION_SCIENCE = ("format", "checksum", "subgrid", "factor_sizes")


def download_science(source: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a dataset source that change the fetched file (a rule's ``params``)."""
    return {key: source[key] for key in _DOWNLOAD_SCIENCE if key in source}


def preparation_science(source: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a dataset source that change the prepared dataset (a rule's ``params``)."""
    return {key: source[key] for key in _PREPARATION_SCIENCE if key in source}
