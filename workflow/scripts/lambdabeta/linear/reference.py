"""Reference solvers: one restart at a time, straight from the formulas.

They are what the batched solvers are checked against (tests) and timed against (benchmarks);
the pipeline never calls them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .instance import DTYPE, Instance
from .jobs import GradClip
from .objective import Params, decoder_optimum, encoder_optimum, loss, objective_terms
from .parameterization import LogCholesky, Parameterization, ProjectedCholesky


def fixed_point_reference(
    instance: Instance,
    b: torch.Tensor,
    sigma_w: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lemma 4.2 iterated with its textbook n × n formulas (``decoder_optimum`` then
    ``encoder_optimum``); what ``run_fixed_point`` is checked and timed against.
    Returns (B, Σ_W)."""
    for _ in range(iterations):
        a, sigma_z = decoder_optimum(instance, b, sigma_w)
        b, sigma_w = encoder_optimum(a, sigma_z, beta, lam)
    return b, sigma_w


def adamw_reference(
    instance: Instance,
    init: Params,
    beta: float,
    lam: float,
    steps: int,
    lr: float,
    weight_decay: float,
    grad_clip: GradClip,
    parameterization: Parameterization | None = None,
) -> Params:
    """``torch.optim.AdamW`` with autograd through ``objective_terms`` for one restart (a batch
    of one in ``init``), clipping with ``torch.nn.utils.clip_grad_norm_`` (over all parameters
    for one threshold, over (A, B) and the two covariance factors separately for a pair) and
    projecting the factors after each step; what ``run_adamw`` is checked and timed against.
    Returns the last iterate."""
    parameterization = parameterization or LogCholesky()
    leaves = [
        init.a.clone(),
        init.b.clone(),
        parameterization.raw_from_covariance(init.sigma_z),
        parameterization.raw_from_covariance(init.sigma_w),
    ]
    leaves = [t.requires_grad_() for t in leaves]
    optimizer = torch.optim.AdamW(leaves, lr=lr, weight_decay=weight_decay)
    beta_t, lam_t = torch.tensor([beta], dtype=DTYPE), torch.tensor([lam], dtype=DTYPE)
    if isinstance(grad_clip, tuple | list):
        clip_groups = [(leaves[:2], grad_clip[0]), (leaves[2:], grad_clip[1])]
    else:
        clip_groups = [(leaves, grad_clip)] if grad_clip else []

    def current() -> Params:
        sigma_z = parameterization.covariance(leaves[2])
        return Params(leaves[0], leaves[1], sigma_z, parameterization.covariance(leaves[3]))

    for _ in range(steps):
        optimizer.zero_grad()
        loss(objective_terms(instance, current()), beta_t, lam_t).sum().backward()
        for group, threshold in clip_groups:
            torch.nn.utils.clip_grad_norm_(group, threshold)
        optimizer.step()
        with torch.no_grad():
            parameterization.project_(leaves[2])
            parameterization.project_(leaves[3])
    with torch.no_grad():
        return current()


@dataclass(frozen=True)
class ProjectedCholeskyReference(ProjectedCholesky):
    """``ProjectedCholesky`` computing its gradients by the formulation through C_Z⁻¹: the
    baseline the faster formulation is checked and timed against."""

    def loss_and_gradients(self, *args, **kwargs):
        return self.reference_loss_and_gradients(*args, **kwargs)
