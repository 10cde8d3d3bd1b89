"""Adaptive λ: a controller that sets the reconstruction weight to hold a target information rate.

The paper's first item of future work (§7): adjust the reconstruction pressure λ during
training to maintain a target mutual information. The controlled quantity is the KL rate of the
batch (nats, summed over latents), an upper bound on I(X; Y) that λ raises; the step computes it
anyway. The controller is a proportional-integral law on u = ln λ (λ acts multiplicatively),
with a bounded proportional term, an integrator clipped to the λ range (anti-windup: it cannot
wind beyond what the actuator can do) and a set point ramped in from the starting rate, so that
an integrator does not wind up while the information sits at zero below a collapse boundary::

    ā_t = α·ā_{t−1} + (1 − α)·k_t              the averaged rate (ā_1 = k_1), α = ``averaging``
    r_t = r* + (r_0 − r*)·max(0, 1 − t/T)      the set point, r_0 = k_1, T = ``ramp_steps``
    e_t = (r_t − ā_t) / r*                       the relative error
    I_t = clip(I_{t−1} + K_i·e_t, ln λ_min, ln λ_max)
    u_t = clip(I_t + K_p·tanh(e_t), ln λ_min, ln λ_max),   λ_t = exp(u_t)

λ_t weighs the next step. Everything is a tensor on the training device, updated in place
(``ControllerState.update``), so a step never waits for the device and one compiled or
captured step serves every λ. The state is part of the training checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

STATE_FIELDS = ("integral", "average", "start", "steps", "lam")


@dataclass(frozen=True)
class ControllerSettings:
    """The controller's law (module docstring): the target rate r* (nats), the gains, the λ
    range, the start λ, the ramp length in steps and the averaging weight α."""

    target: float
    proportional: float = 0.5
    integral: float = 0.01
    lambda_min: float = 1e-3
    lambda_max: float = 1e4
    initial_lambda: float = 1.0
    ramp_steps: int = 0
    averaging: float = 0.99

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target) and self.target > 0):
            raise ValueError(f"the target information rate must be > 0 nats, got {self.target}")
        if not 0 < self.lambda_min <= self.initial_lambda <= self.lambda_max:
            raise ValueError(
                "need 0 < lambda_min ≤ initial_lambda ≤ lambda_max, got "
                f"{self.lambda_min}, {self.initial_lambda}, {self.lambda_max}"
            )
        if not 0 <= self.averaging < 1:
            raise ValueError(f"averaging must be in [0, 1), got {self.averaging}")
        if self.proportional < 0 or self.integral < 0 or self.ramp_steps < 0:
            raise ValueError("the gains and the ramp must be ≥ 0")

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class ControllerState:
    """The controller's state as float64 tensors on one device: the integrator, the averaged
    rate, the starting rate, the number of updates and the current λ (float32, the step's). Of
    ``shape`` () for one run, or (K,) for K independent loops updated at once."""

    def __init__(
        self,
        settings: ControllerSettings,
        device: torch.device | str = "cpu",
        shape: tuple[int, ...] = (),
    ):
        self.settings = settings
        wide = {"dtype": torch.float64, "device": device}
        self.integral = torch.full(shape, math.log(settings.initial_lambda), **wide)
        self.average = torch.zeros(shape, **wide)
        self.start = torch.zeros(shape, **wide)
        self.steps = torch.zeros(shape, **wide)
        self.lam = torch.full(shape, settings.initial_lambda, dtype=torch.float32, device=device)

    def set_point(self) -> torch.Tensor:
        """r_t of the last update (r_0 before the first)."""
        settings = self.settings
        if settings.ramp_steps == 0:
            return torch.full_like(self.average, settings.target)
        left = torch.clamp(1.0 - self.steps / settings.ramp_steps, min=0.0)
        return settings.target + (self.start - settings.target) * left

    def update(self, rate: torch.Tensor) -> None:
        """One step of the law for the measured rate ``rate`` (a tensor of the state's shape,
        any float dtype), in place; ``lam`` then holds λ for the next step."""
        settings = self.settings
        rate = rate.detach().to(torch.float64)
        first = self.steps == 0
        self.start.copy_(torch.where(first, rate, self.start))
        blended = settings.averaging * self.average + (1.0 - settings.averaging) * rate
        self.average.copy_(torch.where(first, rate, blended))
        self.steps.add_(1.0)
        error = (self.set_point() - self.average) / settings.target
        low, high = math.log(settings.lambda_min), math.log(settings.lambda_max)
        self.integral.copy_(torch.clamp(self.integral + settings.integral * error, low, high))
        u = torch.clamp(self.integral + settings.proportional * torch.tanh(error), low, high)
        self.lam.copy_(torch.exp(u))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state, copied to the CPU (a checkpoint's ``controller`` entry)."""
        return {name: getattr(self, name).detach().to("cpu", copy=True) for name in STATE_FIELDS}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(STATE_FIELDS) - set(state))
        if missing:
            raise ValueError(f"controller state lacks {missing}")
        for name in STATE_FIELDS:
            getattr(self, name).copy_(state[name])


def first_order_plant(
    settings: ControllerSettings,
    gain: float,
    lag: float,
    steps: int,
    noise: float = 0.0,
    seed: int = 0,
) -> dict[str, list[float]]:
    """The controller on a first-order plant: the rate relaxes towards ``gain``·log(1 + λ)
    with time constant ``lag`` steps, measured with Gaussian ``noise``; returns λ, the rate, the
    averaged rate and the set point per step (a test bench for the law)."""  # fmt: skip
    state = ControllerState(settings)
    generator = torch.Generator().manual_seed(seed)
    rate = torch.zeros((), dtype=torch.float64)
    history: dict[str, list[float]] = {"lam": [], "rate": [], "average": [], "set_point": []}
    for _ in range(steps):
        steady = gain * torch.log1p(state.lam.double())
        rate = rate + (steady - rate) / lag
        measured = rate + noise * torch.randn((), generator=generator, dtype=torch.float64)
        state.update(measured)
        history["lam"].append(float(state.lam))
        history["rate"].append(float(rate))
        history["average"].append(float(state.average))
        history["set_point"].append(float(state.set_point()))
    return history
