"""The deep λβ-VAE of the paper (Table 1) and its model files.

A Gaussian encoder and a Bernoulli decoder for 64 × 64 × C images, with latent size m::

    encoder  Conv(C→32) → Conv(32→32) → Conv(32→64) → Conv(64→64)     4×4, stride 2, padding 1, ReLU
             64 → 32 → 16 → 8 → 4 px, flatten 64·4·4 → FC 256 ReLU → FC 2m (mean, log-variance)
    decoder  FC m→256 ReLU → FC 256→64·4·4 ReLU → ConvT(64→64) → ConvT(64→32) → ConvT(32→32)
             → ConvT(32→C)                                       4×4, stride 2, padding 1, ReLU
             between, Bernoulli logits out

Its objective is defined in ``lambdabeta.loss``; this module holds the architecture and its
model files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .io import atomic_path

IMAGE_SIZE = 64
"""Height and width the architecture is built for (four stride-2 convolutions reach 4 × 4)."""

_CONV = {"kernel_size": 4, "stride": 2, "padding": 1}
_ENCODER_CHANNELS = (32, 32, 64, 64)
_HIDDEN = 256
_BOTTLENECK = (64, 4, 4)


class VAE(nn.Module):
    """Convolutional VAE of Table 1: Gaussian posterior N(μ, diag σ²), Bernoulli decoder logits."""

    def __init__(self, in_channels: int, latent_dim: int = 15):
        super().__init__()
        if in_channels < 1 or latent_dim < 1:
            raise ValueError(
                f"VAE needs in_channels ≥ 1 and latent_dim ≥ 1, got {in_channels}, {latent_dim}"
            )
        self.in_channels = int(in_channels)
        self.latent_dim = int(latent_dim)
        c1, c2, c3, c4 = _ENCODER_CHANNELS
        flat = _BOTTLENECK[0] * _BOTTLENECK[1] * _BOTTLENECK[2]
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, **_CONV),
            nn.ReLU(),
            nn.Conv2d(c1, c2, **_CONV),
            nn.ReLU(),
            nn.Conv2d(c2, c3, **_CONV),
            nn.ReLU(),
            nn.Conv2d(c3, c4, **_CONV),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, _HIDDEN),
            nn.ReLU(),
            nn.Linear(_HIDDEN, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, _HIDDEN),
            nn.ReLU(),
            nn.Linear(_HIDDEN, flat),
            nn.ReLU(),
            nn.Unflatten(1, _BOTTLENECK),
            nn.ConvTranspose2d(c4, c4, **_CONV),
            nn.ReLU(),
            nn.ConvTranspose2d(c4, c2, **_CONV),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, **_CONV),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, in_channels, **_CONV),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance (each B × m) of images ``x`` (B × C × 64 × 64)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"VAE expects images of shape B × {self.in_channels} × {IMAGE_SIZE} × "
                f"{IMAGE_SIZE}, got {tuple(x.shape)}"
            )
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits (B × C × 64 × 64) of latent codes ``z`` (B × m)."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction logits, μ and log σ² of ``x``, sampling ``z = μ + exp(log σ² / 2)·noise``.

        The standard-normal ``noise`` (B × m) comes from the caller, which owns the random stream.
        """
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * noise
        return self.decode(z), mu, logvar


def save_model(path: str | os.PathLike, model: VAE, metadata: dict[str, Any]) -> None:
    """Write ``model``'s weights, ``in_channels``, ``latent_dim`` and ``metadata`` atomically.

    ``metadata`` must hold plain Python values (numbers, strings, lists, dicts) so that the file
    loads with ``torch.load(weights_only=True)``.
    """
    save_weights(path, model.state_dict(), model.in_channels, model.latent_dim, metadata)


def save_weights(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    in_channels: int,
    latent_dim: int,
    metadata: dict[str, Any],
) -> None:
    """``save_model`` from a VAE's ``state_dict`` (on any device, in any layout) and its shape;
    the file holds contiguous CPU tensors."""
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
    record = {
        "state_dict": state,
        "in_channels": int(in_channels),
        "latent_dim": int(latent_dim),
        "metadata": dict(metadata),
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[VAE, dict]:
    """The VAE saved at ``path`` (in eval mode, on ``device``) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    record = torch.load(path, map_location="cpu", weights_only=True)
    missing = {"state_dict", "in_channels", "latent_dim", "metadata"} - set(record)
    if missing:
        raise ValueError(f"{path} is not a saved VAE: missing {sorted(missing)}")
    model = VAE(record["in_channels"], record["latent_dim"])
    model.load_state_dict(record["state_dict"])
    return model.to(device).eval(), record["metadata"]
