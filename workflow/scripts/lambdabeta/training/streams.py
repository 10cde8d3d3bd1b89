"""The random streams of a training run, each derived from its seed.

* The weight initialisation depends on ``seed`` alone, so a seed starts every β from the same
  model.
* The batch-index and reparameterisation-noise streams depend on ``(seed, phase)``, drawn from
  ``np.random.SeedSequence``: every λ finetune of one stabilized model sees the same batches and
  the same noise (as in the authors' code, which reseeds with the run's seed before each λ), so a
  λ comparison within a seed differs by λ alone.

Each step draws ``batch_size`` image indices uniformly with replacement and the noise from two
``torch.Generator`` on the training device, so a step involves no host↔device transfer.
"""

from __future__ import annotations

import numpy as np
import torch

from ..grid import PHASES
from ..model import VAE
from ..settings import TrainSettings

# Spawn-key tags of the random streams derived from a seed.
_INIT_STREAM, _INDEX_STREAM, _NOISE_STREAM = 0, 1, 2


def _seed_from(seed: int, *spawn_key: int) -> int:
    """A 63-bit torch seed from ``SeedSequence(seed, spawn_key)``."""
    state = np.random.SeedSequence(seed, spawn_key=spawn_key).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def initialisation_seed(seed: int) -> int:
    """Torch seed of the weight initialisation: a function of ``seed`` alone."""
    return _seed_from(seed, _INIT_STREAM)


def stream_seeds(seed: int, phase: str) -> tuple[int, int]:
    """Torch seeds of the batch-index and noise streams of ``(seed, phase)`` (module docstring):
    they do not depend on β or λ."""
    phase_code = PHASES.index(phase)
    return (
        _seed_from(seed, _INDEX_STREAM, phase_code),
        _seed_from(seed, _NOISE_STREAM, phase_code),
    )


def make_generators(
    settings: TrainSettings, device: torch.device
) -> tuple[torch.Generator, torch.Generator]:
    """Seeded generators (batch indices, reparameterisation noise) on ``device``."""
    index_seed, noise_seed = stream_seeds(settings.seed, settings.phase)
    index_generator = torch.Generator(device=device)
    index_generator.manual_seed(index_seed)
    noise_generator = torch.Generator(device=device)
    noise_generator.manual_seed(noise_seed)
    return index_generator, noise_generator


def initial_model(in_channels: int, latent_dim: int, seed: int) -> VAE:
    """A freshly initialised VAE (on CPU) whose weights depend on ``seed`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(initialisation_seed(seed))
        return VAE(in_channels, latent_dim)
