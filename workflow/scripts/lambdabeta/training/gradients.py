"""The forward and backward pass of a pack: every member's loss, the gradient of their sum.

``make_pack_gradients`` returns the function a training step calls: it draws each member's batch
from the device images, runs the members' forward passes (one after another in ``loop`` mode,
all at once through ``torch.func.vmap`` in ``vmap`` mode, see ``lambdabeta.training.layouts``),
computes each member's terms with ``lambdabeta.loss.lambda_beta_loss`` and adds the gradient of
the pack loss Σ_k loss_k to the weights.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence

import torch
from torch.func import functional_call, vmap

from ..loader import DeviceImages
from ..loss import lambda_beta_loss
from ..model import VAE
from .layouts import MemberWeights, PackWeights

PackGradients = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(indices K × B, noise K × B × m) → K × (4 + m) loss terms``, accumulating the gradients of
the pack loss into the weights (``make_pack_gradients``)."""


def make_pack_gradients(
    weights: PackWeights,
    data: DeviceImages,
    betas: Sequence[float],
    lams: Sequence[float | torch.Tensor],
    latent_dim: int,
    forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    wrap: Callable[[Callable], Callable] = lambda function: function,
) -> PackGradients:
    """The pack's forward-and-backward function ``(indices, noise) → K × (4 + m) loss terms``.

    ``weights`` are K VAEs with ``data.num_channels`` channels and ``latent_dim`` latents.
    ``indices`` (K × B) picks each member's images from ``data``; ``noise`` (K × B × m) is each
    member's reparameterisation noise; a member's λ may be a 0-d tensor on the device (an adaptive
    λ, read at every step, so one compiled step serves every value). The function adds the
    gradient of the pack loss
    ``Σ_k loss_k``, ``loss_k = bce_k + β_k·kl_k + λ_k·l2_k``, to the weights' ``.grad`` and
    returns the members' terms (detached, rows as ``LossTerms.rows``). The forward passes (not
    the losses) run inside ``forward_context()`` (e.g. an autocast); ``wrap`` (e.g.
    ``torch.compile``) is applied to the forward-and-loss functions, never to a backward pass.
    """
    if not len(betas) == len(lams) == len(weights):
        raise ValueError(f"{len(weights)} members, {len(betas)} β and {len(lams)} λ values")
    with torch.device("meta"):  # the modules only: their own weights are never used
        architecture = VAE(data.num_channels, latent_dim)
    arguments = (architecture, data, list(betas), list(lams), forward_context, wrap)
    if isinstance(weights, MemberWeights):
        return _loop_gradients(weights, *arguments)
    return _vmap_gradients(weights, *arguments)


def _loop_gradients(weights, architecture, data, betas, lams, forward_context, wrap):
    def member_loss(own, x, noise, beta, lam):
        with forward_context():
            logits, mu, logvar = functional_call(architecture, own, (x, noise))
        return lambda_beta_loss(logits, x, mu, logvar, beta, lam)

    # one function per member: a compiled one then specialises on its member's β and λ alone
    losses = [
        wrap(functools.partial(member_loss, beta=beta, lam=lam))
        for beta, lam in zip(betas, lams, strict=True)
    ]

    def pack_gradients(indices, noise):
        rows = []
        for k, (own, loss) in enumerate(zip(weights.members, losses, strict=True)):
            x = data.batch(indices[k])
            terms = loss(own, x, noise[k])
            # ∂(Σ_j loss_j)/∂(member k's weights) = ∂loss_k/∂(its weights): backpropagating each
            # loss on its own gives the pack loss's gradients and frees the member's activations
            # before the next member's forward pass
            terms.loss.backward()
            rows.append(terms.rows())
        return torch.stack(rows)

    return pack_gradients


def _vmap_gradients(weights, architecture, data, betas, lams, forward_context, wrap):
    if any(isinstance(value, torch.Tensor) for value in lams):
        raise ValueError(
            "an adaptive λ trains alone (a pack of one, loop mode), not in a vmap pack"
        )
    beta = torch.tensor(betas, device=data.device)
    lam = torch.tensor(lams, device=data.device)
    # members at λ = 0 only report L2; keep it out of the graph when no member needs it
    l2_in_graph = any(value != 0 for value in lams)

    def one_member(own, x, noise):
        return functional_call(architecture, own, (x, noise))

    forward = vmap(one_member)

    def pack_loss(stacked, x, noise):
        with forward_context():
            logits, mu, logvar = forward(stacked, x, noise)
        return lambda_beta_loss(
            logits, x, mu, logvar, beta, lam, members=True, l2_in_graph=l2_in_graph
        )

    pack_loss = wrap(pack_loss)

    def pack_gradients(indices, noise):
        count, batch = indices.shape
        x = data.batch(indices.reshape(-1)).unflatten(0, (count, batch))
        terms = pack_loss(weights.stacked, x, noise)
        terms.loss.sum().backward()
        return terms.rows()

    return pack_gradients
