"""Small training settings and images shared by the trainer's tests."""

from __future__ import annotations

import numpy as np

from lambdabeta.settings import TrainSettings


def random_binary_images(count: int = 32, seed: int = 0) -> np.ndarray:
    """``count`` random 0/255 uint8 images, N × 64 × 64 × 1 (about 30 % of pixels on)."""
    rng = np.random.default_rng(seed)
    return (rng.random((count, 64, 64, 1)) > 0.7).astype(np.uint8) * 255


def tiny_settings(**overrides) -> TrainSettings:
    """A few steps of a 3-latent model at batch 4, checkpointing and logging every few steps."""
    values = dict(
        steps=10,
        beta=4.0,
        lam=0.0,
        seed=0,
        phase="stabilize",
        run_name="tiny/beta4/seed0",
        batch_size=4,
        latent_dim=3,
        checkpoint_every=3,
        log_every=4,
        channels_last=True,
        threads=1,
    )
    return TrainSettings(**(values | overrides))
