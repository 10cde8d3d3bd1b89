"""Forward passes of a model over evaluation images: encoder means and variances, per-latent KL,
reconstruction NLL, reconstructions and latent traversals (``lambdabeta.evaluate``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..loader import DeviceImages
from ..loss import image_nll, kl_per_latent
from ..model import load_model


@dataclass(frozen=True)
class ForwardPass:
    means: np.ndarray
    logvars: np.ndarray
    kl: np.ndarray | None
    nll: np.ndarray | None


def forward_pass(
    model: nn.Module,
    images: DeviceImages,
    indices: np.ndarray | torch.Tensor,
    batch_size: int,
    *,
    with_kl: bool,
    with_nll: bool,
) -> ForwardPass:
    """Encoder means and log-variances (N × m), per-image-per-latent KL (N × m) and per-image NLL
    (N), float64.

    One pass over ``images[indices]`` in batches; ``decode`` runs only when the NLL is asked for.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    device = next(model.parameters()).device
    indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    means, logvars, kls, nlls = [], [], [], []
    with torch.inference_mode():
        for batch_indices in indices.split(batch_size):
            x = images.batch(batch_indices).to(device)
            mu, logvar = model.encode(x)
            means.append(mu.double())
            logvars.append(logvar.double())
            if with_kl:
                kls.append(kl_per_latent(mu.double(), logvar.double()))
            if with_nll:
                nlls.append(image_nll(model.decode(mu), x).double())
    return ForwardPass(
        means=torch.cat(means).cpu().numpy(),
        logvars=torch.cat(logvars).cpu().numpy(),
        kl=torch.cat(kls).cpu().numpy() if with_kl else None,
        nll=torch.cat(nlls).cpu().numpy() if with_nll else None,
    )


def encode_means(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor, batch_size: int
) -> np.ndarray:
    """Encoder means μ(x) of ``images[indices]``, N × m float64, computed in batches."""
    return forward_pass(model, images, indices, batch_size, with_kl=False, with_nll=False).means


def image_encoder(
    model: nn.Module,
    device: torch.device,
    batch_size: int,
    noise: np.random.Generator | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """``encode(images)``: the codes of uint8 images (N × H × W × C) on ``device`` in batches,
    the encoder means, or with ``noise`` one sample z = μ + σ·ε each (:func:`sampled_codes`,
    drawing the generator's next numbers). For scores that draw their own images (FactorVAE)."""

    def encode(images: np.ndarray) -> np.ndarray:
        batch = DeviceImages(images, device=device, channels_last=device.type == "cpu")
        passed = forward_pass(
            model, batch, np.arange(len(images)), batch_size, with_kl=False, with_nll=False
        )
        if noise is None:
            return passed.means
        return sampled_codes(passed.means, passed.logvars, noise)

    return encode


def reconstruction_nll(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor, batch_size: int
) -> float:
    """Mean per-image Bernoulli negative log-likelihood of the reconstruction from μ (nats).

    ``(1/N) Σ_n Σ_pixels BCE-with-logits(decode(μ(x_n)), x_n)``; images in [0, 1] that are not
    binary give the cross-entropy, as in training.
    """
    return float(
        forward_pass(model, images, indices, batch_size, with_kl=False, with_nll=True).nll.mean()
    )


def mean_kl_per_latent(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor, batch_size: int
) -> np.ndarray:
    """Mean over ``images[indices]`` of each latent's KL(q(z_j|x) ‖ N(0, 1)) (nats), length m.

    ``KL_j = (1/N) Σ_n ½(μ_nj² + σ_nj² − 1 − log σ_nj²)``.
    """
    return forward_pass(model, images, indices, batch_size, with_kl=True, with_nll=False).kl.mean(
        axis=0
    )


def count_active_latents(kl: np.ndarray, threshold: float = 0.01) -> int:
    """Number of latents whose mean KL exceeds ``threshold`` nats (the others are collapsed)."""
    return int(np.count_nonzero(np.asarray(kl) > threshold))


def reconstruct(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor
) -> np.ndarray:
    """Decoder means of ``images[indices]`` from μ as uint8 k × H × W × C: round(255·σ(logits))."""
    device = next(model.parameters()).device
    indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    with torch.inference_mode():
        mu, _ = model.encode(images.batch(indices).to(device))
        pixels = torch.sigmoid(model.decode(mu).float()).mul(255.0).round()
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def sampled_codes(
    means: np.ndarray,
    logvars: np.ndarray,
    seed: int | np.random.SeedSequence | np.random.Generator,
) -> np.ndarray:
    """One draw z = μ + exp(½ log σ²)·ε per image and latent (N × m, float64), ε ~ N(0, 1) from
    the stream ``seed`` (:func:`evaluation_stream`), so every model of a seed is scored on the
    same noise; a ``Generator`` is drawn from as it stands (its next draws)."""
    noise = np.random.default_rng(seed)
    return means + np.exp(0.5 * logvars) * noise.standard_normal(means.shape)


def traverse(
    model: nn.Module,
    images: DeviceImages,
    position: int,
    kl: np.ndarray,
    steps: int,
    span: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder means (uint8, latents × steps × H × W × C) of image ``position``'s μ with each
    latent in turn set to ``steps`` values evenly over [−span, span]; latents by decreasing KL.
    Returns (the values, the latents' order, the images)."""
    device = next(model.parameters()).device
    values = np.linspace(-span, span, steps)
    order = np.argsort(-np.asarray(kl), kind="stable")
    with torch.inference_mode():
        mu, _ = model.encode(images.batch(torch.tensor([position])).to(device))
        codes = mu.repeat(len(order) * steps, 1)
        rows = torch.arange(len(order) * steps, device=device)
        latents = torch.as_tensor(np.repeat(order, steps), device=device)
        swept = torch.as_tensor(np.tile(values, len(order)), dtype=codes.dtype, device=device)
        codes[rows, latents] = swept
        pixels = torch.sigmoid(model.decode(codes).float()).mul(255.0).round()
    decoded = pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return values, order, decoded.reshape(len(order), steps, *decoded.shape[1:])


def load_evaluation_model(model_path: str | os.PathLike, device: torch.device) -> nn.Module:
    """The saved model in eval mode on ``device``; channels-last on the CPU.

    oneDNN's CPU convolutions run about 1.5× faster on channels-last tensors (and allocate far
    less per batch); results agree with the default layout up to float rounding.
    """
    model, _ = load_model(model_path, device=device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def evaluation_images(images: np.ndarray, rows: np.ndarray, device: torch.device) -> DeviceImages:
    """``images[rows]`` (uint8 N × H × W × C, e.g. a memory map) on ``device``, in row order.

    The rows are read from ``images`` in increasing order, which a memory-mapped file serves
    fastest; batches come out channels-last on the CPU (see ``load_evaluation_model``).
    """
    return DeviceImages(
        gather_rows(images, rows), device=device, channels_last=device.type == "cpu"
    )


def gather_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` read in increasing row order, which a memory-mapped file serves fastest."""
    order = np.argsort(rows)
    gathered = np.empty((rows.size, *array.shape[1:]), dtype=array.dtype)
    gathered[order] = array[rows[order]]
    return gathered
