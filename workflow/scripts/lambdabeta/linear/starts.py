"""The restarts' random starting points, drawn from one seed.

Two start distributions (config ``linear.init``):

- ``authors`` (the authors' code): for the fixed point, B entries ~ U(0, 1) and Σ_W a random SPD
  matrix; for AdamW, A and B entries ~ N(0, 1) and Σ_Z, Σ_W random SPD matrices, both drawn as
  scikit-learn's ``make_spd_matrix`` draws them (``random_spd``).
- ``scaled_normal``: B ~ N(0, 1/n), A ~ N(0, 1/m), Σ_W = LLᵀ with L = I + 0.1·(strictly lower
  N(0, 1)), Σ_Z = Σ_Y, the same for both methods.

Where the optimum is unique (β > 1, or λ > 0) every start reaches it; at β = 1, λ = 0 the loss is
flat along a family of optima and the start decides which one a restart ends at.
"""

from __future__ import annotations

import math

import torch

from .instance import DTYPE, Instance
from .objective import Params, sym
from .settings import INITS, METHODS


def random_spd(size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random SPD matrices U(11ᵀ + diag(u))Vᵀ, where U S Vᵀ is the SVD of QᵀQ with Q
    entries ~ U(0, 1) (size × size) and u ~ U(0, 1)^size.

    This is scikit-learn's ``make_spd_matrix``, which the authors' code calls: its
    ``1.0 + np.diag(u)`` adds 1 to every entry, not only to the diagonal. Since U = V (QᵀQ is
    symmetric positive definite), the result is wwᵀ + U diag(u) Uᵀ with w = U1: one eigenvalue
    near ‖w‖² = size, the others in (0, 1).
    """
    q = torch.rand(count, size, size, generator=generator, dtype=DTYPE)
    u = torch.rand(count, size, generator=generator, dtype=DTYPE)
    left, _, right_t = torch.linalg.svd(q.mT @ q)
    middle = 1.0 + torch.diag_embed(u)
    # U = V up to rounding: symmetrise that rounding away
    return sym(left @ middle @ right_t)


def scaled_normal_starts(instance: Instance, m: int, restarts: int, seed: int) -> Params:
    """B ~ N(0, 1/n), A ~ N(0, 1/m), Σ_W = LLᵀ with L = I + 0.1·(strictly lower N(0, 1)),
    Σ_Z = Σ_Y."""
    n = instance.n
    gen = torch.Generator().manual_seed(int(seed))
    b = torch.randn(restarts, m, n, generator=gen, dtype=DTYPE) / math.sqrt(n)
    a = torch.randn(restarts, n, m, generator=gen, dtype=DTYPE) / math.sqrt(m)
    lower = torch.tril(torch.randn(restarts, m, m, generator=gen, dtype=DTYPE), diagonal=-1)
    l_w = torch.eye(m, dtype=DTYPE) + 0.1 * lower
    sigma_y = torch.as_tensor(instance.sigma_y(), dtype=DTYPE).expand(restarts, n, n)
    return Params(a=a, b=b, sigma_z=sigma_y.clone(), sigma_w=l_w @ l_w.mT)


def authors_starts(instance: Instance, m: int, restarts: int, seed: int, method: str) -> Params:
    """The authors' starts of ``method``. The fixed point starts from its encoder (B, Σ_W) only:
    its A and Σ_Z are returned as the trivial decoder (0, Σ_Y) and never read."""
    n = instance.n
    gen = torch.Generator().manual_seed(int(seed))
    if method == "fixed_point":
        b = torch.rand(restarts, m, n, generator=gen, dtype=DTYPE)
        sigma_w = random_spd(m, restarts, gen)
        sigma_y = torch.as_tensor(instance.sigma_y(), dtype=DTYPE).expand(restarts, n, n)
        a = torch.zeros(restarts, n, m, dtype=DTYPE)
        return Params(a=a, b=b, sigma_z=sigma_y.clone(), sigma_w=sigma_w)
    if method == "adamw":
        a = torch.randn(restarts, n, m, generator=gen, dtype=DTYPE)
        b = torch.randn(restarts, m, n, generator=gen, dtype=DTYPE)
        sigma_z = random_spd(n, restarts, gen)
        return Params(a=a, b=b, sigma_z=sigma_z, sigma_w=random_spd(m, restarts, gen))
    raise ValueError(f"unknown linear method {method!r}: expected one of {METHODS}")


def initial_params(
    instance: Instance,
    m: int,
    restarts: int,
    seed: int,
    init: str = "scaled_normal",
    method: str = "fixed_point",
) -> Params:
    """Starting points of ``restarts`` restarts of ``method``, drawn from ``seed`` alone: the
    same restart index gets the same start at every grid point."""
    if init == "authors":
        return authors_starts(instance, m, restarts, seed, method)
    if init == "scaled_normal":
        return scaled_normal_starts(instance, m, restarts, seed)
    raise ValueError(f"unknown linear.init {init!r}: expected one of {INITS}")
