"""One optimisation step of a pack, and the device options that change how it runs.

* ``precision="bf16"`` autocasts the forward pass to bfloat16 on CUDA and is refused on CPU
  (where it would be emulated, slowly, and the run would not be the one its settings name);
* ``tf32`` sets the CUDA matmul/cuDNN TF32 flags;
* ``compile`` wraps forward and loss in ``torch.compile`` (``lambdabeta.training.gradients``);
* ``channels_last`` keeps images and weights NHWC (on CPU the faster layout for this model's
  transposed convolutions);
* ``cuda_graphs`` captures the whole step — forward, backward and a ``capturable`` Adam — in one
  CUDA graph (``CudaGraphStep``), and is ignored on CPU. ``compile`` and ``cuda_graphs`` are
  exclusive.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import torch

from ..devices import select_device
from ..settings import TrainSettings
from .gradients import PackGradients

logger = logging.getLogger(__name__)

# Eager steps before a CUDA graph is captured (lazy state such as cuBLAS handles and Adam's
# moment buffers must exist before capture).
CUDA_GRAPH_WARMUP_STEPS = 3

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(indices K × B, noise K × B × m) → the members' loss terms (K × terms)``, one step."""


def make_step(optimizer: torch.optim.Optimizer, pack_gradients: PackGradients) -> Step:
    """The function running one optimisation step of the pack on a batch of each member."""

    def step(indices: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        terms = pack_gradients(indices, noise)
        optimizer.step()
        return terms

    return step


def forward_context(settings: TrainSettings, device: torch.device) -> Callable[[], Any]:
    """The context the model's forward pass runs in: bfloat16 autocast for ``precision=bf16``."""
    # autocast's weight-cast cache must be off while a CUDA graph is captured
    return functools.partial(
        torch.autocast,
        device.type,
        torch.bfloat16,
        enabled=settings.precision == "bf16",
        cache_enabled=not settings.cuda_graphs,
    )


class CudaGraphStep:
    """Replays one captured CUDA graph of a whole training step (forward, backward, Adam).

    The first calls run eagerly on a side stream, as capture requires; the next call captures
    the step and replays it. Callers must pass the same (static) index and noise tensors on
    every call, refilled in place, and read the returned (static) terms before the next call.
    """

    def __init__(self, step: Step, warmup: int = CUDA_GRAPH_WARMUP_STEPS):
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


def configure_device(
    settings: TrainSettings, label: str, jobs_per_gpu: int
) -> tuple[torch.device, str]:
    """Resolve the device and apply the device-wide switches; returns (device, its name)."""
    device = select_device(settings.device, jobs_per_gpu, setting="deep.train.device")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
        return device, torch.cuda.get_device_name(device)
    if settings.precision == "bf16":
        raise ValueError(
            f"{label}: precision 'bf16' needs a CUDA device, but training runs on CPU; set "
            "precision to 'fp32' for CPU runs"
        )
    if settings.cuda_graphs:
        logger.info("%s: cuda_graphs ignored on CPU", label)
    if not settings.channels_last:
        # PyTorch runs transposed convolutions through oneDNN only in NHWC layout on CPU
        logger.info(
            "%s: channels_last is off; on CPU, channels_last=true trains this model faster "
            "(oneDNN transposed convolutions)",
            label,
        )
    return device, "cpu"
