"""The linear-Gaussian λβ-VAE in closed form (paper §3-4, §5.1).

Data model: factors V ~ N(0, Σ_V) with Σ_V diagonal, observations Y = ΓV + noise,
Σ_Y = ΓΣ_VΓᵀ + σ²I_n. Encoder X = BY + W, W ~ N(0, Σ_W); decoder Ŷ = AX + Z, Z ~ N(0, Σ_Z);
prior N(0, I_m). With Σ_X = BΣ_YBᵀ + Σ_W and the residual covariance
R = E[(Y − AX)(Y − AX)ᵀ] = (I − AB)Σ_Y(I − AB)ᵀ + AΣ_WAᵀ, every term of the objective is a
function of covariances (no sampling):

    NLL = ½[n log 2π + log|Σ_Z| + tr(Σ_Z⁻¹R)]
    KL  = ½[tr Σ_X − m − log|Σ_W|]
    L2  = tr R                       (the λ penalty is on the decoder MEAN: E‖Y − AX‖²)
    loss = NLL + β·KL + λ·L2

Only with L2 on the decoder mean do the stationarity conditions of Lemma 4.2 hold exactly:
the decoder update is the regression of Y on X (it minimises R in the Loewner order, so it is
optimal for NLL and L2 alike) and the encoder update is the exact minimiser over (B, Σ_W) given
the decoder, with M = (Σ_Z⁻¹ + 2λI)/β. Fixed-point iteration is therefore block-coordinate
descent on the loss.

Every function works on a batch of independent problems: parameters carry a leading batch axis
(one entry per restart and grid point), β and λ are per-entry tensors. All arithmetic is float64.
Σ_Y = ΓΣ_VΓᵀ + σ²I is never formed inside the loops: products with it go through Γ (n × s), which
makes an iteration O(n·m² + n·m·s) per restart instead of O(n²·m).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

DTYPE = torch.float64
# AdamW's gradients are computed for this many entries at a time: their n × n temporaries then
# stay in the CPU cache, which makes a step of 1,250 entries at n = 100 2.5 times faster.
GRADIENT_BLOCK = 16


# --------------------------------------------------------------------------------------------
# The generative instance (Γ, Σ_V, σ²)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """A linear-Gaussian data model: Y = ΓV + noise with V ~ N(0, diag(factor_var))."""

    gamma: np.ndarray  # n × s mixing matrix Γ
    factor_var: np.ndarray  # s diagonal entries of Σ_V
    noise_var: float  # σ²

    def __post_init__(self) -> None:
        if self.gamma.ndim != 2:
            raise ValueError(f"Gamma must be an n × s matrix, got shape {self.gamma.shape}")
        if self.factor_var.shape != (self.gamma.shape[1],):
            raise ValueError(
                f"Sigma_V must have {self.gamma.shape[1]} diagonal entries to match Gamma "
                f"{self.gamma.shape}, got {self.factor_var.shape}"
            )
        if np.any(self.factor_var <= 0) or self.noise_var <= 0:
            raise ValueError("Sigma_V and the noise variance must be positive")

    @property
    def n(self) -> int:
        return int(self.gamma.shape[0])

    @property
    def s(self) -> int:
        return int(self.gamma.shape[1])

    def sigma_y(self) -> np.ndarray:
        """Σ_Y = ΓΣ_VΓᵀ + σ²I."""
        return (self.gamma * self.factor_var) @ self.gamma.T + self.noise_var * np.eye(self.n)


def random_instance(
    n: int, s: int, noise_var: float, factor_var_range: Sequence[float], seed: int
) -> Instance:
    """Γ ~ N(0, 1)^{n×s}, Σ_V = diag(U(low, high)^s), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    gamma = rng.standard_normal((n, s))
    factor_var = rng.uniform(factor_var_range[0], factor_var_range[1], size=s)
    return Instance(gamma=gamma, factor_var=factor_var, noise_var=float(noise_var))


def load_instance(path: str, noise_var: float) -> Instance:
    """Read Γ (``Gamma``, n × s) and Σ_V (``Sigma_V``, s × s diagonal) from an ``.npz`` file."""
    with np.load(path) as data:
        missing = {"Gamma", "Sigma_V"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {data.files})")
        gamma = np.asarray(data["Gamma"], dtype=np.float64)
        sigma_v = np.asarray(data["Sigma_V"], dtype=np.float64)
    if sigma_v.ndim != 2 or sigma_v.shape[0] != sigma_v.shape[1]:
        raise ValueError(f"{path}: Sigma_V must be square, got shape {sigma_v.shape}")
    if not np.allclose(sigma_v, np.diag(np.diag(sigma_v))):
        raise ValueError(f"{path}: Sigma_V must be diagonal (independent factors)")
    return Instance(gamma=gamma, factor_var=np.diag(sigma_v).copy(), noise_var=float(noise_var))


def save_instance(path: str, instance: Instance) -> None:
    """Write an instance in the same format ``load_instance`` reads."""
    np.savez(
        path,
        Gamma=instance.gamma,
        Sigma_V=np.diag(instance.factor_var),
        noise_var=np.float64(instance.noise_var),
    )


class _Operators:
    """Torch views of an instance, with the products the loops need."""

    def __init__(self, instance: Instance):
        self.n, self.s = instance.n, instance.s
        self.gamma = torch.as_tensor(instance.gamma, dtype=DTYPE)
        self.factor_var = torch.as_tensor(instance.factor_var, dtype=DTYPE)
        self.noise_var = float(instance.noise_var)
        # G = ΓΣ_V^{1/2}, so that Σ_Y = GGᵀ + σ²I
        self.g = self.gamma * self.factor_var.sqrt()
        self.sigma_y = torch.as_tensor(instance.sigma_y(), dtype=DTYPE)
        self.sigma_y_inv = torch.linalg.inv(self.sigma_y)

    def sigma_y_times(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_Y x for x of shape (…, n, k), through Γ: G(Gᵀx) + σ²x."""
        return self.g @ (self.g.T @ x) + self.noise_var * x


# --------------------------------------------------------------------------------------------
# Parameters and the closed-form objective
# --------------------------------------------------------------------------------------------


@dataclass
class Params:
    """A batch of VAE parameters: A (…, n, m), B (…, m, n), Σ_Z (…, n, n), Σ_W (…, m, m)."""

    a: torch.Tensor
    b: torch.Tensor
    sigma_z: torch.Tensor
    sigma_w: torch.Tensor

    def select(self, index: torch.Tensor) -> Params:
        return Params(self.a[index], self.b[index], self.sigma_z[index], self.sigma_w[index])


def _sym(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x + x.mT)


def _logdet_spd(x: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.log(torch.diagonal(torch.linalg.cholesky(x), dim1=-2, dim2=-1)).sum(-1)


def _frob2(x: torch.Tensor) -> torch.Tensor:
    """‖x‖²_F over the last two dimensions, without an elementwise temporary."""
    return torch.linalg.vector_norm(x, dim=(-2, -1)).square()


def objective_terms(instance: Instance, params: Params) -> dict[str, torch.Tensor]:
    """NLL, KL, L2 and the sigma_x diagonal of each entry of a batch, in closed form.

    NLL = ½[n log 2π + log|Σ_Z| + tr(Σ_Z⁻¹R)],  KL = ½[tr Σ_X − m − log|Σ_W|],  L2 = tr R.
    """
    ops = _Operators(instance)
    a, b, sigma_z, sigma_w = params.a, params.b, params.sigma_z, params.sigma_w
    n, m = a.shape[-2], a.shape[-1]
    eye_n = torch.eye(n, dtype=DTYPE)
    residual_map = eye_n - a @ b  # I − AB
    r = residual_map @ ops.sigma_y_times(residual_map.mT) + a @ sigma_w @ a.mT
    r = _sym(r)
    sigma_x = _sym(b @ ops.sigma_y_times(b.mT) + sigma_w)
    trace_term = torch.diagonal(torch.linalg.solve(sigma_z, r), dim1=-2, dim2=-1).sum(-1)
    nll = 0.5 * (n * math.log(2 * math.pi) + _logdet_spd(sigma_z) + trace_term)
    kl = 0.5 * (torch.diagonal(sigma_x, dim1=-2, dim2=-1).sum(-1) - m - _logdet_spd(sigma_w))
    l2 = torch.diagonal(r, dim1=-2, dim2=-1).sum(-1)
    return {"nll": nll, "kl": kl, "l2": l2, "sigma_x": sigma_x}


def loss(terms: dict[str, torch.Tensor], beta: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """loss = NLL + β·KL + λ·L2."""
    return terms["nll"] + beta * terms["kl"] + lam * terms["l2"]


# --------------------------------------------------------------------------------------------
# Fixed-point iteration (Lemmas 3.1 and 4.2)
# --------------------------------------------------------------------------------------------


def decoder_optimum(
    instance: Instance, b: torch.Tensor, sigma_w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder of Lemmas 3.1 / 4.2 given the encoder, exactly as the lemmas write it:

        Σ_Z = (Σ_Y⁻¹ + BᵀΣ_W⁻¹B)⁻¹,   A = Σ_Z BᵀΣ_W⁻¹.

    These are the regression of Y on X = BY + W and its residual covariance, optimal for the NLL
    and for the L2 penalty alike. Returns (A, Σ_Z).
    """
    ops = _Operators(instance)
    w_inv_b = torch.linalg.solve(sigma_w, b)  # Σ_W⁻¹B
    sigma_z = _sym(torch.linalg.inv(ops.sigma_y_inv + b.mT @ w_inv_b))
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
    sigma_w = _sym(torch.linalg.inv(torch.eye(m, dtype=DTYPE) + at_m @ a))
    return sigma_w @ at_m, sigma_w


@dataclass
class FixedPointResult:
    params: Params
    iterations: torch.Tensor  # iterations run per entry
    converged: torch.Tensor  # bool per entry
    b_norm_trace: torch.Tensor | None  # (entries, iterations + 1) spectral norms, if traced


def _invariant_basis(ops: _Operators, b0: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis U (…, n, k) of span(rows of B_0) + span(columns of Γ).

    The encoder update is B' = Σ_W'(Σ_W⁻¹B + 2λAᵀ)/β with Aᵀ = Σ_X⁻¹B(ΓΣ_VΓᵀ + σ²I), so
    B' = PB + QΓᵀ for some P, Q: the rows of every iterate stay in this subspace of dimension
    k ≤ m + s, and the iteration can run on the coordinates C = BU (m × k) instead of B (m × n).
    """
    n = ops.n
    spanning = torch.cat([b0.mT, ops.gamma.expand(b0.shape[0], n, ops.s)], dim=-1)
    if spanning.shape[-1] >= n:
        return torch.eye(n, dtype=DTYPE).expand(b0.shape[0], n, n)
    basis, _ = torch.linalg.qr(spanning)
    return basis


def fixed_point(
    instance: Instance,
    b0: torch.Tensor,
    sigma_w0: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
    max_iter: int,
    tol: float,
    trace: bool = False,
) -> FixedPointResult:
    """Alternate the decoder and encoder updates of Lemma 4.2 until the encoder stops moving.

    One iteration computes the decoder from the encoder (A = Σ_YBᵀΣ_X⁻¹) and then the encoder
    from that decoder (Σ_W = (I + AᵀMA)⁻¹, B = Σ_W AᵀM, M = (Σ_Z⁻¹ + 2λI)/β). At the decoder
    optimum Σ_Z⁻¹A = BᵀΣ_W⁻¹ (from A = Σ_Z BᵀΣ_W⁻¹), so Σ_Z is never formed in the loop, and the
    whole iteration runs in the (m + s)-dimensional subspace that holds the rows of B (see
    ``_invariant_basis``): its cost does not grow with n.

    An entry has converged when max(‖B_{t+1} − B_t‖_F, ‖Σ_W,t+1 − Σ_W,t‖_F) < ``tol``; it then
    leaves the batch, so an iteration gets cheaper as entries converge. With ``trace=True`` every
    entry runs all ``max_iter`` iterations and ‖B_t‖₂ is recorded (for the contraction figure);
    ``tol`` then only decides what is reported as converged.
    """
    ops = _Operators(instance)
    entries, m = b0.shape[0], b0.shape[1]
    beta = beta.reshape(-1, 1, 1).to(DTYPE)
    lam = lam.reshape(-1, 1, 1).to(DTYPE)
    basis = _invariant_basis(ops, b0.to(DTYPE))
    g_hat = basis.mT @ ops.g  # Ĝ = UᵀG, k × s
    k = basis.shape[-1]
    sigma_y_hat = g_hat @ g_hat.mT + ops.noise_var * torch.eye(k, dtype=DTYPE)  # UᵀΣ_YU
    eye_m = torch.eye(m, dtype=DTYPE)

    c = b0.to(DTYPE) @ basis  # coordinates of B: B = CUᵀ
    sigma_w = sigma_w0.to(DTYPE).clone()
    precision_w = torch.linalg.inv(sigma_w)
    final_c, final_w = c.clone(), sigma_w.clone()
    iterations = torch.full((entries,), max_iter, dtype=torch.long)
    converged = torch.zeros(entries, dtype=torch.bool)
    active = torch.arange(entries)
    norms = [torch.linalg.matrix_norm(c, ord=2)] if trace else None

    for it in range(1, max_iter + 1):
        # decoder: A = UÂ with Â = Σ̂_Y Cᵀ Σ_X⁻¹
        sigma_y_ct = sigma_y_hat @ c.mT
        sigma_x = _sym(c @ sigma_y_ct + sigma_w)
        a_hat = sigma_y_ct @ torch.cholesky_inverse(torch.linalg.cholesky(sigma_x))
        # encoder: AᵀM = (Σ_W⁻¹C + 2λÂᵀ)Uᵀ/β, AᵀMA = (Σ_W⁻¹CÂ + 2λÂᵀÂ)/β
        at_m = (precision_w @ c + 2.0 * lam * a_hat.mT) / beta
        precision_w = _sym(eye_m + at_m @ a_hat)
        w_new = torch.cholesky_inverse(torch.linalg.cholesky(precision_w))
        c_new = w_new @ at_m
        change = torch.maximum(
            torch.linalg.matrix_norm(c_new - c), torch.linalg.matrix_norm(w_new - sigma_w)
        )
        c, sigma_w = c_new, w_new
        done = change < tol
        if trace:
            norms.append(torch.linalg.matrix_norm(c, ord=2))
            iterations[done & ~converged] = it
            converged |= done
            continue
        if done.any():
            finished = active[done]
            final_c[finished], final_w[finished] = c[done], sigma_w[done]
            iterations[finished], converged[finished] = it, True
            keep = ~done
            active, c, sigma_w, precision_w = (
                active[keep],
                c[keep],
                sigma_w[keep],
                precision_w[keep],
            )
            beta, lam, sigma_y_hat = beta[keep], lam[keep], sigma_y_hat[keep]
            if active.numel() == 0:
                break
    if trace:
        final_c, final_w = c, sigma_w
    else:
        final_c[active], final_w[active] = c, sigma_w

    b = final_c @ basis.mT
    a, sigma_z = decoder_optimum(instance, b, final_w)
    return FixedPointResult(
        params=Params(a=a, b=b, sigma_z=sigma_z, sigma_w=final_w),
        iterations=iterations,
        converged=converged,
        b_norm_trace=torch.stack(norms, dim=1) if trace else None,
    )


# --------------------------------------------------------------------------------------------
# AdamW on (A, B, Cholesky factors of Σ_Z and Σ_W)
# --------------------------------------------------------------------------------------------


def _cholesky_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """Lower-triangular L with a positive diagonal: strict lower part of ``raw`` + exp(diag)."""
    chol = torch.tril(raw, diagonal=-1)
    torch.diagonal(chol, 0, -2, -1).copy_(torch.exp(torch.diagonal(raw, 0, -2, -1)))
    return chol


def _raw_from_cholesky(chol: torch.Tensor) -> torch.Tensor:
    return torch.tril(chol, diagonal=-1) + torch.diag_embed(
        torch.log(torch.diagonal(chol, 0, -2, -1))
    )


def cholesky_loss_and_gradients(
    ops: _Operators,
    a: torch.Tensor,
    b: torch.Tensor,
    raw_z: torch.Tensor,
    raw_w: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss of each entry and its gradients under Σ_Z = L_ZL_Zᵀ, Σ_W = L_WL_Wᵀ, in closed form.

    With T = Σ_YBᵀ, Σ_X = BT + Σ_W, R = Σ_Y − ATᵀ − TAᵀ + AΣ_XAᵀ, F = Σ_Z⁻¹ = L_Z⁻ᵀL_Z⁻¹ and
    P = F + 2λI (the loss is ½ log|Σ_Z| + ½ tr(PR) + β·KL + const):

        ∂/∂A   = P(AΣ_X − T)
        ∂/∂B   = (AᵀPA + βI)Tᵀ − AᵀPΣ_Y
        ∂/∂L_W = (AᵀPA + βI)L_W − βL_W⁻ᵀ
        ∂/∂L_Z = L_Z⁻ᵀ(I − L_Z⁻¹RL_Z⁻ᵀ)

    and the chain rule through exp on the diagonals of L_Z and L_W. Σ_Y = GGᵀ + σ²I (G = ΓΣ_V^½)
    and R = σ²I + (terms of rank ≤ s + 2m) keep everything but one triangular inverse and two
    n × n products per entry at O(n²(m + s)). Gradients are with respect to (A, B, raw_z, raw_w).
    """
    n, m = a.shape[-2], a.shape[-1]
    beta = beta.reshape(-1, 1, 1)
    lam = lam.reshape(-1, 1, 1)
    l_z, l_w = _cholesky_from_raw(raw_z), _cholesky_from_raw(raw_w)
    eye_n = torch.eye(n, dtype=DTYPE)
    eye_m = torch.eye(m, dtype=DTYPE)
    l_z_inv = torch.linalg.solve_triangular(l_z, eye_n.expand_as(l_z), upper=False)
    l_w_inv = torch.linalg.solve_triangular(l_w, eye_m.expand_as(l_w), upper=False)
    sigma_w = l_w @ l_w.mT
    bg = b @ ops.g  # m × s
    t = ops.g @ bg.mT + ops.noise_var * b.mT  # T = Σ_YBᵀ, n × m
    sigma_x = b @ t + sigma_w
    # L_Z⁻¹ applied to A, T and G at once
    k_a, k_t, k_g = torch.split(
        l_z_inv @ torch.cat([a, t, ops.g.expand(a.shape[0], -1, -1)], -1), [m, m, ops.s], dim=-1
    )
    k_a_sigma_x = k_a @ sigma_x
    a_sigma_x = a @ sigma_x
    trace_fr = (
        ops.noise_var * _frob2(l_z_inv)
        + _frob2(k_g)
        - 2.0 * (k_a * k_t).sum((-2, -1))
        + (k_a_sigma_x * k_a).sum((-2, -1))
    )
    trace_r = (
        ops.noise_var * n
        + _frob2(ops.g)
        - 2.0 * (a * t).sum((-2, -1))
        + (a_sigma_x * a).sum((-2, -1))
    )
    log_det_z = 2.0 * torch.diagonal(raw_z, 0, -2, -1).sum(-1)
    log_det_w = 2.0 * torch.diagonal(raw_w, 0, -2, -1).sum(-1)
    nll = 0.5 * (n * math.log(2 * math.pi) + log_det_z + trace_fr)
    kl = 0.5 * (torch.diagonal(sigma_x, 0, -2, -1).sum(-1) - m - log_det_w)
    loss_value = nll + beta.reshape(-1) * kl + lam.reshape(-1) * trace_r

    # P(AΣ_X − T) = L_Z⁻ᵀ(K_aΣ_X − K_t) + 2λ(AΣ_X − T); PA likewise
    f_residual, f_a = torch.split(
        l_z_inv.mT @ torch.cat([k_a_sigma_x - k_t, k_a], -1), [m, m], dim=-1
    )
    grad_a = f_residual + 2.0 * lam * (a_sigma_x - t)
    p_a = f_a + 2.0 * lam * a
    a_p_a = k_a.mT @ k_a + 2.0 * lam * (a.mT @ a)
    sigma_y_p_a = ops.sigma_y_times(p_a)
    grad_b = (a_p_a + beta * eye_m) @ t.mT - sigma_y_p_a.mT
    grad_l_w = (a_p_a + beta * eye_m) @ l_w - beta * l_w_inv.mT
    # M = L_Z⁻¹RL_Z⁻ᵀ = σ²L_Z⁻¹L_Z⁻ᵀ + K_gK_gᵀ − K_aK_tᵀ − K_tK_aᵀ + K_aΣ_XK_aᵀ and
    # ∂/∂L_Z = L_Z⁻ᵀ(I − M); I − M is accumulated in place in one n × n buffer: beside the
    # triangular inverse and the two n × n products, copies of n × n temporaries cost most
    identity_minus_m = torch.bmm(l_z_inv, l_z_inv.mT).baddbmm_(
        torch.cat([k_g, k_a_sigma_x - k_t, -k_a], -1),
        torch.cat([k_g, k_a, k_t], -1).mT,
        beta=-ops.noise_var,
        alpha=-1.0,
    )
    torch.diagonal(identity_minus_m, 0, -2, -1).add_(1.0)
    # M is symmetric, so L_Z⁻ᵀ(I − M) = ((I − M)L_Z⁻¹)ᵀ, a product without a transposed operand
    grad_l_z = torch.bmm(identity_minus_m, l_z_inv).mT
    grads = [grad_a, grad_b, _raw_gradient(grad_l_z, l_z), _raw_gradient(grad_l_w, l_w)]
    return loss_value, grads


def _raw_gradient(grad_chol: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """Chain rule from L to its raw parameters (in place): strict lower part as is, the
    diagonal times exp(raw) = diag(L); the upper triangle, which L ignores, gets zero."""
    grad = grad_chol.tril_()
    torch.diagonal(grad, 0, -2, -1).mul_(torch.diagonal(chol, 0, -2, -1))
    return grad


@dataclass
class AdamWResult:
    params: Params
    iterations: torch.Tensor
    converged: torch.Tensor


def adamw(
    instance: Instance,
    init: Params,
    beta: torch.Tensor,
    lam: torch.Tensor,
    steps: int,
    lr: float,
    weight_decay: float,
    grad_clip: float | None,
    tol: float = 0.0,
    check_every: int = 500,
) -> AdamWResult:
    """AdamW (decoupled weight decay) on (A, B, raw L_Z, raw L_W) of every entry at once.

    Adam is elementwise, so one update of the stacked parameters is exactly one update of each
    entry; gradient clipping rescales each entry's gradient to norm ≤ ``grad_clip`` on its own.
    Gradients are the closed forms of ``cholesky_loss_and_gradients`` (no autograd graph), and
    the update is PyTorch's fused AdamW kernel. With ``tol > 0`` an entry stops (and leaves the
    batch) once its loss has changed by less than ``tol·(1 + |loss|)`` over the last
    ``check_every`` steps; ``tol = 0`` runs every step.
    """
    ops = _Operators(instance)
    entries = init.a.shape[0]
    beta = beta.reshape(-1).to(DTYPE)
    lam = lam.reshape(-1).to(DTYPE)
    tensors = [
        init.a.to(DTYPE).clone(),
        init.b.to(DTYPE).clone(),
        _raw_from_cholesky(torch.linalg.cholesky(init.sigma_z.to(DTYPE))),
        _raw_from_cholesky(torch.linalg.cholesky(init.sigma_w.to(DTYPE))),
    ]
    optimizer = _adamw_optimizer(tensors, lr, weight_decay)
    final = [t.clone() for t in tensors]
    iterations = torch.full((entries,), steps, dtype=torch.long)
    converged = torch.zeros(entries, dtype=torch.bool)
    active = torch.arange(entries)
    last_loss = None

    for step in range(1, steps + 1):
        losses, grads = _blockwise_loss_and_gradients(ops, tensors, beta, lam)
        if grad_clip:
            norm = torch.sqrt(sum(_frob2(g) for g in grads))
            scale = torch.clamp(grad_clip / (norm + 1e-12), max=1.0).reshape(-1, 1, 1)
            for g in grads:
                g.mul_(scale)
        for t, g in zip(tensors, grads, strict=True):
            t.grad = g
        optimizer.step()
        if tol > 0 and step % check_every == 0:
            if last_loss is not None:
                done = (losses - last_loss).abs() < tol * (1.0 + losses.abs())
                if done.any():
                    finished = active[done]
                    for f, t in zip(final, tensors, strict=True):
                        f[finished] = t[done]
                    iterations[finished], converged[finished] = step, True
                    keep = ~done
                    active, beta, lam, losses = active[keep], beta[keep], lam[keep], losses[keep]
                    if active.numel() == 0:
                        break
                    tensors, optimizer = _compact_adamw(optimizer, tensors, keep, lr, weight_decay)
            last_loss = losses
    with torch.no_grad():
        for f, t in zip(final, tensors, strict=True):
            f[active] = t
    l_z, l_w = _cholesky_from_raw(final[2]), _cholesky_from_raw(final[3])
    params = Params(a=final[0], b=final[1], sigma_z=l_z @ l_z.mT, sigma_w=l_w @ l_w.mT)
    return AdamWResult(params=params, iterations=iterations, converged=converged)


def _blockwise_loss_and_gradients(
    ops: _Operators, tensors: list[torch.Tensor], beta: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``cholesky_loss_and_gradients`` over blocks of ``GRADIENT_BLOCK`` entries at a time."""
    losses = torch.empty(len(beta), dtype=DTYPE)
    grads = [torch.empty_like(t) for t in tensors]
    for start in range(0, len(beta), GRADIENT_BLOCK):
        block = slice(start, start + GRADIENT_BLOCK)
        value, block_grads = cholesky_loss_and_gradients(
            ops, *(t[block] for t in tensors), beta[block], lam[block]
        )
        losses[block] = value
        for full, part in zip(grads, block_grads, strict=True):
            full[block] = part
    return losses, grads


def _adamw_optimizer(tensors: list[torch.Tensor], lr: float, weight_decay: float):
    return torch.optim.AdamW(tensors, lr=lr, weight_decay=weight_decay, fused=True)


def _compact_adamw(
    optimizer: torch.optim.AdamW,
    tensors: list[torch.Tensor],
    keep: torch.Tensor,
    lr: float,
    weight_decay: float,
) -> tuple[list[torch.Tensor], torch.optim.AdamW]:
    """Drop finished entries from the parameters and from AdamW's moment estimates."""
    kept = [t.detach()[keep] for t in tensors]
    compacted = _adamw_optimizer(kept, lr, weight_decay)
    for old, new in zip(tensors, kept, strict=True):
        state = optimizer.state[old]
        compacted.state[new] = {
            "step": state["step"].clone(),
            "exp_avg": state["exp_avg"][keep],
            "exp_avg_sq": state["exp_avg_sq"][keep],
        }
    return kept, compacted


# --------------------------------------------------------------------------------------------
# Stationarity, coupling and metrics from the joint covariance of (X, V)
# --------------------------------------------------------------------------------------------


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
        _frob2(a - a_star)
        + _frob2(sigma_z - sigma_z_star)
        + _frob2(b - b_star)
        + _frob2(sigma_w - sigma_w_star)
    )
    size = _frob2(a) + _frob2(sigma_z) + _frob2(b) + _frob2(sigma_w)
    return torch.sqrt(diff / size)


def squared_correlations(instance: Instance, params: Params) -> np.ndarray:
    """S_ij = (Σ_XV)_ij² / ((Σ_X)_ii (Σ_V)_jj) with Σ_XV = BΓΣ_V; shape (…, m, s).

    S_ij is the squared correlation of latent X_i with factor V_j.
    """
    ops = _Operators(instance)
    b, sigma_w = params.b, params.sigma_w
    sigma_x_diag = torch.diagonal(b @ ops.sigma_y_times(b.mT) + sigma_w, 0, -2, -1)
    cross = (b @ ops.gamma) * ops.factor_var  # Σ_XV = BΓΣ_V
    s = cross**2 / (sigma_x_diag.unsqueeze(-1) * ops.factor_var)
    return s.numpy()


def sap_from_correlations(s: np.ndarray) -> np.ndarray:
    """SAP = mean_j (largest S_·j − second largest S_·j), for S of shape (…, m, s)."""
    top_two = np.sort(s, axis=-2)[..., -2:, :]
    return (top_two[..., 1, :] - top_two[..., 0, :]).mean(axis=-1)


def mutual_information_from_correlations(s: np.ndarray) -> np.ndarray:
    """I(X_i; V_j) = −½ log(1 − S_ij) for jointly Gaussian scalars, in nats."""
    return -0.5 * np.log1p(-np.clip(s, 0.0, 1.0 - 1e-15))


def im_from_mutual_information(mi: np.ndarray) -> np.ndarray:
    """I_m = max over one-to-one latent↔factor assignments of Σ I(X_i; V_j) (Hungarian)."""
    flat = mi.reshape(-1, *mi.shape[-2:])
    scores = np.empty(flat.shape[0])
    for k, matrix in enumerate(flat):
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        scores[k] = matrix[rows, cols].sum()
    return scores.reshape(mi.shape[:-2])


# --------------------------------------------------------------------------------------------
# A whole (β, λ) grid for one method
# --------------------------------------------------------------------------------------------


def initial_params(instance: Instance, m: int, restarts: int, seed: int) -> Params:
    """Random starting points, one per restart, drawn from ``seed`` alone.

    B ~ N(0, 1/n), A ~ N(0, 1/m), Σ_W = LLᵀ with L = I + 0.1·(strictly lower N(0, 1)),
    Σ_Z = Σ_Y. The same restart index gets the same start for every method and grid point.
    """
    n = instance.n
    gen = torch.Generator().manual_seed(int(seed))
    b = torch.randn(restarts, m, n, generator=gen, dtype=DTYPE) / math.sqrt(n)
    a = torch.randn(restarts, n, m, generator=gen, dtype=DTYPE) / math.sqrt(m)
    lower = torch.tril(torch.randn(restarts, m, m, generator=gen, dtype=DTYPE), diagonal=-1)
    l_w = torch.eye(m, dtype=DTYPE) + 0.1 * lower
    sigma_y = torch.as_tensor(instance.sigma_y(), dtype=DTYPE).expand(restarts, n, n)
    return Params(a=a, b=b, sigma_z=sigma_y.clone(), sigma_w=l_w @ l_w.mT)


@dataclass
class GridEntries:
    """Every (β, λ, restart) of a grid as one batch: its table, β and λ per entry, and starts."""

    table: pd.DataFrame  # columns beta, lambda, restart; one row per entry
    beta: torch.Tensor
    lam: torch.Tensor
    init: Params


def grid_entries(
    instance: Instance,
    m: int,
    betas: Sequence[float],
    lambdas: Sequence[float],
    restarts: int,
    seed: int,
) -> GridEntries:
    """The batch of a (β, λ) grid with ``restarts`` starts each (restart k starts alike for all)."""
    index = pd.MultiIndex.from_product(
        [list(map(float, betas)), list(map(float, lambdas)), range(restarts)],
        names=["beta", "lambda", "restart"],
    )
    table = index.to_frame(index=False)
    restart = torch.as_tensor(table["restart"].to_numpy(copy=True))
    return GridEntries(
        table=table,
        beta=torch.as_tensor(table["beta"].to_numpy(copy=True), dtype=DTYPE),
        lam=torch.as_tensor(table["lambda"].to_numpy(copy=True), dtype=DTYPE),
        init=initial_params(instance, m, restarts, seed).select(restart),
    )


def metrics_table(
    instance: Instance, params: Params, beta: torch.Tensor, lam: torch.Tensor
) -> pd.DataFrame:
    """Objective terms, coupling metrics and stationarity residual of each entry."""
    terms = objective_terms(instance, params)
    s = squared_correlations(instance, params)
    mi = mutual_information_from_correlations(s)
    return pd.DataFrame(
        {
            "nll": terms["nll"].numpy(),
            "kl": terms["kl"].numpy(),
            "l2": terms["l2"].numpy(),
            "loss": loss(terms, beta, lam).numpy(),
            "sap": sap_from_correlations(s),
            "im": im_from_mutual_information(mi),
            "b_norm": torch.linalg.matrix_norm(params.b, ord=2).numpy(),
            "residual": stationarity_residual(instance, params, beta, lam).numpy(),
        }
    )


def run_grid(
    instance: Instance,
    method: str,
    m: int,
    betas: Sequence[float],
    lambdas: Sequence[float],
    restarts: int,
    seed: int,
    fixed_point_settings: dict,
    adamw_settings: dict,
) -> pd.DataFrame:
    """Every (β, λ, restart) of one method as one batched computation; one row per entry."""
    grid = grid_entries(instance, m, betas, lambdas, restarts, seed)
    beta, lam, init = grid.beta, grid.lam, grid.init
    if method == "fixed_point":
        result = fixed_point(
            instance,
            init.b,
            init.sigma_w,
            beta,
            lam,
            max_iter=int(fixed_point_settings["max_iter"]),
            tol=float(fixed_point_settings["tol"]),
        )
    elif method == "adamw":
        result = adamw(
            instance,
            init,
            beta,
            lam,
            steps=int(adamw_settings["steps"]),
            lr=float(adamw_settings["lr"]),
            weight_decay=float(adamw_settings["weight_decay"]),
            grad_clip=adamw_settings.get("grad_clip"),
            tol=float(adamw_settings.get("tol", 0.0)),
            check_every=int(adamw_settings.get("check_every", 500)),
        )
    else:
        raise ValueError(f"unknown linear method {method!r}: expected 'fixed_point' or 'adamw'")
    table = pd.concat([grid.table, metrics_table(instance, result.params, beta, lam)], axis=1)
    table.insert(0, "method", method)
    table["iterations"] = result.iterations.numpy()
    table["converged"] = result.converged.numpy()
    return table


def contraction_traces(
    instance: Instance,
    m: int,
    betas: Sequence[float],
    lambdas: Sequence[float],
    restarts: int,
    iterations: int,
    seed: int,
) -> pd.DataFrame:
    """‖B_t‖₂ along ``iterations`` fixed-point steps for each (β, λ, restart): a long table."""
    grid = grid_entries(instance, m, betas, lambdas, restarts, seed)
    result = fixed_point(
        instance,
        grid.init.b,
        grid.init.sigma_w,
        grid.beta,
        grid.lam,
        max_iter=iterations,
        tol=0.0,
        trace=True,
    )
    norms = result.b_norm_trace.numpy()
    steps = np.arange(norms.shape[1])
    long = grid.table.loc[grid.table.index.repeat(len(steps))].reset_index(drop=True)
    long["iteration"] = np.tile(steps, len(grid.table))
    long["b_norm"] = norms.reshape(-1)
    return long


def derived_seed(*keys: int) -> int:
    """A 32-bit seed derived from integer keys (e.g. the config seed and the dimensions)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def starts_seed(seed: int, n: int, m: int, s: int) -> int:
    """The seed of the restarts' starting points for the instance of dims (n, m, s); the
    instance itself is drawn from another stream of the same config seed (``make_instance``)."""
    return derived_seed(seed, n, m, s, 1)


def make_instance(
    n: int,
    m: int,
    s: int,
    noise_var: float,
    factor_var_range: Sequence[float],
    seed: int,
    instance_file: str | None = None,
) -> Instance:
    """The instance for one `linear.dims` entry: read from ``instance_file`` or drawn at random."""
    if instance_file is None:
        return random_instance(n, s, noise_var, factor_var_range, derived_seed(seed, n, m, s, 0))
    instance = load_instance(instance_file, noise_var)
    if (instance.n, instance.s) != (n, s):
        raise ValueError(
            f"{instance_file}: Gamma is {instance.n} × {instance.s} but linear.dims asks for "
            f"n = {n}, s = {s}"
        )
    return instance


# --------------------------------------------------------------------------------------------
# Reference implementations: one restart at a time, straight from the formulas
# --------------------------------------------------------------------------------------------


def fixed_point_reference(
    instance: Instance,
    b: torch.Tensor,
    sigma_w: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lemma 4.2 iterated with its textbook n × n formulas (``decoder_optimum`` then
    ``encoder_optimum``); what ``fixed_point`` is checked and timed against. Returns (B, Σ_W)."""
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
    grad_clip: float | None,
) -> Params:
    """``torch.optim.AdamW`` with autograd through ``objective_terms`` for one restart (a batch
    of one in ``init``); what ``adamw`` is checked and timed against."""
    leaves = [
        init.a.clone(),
        init.b.clone(),
        _raw_from_cholesky(torch.linalg.cholesky(init.sigma_z)),
        _raw_from_cholesky(torch.linalg.cholesky(init.sigma_w)),
    ]
    leaves = [t.requires_grad_() for t in leaves]
    optimizer = torch.optim.AdamW(leaves, lr=lr, weight_decay=weight_decay)
    beta_t, lam_t = torch.tensor([beta], dtype=DTYPE), torch.tensor([lam], dtype=DTYPE)

    def current() -> Params:
        l_z, l_w = _cholesky_from_raw(leaves[2]), _cholesky_from_raw(leaves[3])
        return Params(leaves[0], leaves[1], l_z @ l_z.mT, l_w @ l_w.mT)

    for _ in range(steps):
        optimizer.zero_grad()
        loss(objective_terms(instance, current()), beta_t, lam_t).sum().backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(leaves, grad_clip)
        optimizer.step()
    with torch.no_grad():
        return current()
