"""Fixed-point iteration of Lemmas 3.1 and 4.2: block-coordinate descent on the loss.

Both half-steps are exact minimisations (the decoder given the encoder, the encoder given the
decoder), so the loss never increases along the iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .instance import DTYPE, Instance, Operators
from .objective import Params, decoder_optimum, sym


@dataclass
class FixedPointResult:
    params: Params
    iterations: torch.Tensor  # iterations run per entry
    converged: torch.Tensor  # bool per entry
    b_norm_trace: torch.Tensor | None  # (entries, iterations + 1) spectral norms, if traced


def invariant_basis(ops: Operators, b0: torch.Tensor) -> torch.Tensor:
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


def run_fixed_point(
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
    ``invariant_basis``): its cost does not grow with n.

    An entry has converged when max(‖B_{t+1} − B_t‖_F, ‖Σ_W,t+1 − Σ_W,t‖_F) < ``tol``; it then
    leaves the batch, so an iteration gets cheaper as entries converge. With ``trace=True`` every
    entry runs all ``max_iter`` iterations and ‖B_t‖₂ is recorded (for the contraction figure);
    ``tol`` then only decides what is reported as converged.
    """
    ops = Operators(instance)
    entries, m = b0.shape[0], b0.shape[1]
    beta = beta.reshape(-1, 1, 1).to(DTYPE)
    lam = lam.reshape(-1, 1, 1).to(DTYPE)
    basis = invariant_basis(ops, b0.to(DTYPE))
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
        sigma_x = sym(c @ sigma_y_ct + sigma_w)
        a_hat = sigma_y_ct @ torch.cholesky_inverse(torch.linalg.cholesky(sigma_x))
        # encoder: AᵀM = (Σ_W⁻¹C + 2λÂᵀ)Uᵀ/β, AᵀMA = (Σ_W⁻¹CÂ + 2λÂᵀÂ)/β
        at_m = (precision_w @ c + 2.0 * lam * a_hat.mT) / beta
        precision_w = sym(eye_m + at_m @ a_hat)
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
