"""The deep λβ-VAE objective (paper §4, §5.2): its terms, their order, and one definition of each.

For a batch of B images x with Bernoulli decoder logits and a Gaussian posterior N(μ, diag σ²)
(the convention of the paper's code and of disentanglement_lib, so that β values carry over)::

    bce  = (1/B) Σ_images Σ_pixels BCE-with-logits(logits, x)    the Bernoulli NLL
    kl   = Σ_latents (1/B) Σ_images ½(μ² + σ² − 1 − log σ²)       KL(q(z|x) ‖ N(0, I))
    l2   = (1/B) Σ_images Σ_pixels (sigmoid(logits) − x)²          the decoder mean's squared error
    loss = bce + β·kl + λ·l2

``lambda_beta_loss`` computes them for one model (inputs B × …) or for a pack of K models at once
(inputs K × B × …, ``members=True``; β and λ then K-vectors): the same formulas, each member's
sums taken over its own images. ``image_nll`` is the per-image Bernoulli NLL that evaluation
reports. ``LOSS_TERMS`` is the order in which the terms are stored (training curves, summaries).
Terms are computed in float32 whatever the dtype of the logits (bf16 autocast included).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

LOSS_TERMS = ("loss", "bce", "kl", "l2")
"""The order of the loss terms in every curve row and record; the per-latent KL follows them."""


class LossTerms(NamedTuple):
    """Terms of the λβ-VAE objective for one batch: 0-d tensors (one model) or K-vectors (a pack),
    except ``kl_per_latent``: m (one model) or K × m (a pack)."""

    loss: torch.Tensor
    bce: torch.Tensor
    kl: torch.Tensor
    l2: torch.Tensor
    kl_per_latent: torch.Tensor

    def rows(self) -> torch.Tensor:
        """The terms as stored, detached: ``(loss, bce, kl, l2, kl_z0 … kl_z{m−1})``, a vector
        for one model and a K × (4 + m) matrix for a pack."""
        head = torch.stack([getattr(self, name) for name in LOSS_TERMS], dim=-1)
        return torch.cat((head, self.kl_per_latent), dim=-1).detach()


def pixel_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood of each pixel, BCE-with-logits(logits, x), in float32.

    The numerically sound form, from the logits; images in [0, 1] that are not binary give the
    cross-entropy.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")


def image_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image Bernoulli NLL, Σ_pixels ``pixel_nll`` (nats), for images B × C × H × W."""
    return pixel_nll(logits, x).flatten(start_dim=1).sum(dim=1)


def kl_per_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) of each latent of each image: ½(μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def _batch_sum(values: torch.Tensor, members: bool) -> torch.Tensor:
    """Σ over the images and pixels of each model: all of ``values`` for one model, each slice
    of the leading member dimension for a pack."""
    return values.flatten(start_dim=1).sum(dim=1) if members else values.sum()


def lambda_beta_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float | torch.Tensor,
    lam: float | torch.Tensor,
    *,
    members: bool = False,
    l2_in_graph: bool | None = None,
) -> LossTerms:
    """The λβ-VAE objective ``loss = bce + β·kl + λ·l2`` and its terms (module docstring).

    One model: ``logits`` and ``x`` B × C × H × W, ``mu`` and ``logvar`` B × m, β and λ numbers
    (or 0-d tensors). A pack (``members=True``): every input has a leading member dimension K
    and β, λ are K-vectors; member k's terms are its model's.

    ``l2_in_graph`` says whether the λ term is part of the differentiated loss; by default it is
    exactly when λ is not the number 0. At λ = 0 the L2 term is only reported: keeping it out of
    the autograd graph saves its backward pass (a tensor λ, which may change, keeps it in).
    """
    if l2_in_graph is None:
        l2_in_graph = isinstance(lam, torch.Tensor) or lam != 0
    batch = x.shape[1 if members else 0]
    logits = logits.float()
    bce = _batch_sum(pixel_nll(logits, x), members) / batch
    kl_latents = kl_per_latent(mu.float(), logvar.float()).mean(dim=1 if members else 0)
    kl = kl_latents.sum(dim=-1)
    l2_logits = logits if l2_in_graph else logits.detach()
    l2 = _batch_sum((torch.sigmoid(l2_logits) - x).square(), members) / batch
    loss = bce + beta * kl
    if l2_in_graph:
        loss = loss + lam * l2
    return LossTerms(loss=loss, bce=bce, kl=kl, l2=l2, kl_per_latent=kl_latents)
