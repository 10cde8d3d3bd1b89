"""The closed-form λβ-VAE objective of the linear-Gaussian model and its optimal blocks.

Encoder X = BY + W, W ~ N(0, Σ_W); decoder Ŷ = AX + Z, Z ~ N(0, Σ_Z); prior N(0, I_m). With
Σ_X = BΣ_YBᵀ + Σ_W and the residual covariance R = E[(Y − AX)(Y − AX)ᵀ] =
(I − AB)Σ_Y(I − AB)ᵀ + AΣ_WAᵀ, every term is a function of covariances (no sampling):

    NLL = ½[n log 2π + log|Σ_Z| + tr(Σ_Z⁻¹R)]
    KL  = ½[tr Σ_X − m − log|Σ_W|]
    L2  = tr R                       (the λ penalty is on the decoder MEAN: E‖Y − AX‖²)
    loss = NLL + β·KL + λ·L2

Only with L2 on the decoder mean do the stationarity conditions of Lemma 4.2 hold exactly: the
decoder update is the regression of Y on X (it minimises R in the Loewner order, so it is optimal
for NLL and L2 alike) and the encoder update is the exact minimiser over (B, Σ_W) given the
decoder, with M = (Σ_Z⁻¹ + 2λI)/β.

Every function works on a batch of independent problems: parameters carry a leading batch axis
(one entry per restart and grid point), β and λ are per-entry tensors. All arithmetic is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .instance import DTYPE, Instance, Operators


@dataclass
class Params:
    """A batch of VAE parameters: A (…, n, m), B (…, m, n), Σ_Z (…, n, n), Σ_W (…, m, m)."""

    a: torch.Tensor
    b: torch.Tensor
    sigma_z: torch.Tensor
    sigma_w: torch.Tensor

    def select(self, index: torch.Tensor | slice) -> Params:
        return Params(self.a[index], self.b[index], self.sigma_z[index], self.sigma_w[index])


def sym(x: torch.Tensor) -> torch.Tensor:
    """½(x + xᵀ) over the last two dimensions: removes rounding asymmetry."""
    return 0.5 * (x + x.mT)


def logdet_spd(x: torch.Tensor) -> torch.Tensor:
    """log|x| of symmetric positive definite matrices, 2 Σ log diag(chol(x))."""
    return 2.0 * torch.log(torch.diagonal(torch.linalg.cholesky(x), dim1=-2, dim2=-1)).sum(-1)


def frob2(x: torch.Tensor) -> torch.Tensor:
    """‖x‖²_F over the last two dimensions, without an elementwise temporary."""
    return torch.linalg.vector_norm(x, dim=(-2, -1)).square()


def objective_terms(instance: Instance, params: Params) -> dict[str, torch.Tensor]:
    """NLL, KL, L2 and Σ_X of each entry of a batch, in closed form.

    NLL = ½[n log 2π + log|Σ_Z| + tr(Σ_Z⁻¹R)],  KL = ½[tr Σ_X − m − log|Σ_W|],  L2 = tr R.
    """
    ops = Operators(instance)
    a, b, sigma_z, sigma_w = params.a, params.b, params.sigma_z, params.sigma_w
    n, m = a.shape[-2], a.shape[-1]
    eye_n = torch.eye(n, dtype=DTYPE)
    residual_map = eye_n - a @ b  # I − AB
    r = residual_map @ ops.sigma_y_times(residual_map.mT) + a @ sigma_w @ a.mT
    r = sym(r)
    sigma_x = sym(b @ ops.sigma_y_times(b.mT) + sigma_w)
    trace_term = torch.diagonal(torch.linalg.solve(sigma_z, r), dim1=-2, dim2=-1).sum(-1)
    nll = gaussian_nll(n, logdet_spd(sigma_z), trace_term)
    kl = latent_kl(torch.diagonal(sigma_x, dim1=-2, dim2=-1).sum(-1), m, logdet_spd(sigma_w))
    l2 = torch.diagonal(r, dim1=-2, dim2=-1).sum(-1)
    return {"nll": nll, "kl": kl, "l2": l2, "sigma_x": sigma_x}


def gaussian_nll(n: int, log_det_z: torch.Tensor, trace_precision_r: torch.Tensor) -> torch.Tensor:
    """NLL = ½[n log 2π + log|Σ_Z| + tr(Σ_Z⁻¹R)], from its log-determinant and trace."""
    return 0.5 * (n * math.log(2 * math.pi) + log_det_z + trace_precision_r)


def latent_kl(trace_sigma_x: torch.Tensor, m: int, log_det_w: torch.Tensor) -> torch.Tensor:
    """KL = ½[tr Σ_X − m − log|Σ_W|], from the trace of Σ_X and the log-determinant of Σ_W."""
    return 0.5 * (trace_sigma_x - m - log_det_w)


def total_loss(
    nll: torch.Tensor, kl: torch.Tensor, l2: torch.Tensor, beta: torch.Tensor, lam: torch.Tensor
) -> torch.Tensor:
    """loss = NLL + β·KL + λ·L2."""
    return nll + beta * kl + lam * l2


def loss(terms: dict[str, torch.Tensor], beta: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """loss = NLL + β·KL + λ·L2 of ``objective_terms``."""
    return total_loss(terms["nll"], terms["kl"], terms["l2"], beta, lam)


def decoder_optimum(
    instance: Instance, b: torch.Tensor, sigma_w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder of Lemmas 3.1 / 4.2 given the encoder, exactly as the lemmas write it:

        Σ_Z = (Σ_Y⁻¹ + BᵀΣ_W⁻¹B)⁻¹,   A = Σ_Z BᵀΣ_W⁻¹.

    These are the regression of Y on X = BY + W and its residual covariance, optimal for the NLL
    and for the L2 penalty alike. Returns (A, Σ_Z).
    """
    ops = Operators(instance)
    w_inv_b = torch.linalg.solve(sigma_w, b)  # Σ_W⁻¹B
    sigma_z = sym(torch.linalg.inv(ops.sigma_y_inv + b.mT @ w_inv_b))
    return sigma_z @ w_inv_b.mT, sigma_z


def encoder_optimum(
    a: torch.Tensor, sigma_z: torch.Tensor, beta: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder of Lemma 4.2 given the decoder, exactly as the lemma writes it:

        M = (Σ_Z⁻¹ + 2λI)/β,   Σ_W = (I + AᵀMA)⁻¹,   B = Σ_W AᵀM.

    This is the minimiser of the loss over (B, Σ_W) for a fixed decoder. Returns (B, Σ_W).
    """
    n, m = a.shape[-2], a.shape[-1]
    beta = beta.reshape(-1, 1, 1).to(DTYPE)
    lam = lam.reshape(-1, 1, 1).to(DTYPE)
    big_m = (torch.linalg.inv(sigma_z) + 2.0 * lam * torch.eye(n, dtype=DTYPE)) / beta
    at_m = a.mT @ big_m
    sigma_w = sym(torch.linalg.inv(torch.eye(m, dtype=DTYPE) + at_m @ a))
    return sigma_w @ at_m, sigma_w


def stationarity_residual(
    instance: Instance, params: Params, beta: torch.Tensor, lam: torch.Tensor
) -> torch.Tensor:
    """Relative residual of the four conditions of Lemma 4.2 at each entry.

    Each condition reads θ_k = F_k(θ) (A, Σ_Z from the decoder formulas, B, Σ_W from the encoder
    formulas, all evaluated at the current θ); the residual is ‖θ − F(θ)‖_F / ‖θ‖_F over the four
    blocks together, so a solution with B → 0 is judged on the scale of the whole parameter set.
    """
    a, b, sigma_z, sigma_w = params.a, params.b, params.sigma_z, params.sigma_w
    a_star, sigma_z_star = decoder_optimum(instance, b, sigma_w)
    b_star, sigma_w_star = encoder_optimum(a, sigma_z, beta, lam)
    diff = (
        frob2(a - a_star)
        + frob2(sigma_z - sigma_z_star)
        + frob2(b - b_star)
        + frob2(sigma_w - sigma_w_star)
    )
    size = frob2(a) + frob2(sigma_z) + frob2(b) + frob2(sigma_w)
    return torch.sqrt(diff / size)
