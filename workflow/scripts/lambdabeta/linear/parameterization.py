"""How AdamW parameterises the covariances, and the loss with its gradients in closed form.

AdamW optimises (A, B, raw_Z, raw_W), where the raw tensors are n × n and m × m matrices that
map to Σ_Z and Σ_W in one of two ways:

- ``LogCholesky``: Σ = LLᵀ with L lower-triangular, its strict lower part taken from raw as is
  and its diagonal exp(diag raw). Every raw matrix gives a valid covariance, so plain AdamW
  steps never leave the domain.
- ``ProjectedCholesky`` (the authors' code): Σ = LLᵀ + εI with raw = L used directly (no exp on
  the diagonal) and projected back to lower-triangular after every step; ε keeps Σ positive
  definite when a diagonal entry of L passes through zero.

Both share one closed form of the loss and of its gradients with respect to A, B, Σ_Z and Σ_W
(``_loss_and_covariance_gradients``); each parameterisation adds only its chain rule to raw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import lapack
from .instance import DTYPE, Operators
from .objective import frob2, gaussian_nll, latent_kl, total_loss


def _loss(
    ops: Operators,
    a: torch.Tensor,
    t: torch.Tensor,
    sigma_x: torch.Tensor,
    a_sigma_x: torch.Tensor,
    trace_fr: torch.Tensor,
    log_det_z: torch.Tensor,
    log_det_w: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
) -> torch.Tensor:
    """The loss of ``objective`` from the products the gradients need anyway: with T = Σ_YBᵀ,
    L2 = tr R = σ²n + ‖G‖²_F − 2⟨A, T⟩ + ⟨AΣ_X, A⟩, and tr(Σ_Z⁻¹R) given."""
    n, m = a.shape[-2], a.shape[-1]
    trace_r = (
        ops.noise_var * n
        + frob2(ops.g)
        - 2.0 * (a * t).sum((-2, -1))
        + (a_sigma_x * a).sum((-2, -1))
    )
    nll = gaussian_nll(n, log_det_z, trace_fr)
    kl = latent_kl(torch.diagonal(sigma_x, 0, -2, -1).sum(-1), m, log_det_w)
    return total_loss(nll, kl, trace_r, beta.reshape(-1), lam.reshape(-1))


@dataclass
class _SharedGradients:
    """The loss and the parts of its gradients common to every parameterisation."""

    loss: torch.Tensor  # (entries,)
    grad_a: torch.Tensor  # ∂/∂A
    grad_b: torch.Tensor  # ∂/∂B
    w_curvature: torch.Tensor  # AᵀPA + βI, so that ∂/∂Σ_W = ½(AᵀPA + βI − βΣ_W⁻¹)
    identity_minus_m: torch.Tensor | None  # I − C_Z⁻¹RC_Z⁻ᵀ, so that ∂/∂Σ_Z = ½C_Z⁻ᵀ(I − M)C_Z⁻¹


def _loss_and_covariance_gradients(
    ops: Operators,
    a: torch.Tensor,
    b: torch.Tensor,
    c_z_inv: torch.Tensor,
    sigma_w: torch.Tensor,
    log_det_z: torch.Tensor,
    log_det_w: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
) -> _SharedGradients:
    """Loss and gradients of each entry, given C_Z⁻¹ (C_Z the Cholesky factor of Σ_Z) and Σ_W.

    With T = Σ_YBᵀ, Σ_X = BT + Σ_W, R = Σ_Y − ATᵀ − TAᵀ + AΣ_XAᵀ, F = Σ_Z⁻¹ = C_Z⁻ᵀC_Z⁻¹ and
    P = F + 2λI (the loss is ½ log|Σ_Z| + ½ tr(PR) + β·KL + const):

        ∂/∂A   = P(AΣ_X − T)
        ∂/∂B   = (AᵀPA + βI)Tᵀ − AᵀPΣ_Y
        ∂/∂Σ_W = ½(AᵀPA + βI − βΣ_W⁻¹)
        ∂/∂Σ_Z = ½(F − FRF) = ½C_Z⁻ᵀ(I − M)C_Z⁻¹,  M = C_Z⁻¹RC_Z⁻ᵀ

    Σ_Y = GGᵀ + σ²I (G = ΓΣ_V^½) and R = σ²I + (terms of rank ≤ s + 2m) keep everything but
    the n × n products at O(n²(m + s)) per entry.
    """
    m = a.shape[-1]
    beta = beta.reshape(-1, 1, 1)
    lam = lam.reshape(-1, 1, 1)
    eye_m = torch.eye(m, dtype=DTYPE, device=a.device)
    t = ops.sigma_y_times(b.mT)  # T = Σ_YBᵀ, n × m
    sigma_x = b @ t + sigma_w
    # C_Z⁻¹ applied to A, T and G at once
    k_a, k_t, k_g = torch.split(
        c_z_inv @ torch.cat([a, t, ops.g.expand(a.shape[0], -1, -1)], -1), [m, m, ops.s], dim=-1
    )
    k_a_sigma_x = k_a @ sigma_x
    a_sigma_x = a @ sigma_x
    trace_fr = (
        ops.noise_var * frob2(c_z_inv)
        + frob2(k_g)
        - 2.0 * (k_a * k_t).sum((-2, -1))
        + (k_a_sigma_x * k_a).sum((-2, -1))
    )
    loss_value = _loss(ops, a, t, sigma_x, a_sigma_x, trace_fr, log_det_z, log_det_w, beta, lam)

    # P(AΣ_X − T) = C_Z⁻ᵀ(K_aΣ_X − K_t) + 2λ(AΣ_X − T); PA likewise
    f_residual, f_a = torch.split(
        c_z_inv.mT @ torch.cat([k_a_sigma_x - k_t, k_a], -1), [m, m], dim=-1
    )
    grad_a = f_residual + 2.0 * lam * (a_sigma_x - t)
    p_a = f_a + 2.0 * lam * a
    a_p_a = k_a.mT @ k_a + 2.0 * lam * (a.mT @ a)
    sigma_y_p_a = ops.sigma_y_times(p_a)
    w_curvature = a_p_a + beta * eye_m
    grad_b = w_curvature @ t.mT - sigma_y_p_a.mT
    # M = C_Z⁻¹RC_Z⁻ᵀ = σ²C_Z⁻¹C_Z⁻ᵀ + K_gK_gᵀ − K_aK_tᵀ − K_tK_aᵀ + K_aΣ_XK_aᵀ; I − M is
    # accumulated in place in one n × n buffer: beside the triangular inverse and the n × n
    # products, copies of n × n temporaries cost most
    identity_minus_m = torch.bmm(c_z_inv, c_z_inv.mT).baddbmm_(
        torch.cat([k_g, k_a_sigma_x - k_t, -k_a], -1),
        torch.cat([k_g, k_a, k_t], -1).mT,
        beta=-ops.noise_var,
        alpha=-1.0,
    )
    torch.diagonal(identity_minus_m, 0, -2, -1).add_(1.0)
    return _SharedGradients(loss_value, grad_a, grad_b, w_curvature, identity_minus_m)


def _low_rank_basis(ops: Operators, a: torch.Tensor, t_transposed: torch.Tensor) -> torch.Tensor:
    """U = [A, T, G] (n × (2m + s) per entry), the columns R = σ²I + (products of U) is made of."""
    m = a.shape[-1]
    basis = torch.empty(*a.shape[:-1], 2 * m + ops.s, dtype=a.dtype, device=a.device)
    basis[..., :m] = a
    basis[..., m : 2 * m] = t_transposed.mT
    basis[..., 2 * m :] = ops.g
    return basis


def _loss_and_gradients_from_precision(
    ops: Operators,
    a: torch.Tensor,
    b: torch.Tensor,
    t_transposed: torch.Tensor,
    precision_z: torch.Tensor,
    precision_basis: torch.Tensor,
    sigma_w: torch.Tensor,
    log_det_z: torch.Tensor,
    log_det_w: torch.Tensor,
    beta: torch.Tensor,
    lam: torch.Tensor,
) -> tuple[_SharedGradients, torch.Tensor]:
    """The loss and shared gradients given F = Σ_Z⁻¹ and FU = [FA, FT, FG] (``_low_rank_basis``),
    and the low-rank part of FRF.

    The same closed form as ``_loss_and_covariance_gradients`` with every C_Z⁻¹ product replaced
    by one with F:

        tr(FR) = σ² tr F + ⟨G, FG⟩ − 2⟨T, FA⟩ + ⟨AΣ_X, FA⟩
        FRF    = σ²F² + (FG)(FG)ᵀ − (FA)(FT)ᵀ − (FT)(FA)ᵀ + (FA)Σ_X(FA)ᵀ = σ²F² + V(FU)ᵀ

    with V = [FAΣ_X − FT, −FA, FG] (n × (2m + s)), returned beside the result, so that the only
    n × n products left to the caller are F² and (F − FRF)L.
    The ``identity_minus_m`` field of the result is left as None: M is never formed.
    """
    m = a.shape[-1]
    beta = beta.reshape(-1, 1, 1)
    lam = lam.reshape(-1, 1, 1)
    eye_m = torch.eye(m, dtype=DTYPE, device=a.device)
    t = t_transposed.mT  # T = Σ_YBᵀ, n × m
    sigma_x = b @ t + sigma_w
    f_a, f_t, f_g = torch.split(precision_basis, [m, m, ops.s], dim=-1)
    a_sigma_x = a @ sigma_x
    low_rank_left = torch.empty_like(precision_basis)
    low_rank_left[..., :m] = f_a @ sigma_x - f_t
    low_rank_left[..., m : 2 * m] = -f_a
    low_rank_left[..., 2 * m :] = f_g
    trace_fr = (
        ops.noise_var * torch.diagonal(precision_z, 0, -2, -1).sum(-1)
        + (ops.g * f_g).sum((-2, -1))
        - 2.0 * (t * f_a).sum((-2, -1))
        + (a_sigma_x * f_a).sum((-2, -1))
    )
    loss_value = _loss(ops, a, t, sigma_x, a_sigma_x, trace_fr, log_det_z, log_det_w, beta, lam)

    grad_a = low_rank_left[..., :m] + 2.0 * lam * (a_sigma_x - t)
    p_a = f_a + 2.0 * lam * a  # PA, P = F + 2λI
    w_curvature = a.mT @ p_a + beta * eye_m  # AᵀPA + βI
    grad_b = w_curvature @ t_transposed - ops.times_sigma_y(p_a.mT)  # (AᵀPA + βI)Tᵀ − (PA)ᵀΣ_Y
    shared = _SharedGradients(loss_value, grad_a, grad_b, w_curvature, None)
    return shared, low_rank_left


def _lower_inverse(chol: torch.Tensor) -> torch.Tensor:
    """L⁻¹ of lower-triangular matrices."""
    eye = torch.eye(chol.shape[-1], dtype=DTYPE, device=chol.device)
    return torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)


@dataclass(frozen=True)
class LogCholesky:
    """Σ = LLᵀ, L = strict lower part of raw + diag(exp(diag raw)); the upper part of raw is
    unused and gets zero gradient."""

    name = "log_cholesky"

    def raw_from_covariance(self, sigma: torch.Tensor) -> torch.Tensor:
        chol = torch.linalg.cholesky(sigma.to(DTYPE))
        return torch.tril(chol, diagonal=-1) + torch.diag_embed(
            torch.log(torch.diagonal(chol, 0, -2, -1))
        )

    def cholesky(self, raw: torch.Tensor) -> torch.Tensor:
        """L from raw: strict lower part of raw, exp of its diagonal."""
        chol = torch.tril(raw, diagonal=-1)
        torch.diagonal(chol, 0, -2, -1).copy_(torch.exp(torch.diagonal(raw, 0, -2, -1)))
        return chol

    def covariance(self, raw: torch.Tensor) -> torch.Tensor:
        chol = self.cholesky(raw)
        return chol @ chol.mT

    def project_(self, raw: torch.Tensor) -> None:
        """Every raw matrix is valid: nothing to project."""

    def loss_and_gradients(
        self,
        ops: Operators,
        a: torch.Tensor,
        b: torch.Tensor,
        raw_z: torch.Tensor,
        raw_w: torch.Tensor,
        beta: torch.Tensor,
        lam: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Loss and gradients with respect to (A, B, raw_z, raw_w).

        ∂/∂L_W = (AᵀPA + βI)L_W − βL_W⁻ᵀ and ∂/∂L_Z = L_Z⁻ᵀ(I − M) (from ∂/∂L = 2(∂/∂Σ)L with
        Σ = LLᵀ), then the chain rule through exp on the diagonals.
        """
        l_z, l_w = self.cholesky(raw_z), self.cholesky(raw_w)
        l_z_inv, l_w_inv = _lower_inverse(l_z), _lower_inverse(l_w)
        log_det_z = 2.0 * torch.diagonal(raw_z, 0, -2, -1).sum(-1)
        log_det_w = 2.0 * torch.diagonal(raw_w, 0, -2, -1).sum(-1)
        shared = _loss_and_covariance_gradients(
            ops, a, b, l_z_inv, l_w @ l_w.mT, log_det_z, log_det_w, beta, lam
        )
        grad_l_w = shared.w_curvature @ l_w - beta.reshape(-1, 1, 1) * l_w_inv.mT
        # M is symmetric, so L_Z⁻ᵀ(I − M) = ((I − M)L_Z⁻¹)ᵀ, a product without a transposed operand
        grad_l_z = torch.bmm(shared.identity_minus_m, l_z_inv).mT
        grads = [shared.grad_a, shared.grad_b, _raw_gradient(grad_l_z, l_z)]
        return shared.loss, [*grads, _raw_gradient(grad_l_w, l_w)]


def _raw_gradient(grad_chol: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """Chain rule from L to its log-Cholesky raw parameters (in place): strict lower part as
    is, the diagonal times exp(raw) = diag(L); the upper triangle, which L ignores, gets zero."""
    grad = grad_chol.tril_()
    torch.diagonal(grad, 0, -2, -1).mul_(torch.diagonal(chol, 0, -2, -1))
    return grad


@dataclass(frozen=True)
class ProjectedCholesky:
    """Σ = LLᵀ + εI with raw = L, kept lower-triangular by ``project_`` after each step.

    The gradient is that of the full matrix L (its upper part included, as autograd gives it
    for an unconstrained L), so a gradient-norm clip sees the same norm as in the authors' code;
    the projection then discards what the step did to the upper part.

    With ``lapack_on_cpu`` (the default) float64 entries on the CPU take their n × n work through
    per-matrix BLAS and LAPACK calls (module ``lapack``), other devices (and
    ``lapack_on_cpu=False``) through torch's batched operators; both compute the same formulas.
    """

    epsilon: float = 5.0e-5
    lapack_on_cpu: bool = True
    name = "authors"

    def raw_from_covariance(self, sigma: torch.Tensor) -> torch.Tensor:
        """L = chol(Σ): the start is LLᵀ + εI, within ε of Σ. Row-major, as the CPU kernels
        need it (LAPACK returns it column-major)."""
        return torch.linalg.cholesky(sigma.to(DTYPE)).contiguous()

    def covariance(self, raw: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(raw.shape[-1], dtype=DTYPE, device=raw.device)
        return raw @ raw.mT + self.epsilon * eye

    def project_(self, raw: torch.Tensor) -> None:
        raw.tril_()

    def loss_and_gradients(
        self,
        ops: Operators,
        a: torch.Tensor,
        b: torch.Tensor,
        l_z: torch.Tensor,
        l_w: torch.Tensor,
        beta: torch.Tensor,
        lam: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Loss and gradients with respect to (A, B, L_Z, L_W), L_Z and L_W as full matrices.

        ∂/∂L = 2(∂/∂Σ)L for Σ = LLᵀ + εI: ∂/∂L_W = (AᵀPA + βI − βΣ_W⁻¹)L_W and
        ∂/∂L_Z = (F − FRF)L_Z with F = Σ_Z⁻¹ from its Cholesky factor. Five n × n operations
        per entry (LLᵀ, Cholesky, F, F² and (F − FRF)L) against the seven of
        ``reference_loss_and_gradients``, which goes through C_Z⁻¹; on the CPU the triangular
        and symmetric ones run as such (``lapack``).
        """
        sigma_w = self.covariance(l_w)
        c_w = torch.linalg.cholesky(sigma_w)
        log_det_w = 2.0 * torch.log(torch.diagonal(c_w, 0, -2, -1)).sum(-1)
        t_transposed = ops.times_sigma_y(b)  # Tᵀ = BΣ_Y
        basis = _low_rank_basis(ops, a, t_transposed)
        through_lapack = self.lapack_on_cpu and _lapack_can_take(l_z)
        if through_lapack:
            precision_z, precision_basis, log_det_z = lapack.precision_products(
                l_z, self.epsilon, basis
            )
        else:
            c_z = torch.linalg.cholesky(self.covariance(l_z))
            log_det_z = 2.0 * torch.log(torch.diagonal(c_z, 0, -2, -1)).sum(-1)
            precision_z = torch.cholesky_inverse(c_z)
            precision_basis = precision_z @ basis
        shared, left = _loss_and_gradients_from_precision(
            ops,
            a,
            b,
            t_transposed,
            precision_z,
            precision_basis,
            sigma_w,
            log_det_z,
            log_det_w,
            beta,
            lam,
        )
        w_inv = torch.cholesky_inverse(c_w)
        grad_l_w = (shared.w_curvature - beta.reshape(-1, 1, 1) * w_inv) @ l_w
        # ∂/∂L_Z = (F − σ²F² − V(FU)ᵀ)L, accumulated in one n × n buffer per entry
        if through_lapack:
            grad_l_z = lapack.factor_gradient(
                precision_z, left, precision_basis, l_z, ops.noise_var
            )
        else:
            residual = torch.baddbmm(precision_z, precision_z, precision_z, alpha=-ops.noise_var)
            residual.baddbmm_(left, precision_basis.mT, alpha=-1.0)
            grad_l_z = torch.bmm(residual, l_z)
        return shared.loss, [shared.grad_a, shared.grad_b, grad_l_z, grad_l_w]

    def reference_loss_and_gradients(
        self,
        ops: Operators,
        a: torch.Tensor,
        b: torch.Tensor,
        l_z: torch.Tensor,
        l_w: torch.Tensor,
        beta: torch.Tensor,
        lam: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``loss_and_gradients`` through C_Z⁻¹ (the slower formulation, kept to check it).

        ∂/∂L_Z = C_Z⁻ᵀ(I − M)C_Z⁻¹L_Z, with C_Z = chol(Σ_Z).
        """
        sigma_z, sigma_w = self.covariance(l_z), self.covariance(l_w)
        c_z, c_w = torch.linalg.cholesky(sigma_z), torch.linalg.cholesky(sigma_w)
        c_z_inv = _lower_inverse(c_z)
        log_det_z = 2.0 * torch.log(torch.diagonal(c_z, 0, -2, -1)).sum(-1)
        log_det_w = 2.0 * torch.log(torch.diagonal(c_w, 0, -2, -1)).sum(-1)
        shared = _loss_and_covariance_gradients(
            ops, a, b, c_z_inv, sigma_w, log_det_z, log_det_w, beta, lam
        )
        w_inv = torch.cholesky_inverse(c_w)
        grad_l_w = (shared.w_curvature - beta.reshape(-1, 1, 1) * w_inv) @ l_w
        grad_l_z = torch.bmm(c_z_inv.mT, torch.bmm(shared.identity_minus_m, c_z_inv @ l_z))
        return shared.loss, [shared.grad_a, shared.grad_b, grad_l_z, grad_l_w]


def _lapack_can_take(chol: torch.Tensor) -> bool:
    """Whether ``lapack``'s kernels apply: contiguous float64 matrices in CPU memory."""
    return chol.device.type == "cpu" and chol.dtype == torch.float64 and chol.is_contiguous()


Parameterization = LogCholesky | ProjectedCholesky


def parameterization_named(name: str, epsilon: float | None) -> Parameterization:
    """The parameterisation a config names: ``authors`` (with ``epsilon``) or ``log_cholesky``."""
    if name == "authors":
        return ProjectedCholesky(epsilon)
    if name == "log_cholesky":
        return LogCholesky()
    raise ValueError(f"unknown AdamW parameterization {name!r}: expected authors or log_cholesky")
