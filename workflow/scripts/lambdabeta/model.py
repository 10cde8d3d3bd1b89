"""The deep λβ-VAE of the paper (Table 1) and its model files.

A Gaussian encoder and a Bernoulli decoder for 64 × 64 × C images, with latent size m::

    encoder  Conv(C→32) → Conv(32→32) → Conv(32→64) → Conv(64→64)     4×4, stride 2, padding 1, ReLU
             64 → 32 → 16 → 8 → 4 px, flatten 64·4·4 → FC 256 ReLU → FC 2m (mean, log-variance)
    decoder  FC m→256 ReLU → FC 256→64·4·4 ReLU → ConvT(64→64) → ConvT(64→32) → ConvT(32→32)
             → ConvT(32→C)                                       4×4, stride 2, padding 1, ReLU
             between, Bernoulli logits out

Its objective is defined in ``lambdabeta.loss``; this module holds the architecture and its
model files. Model files and training checkpoints are read with ``torch.load(weights_only=True)``
(``load_record``), which unpickles tensors and plain values only; a file that does not load, or
lacks what this pipeline writes, is moved aside and reported (``lambdabeta.io.corrupt_file``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .io import atomic_path, corrupt_file, rerun_command

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


MODEL_KEYS = ("state_dict", "in_channels", "latent_dim", "metadata")
"""What ``save_weights`` writes, and ``load_model`` needs."""


def _load_failure(error: Exception) -> str:
    """Why ``torch.load`` failed, in its own words but without its advice (PyTorch suggests
    ``weights_only=False``, which would run whatever code a foreign pickle holds)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    # the first sentence states the problem; what follows is advice
    text = " ".join(text.split()).split(". ")[0].rstrip(".")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_record(
    path: str | os.PathLike, keys: Iterable[str], what: str, recompute: str | None = None
) -> dict[str, Any]:
    """The dict saved at ``path`` with ``torch.save``, checked to hold ``keys``.

    Loaded with ``weights_only=True``: only tensors and plain values are unpickled. A file that
    does not load (random bytes, truncated, a foreign pickle) or is not a dict with ``keys`` is
    moved aside and ``CorruptFileError`` raised, saying it is not ``what`` of this pipeline and
    what recomputes it (``recompute``, default the next ``snakemake`` run).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with warnings.catch_warnings():
            # torch.save writes protocol 2; another protocol is a foreign file, reported below
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            record = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # the disk or the permissions, not the file's content
    except Exception as error:
        size = path.stat().st_size
        reason = "the file is empty" if size == 0 else f"unpickling failed: {_load_failure(error)}"
        problem = f"not {what} of this pipeline ({reason}; {size:,} bytes)"
        raise corrupt_file(path, problem, recompute=recompute) from None
    if not isinstance(record, dict):
        problem = f"not {what} of this pipeline: it holds a {type(record).__name__}, not a dict"
        raise corrupt_file(path, problem, recompute=recompute)
    require_keys(path, record, keys, what, recompute)
    return record


def require_keys(
    path: Path, record: dict, keys: Iterable[str], what: str, recompute: str | None = None
) -> None:
    """Move ``path`` aside and raise ``CorruptFileError`` unless its ``record`` holds ``keys``."""
    missing = sorted(set(keys) - set(record))
    if missing:
        problem = f"not {what} of this pipeline: missing {missing} (it has {sorted(record)})"
        raise corrupt_file(path, problem, recompute=recompute)


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[VAE, dict]:
    """The VAE saved at ``path`` (in eval mode, on ``device``) and its metadata.

    A file that is not a saved VAE is moved aside and reported (``load_record``); Snakemake then
    sees the training run's model missing and trains it again at the next run.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    # the training job writes the model: Snakemake reruns it, and then what was trained from it
    retrain = f"the next `snakemake` run trains the run again (or now: {rerun_command(path)})"
    record = load_record(path, MODEL_KEYS, "a saved VAE", retrain)
    try:
        model = VAE(record["in_channels"], record["latent_dim"])
        model.load_state_dict(record["state_dict"])
    except (RuntimeError, ValueError, TypeError) as error:
        # torch lists every mismatched tensor: the first line says enough
        reason = str(error).strip().splitlines()[0]
        problem = f"not a saved VAE of this pipeline: its weights do not fit its shape ({reason})"
        raise corrupt_file(path, problem, recompute=retrain) from None
    return model.to(device).eval(), record["metadata"]
