"""Fixed-point iteration of Lemmas 3.1 and 4.2: block-coordinate descent on the loss.

Both half-steps are exact minimisations (the decoder given the encoder, the encoder given the
decoder), so the loss never increases along the iteration.

**Attained or not.** Where the loss has no minimiser (β = 1 with λ > 0, ``closed_form``), the
iteration creeps towards an infimum: its NLL falls by about the same amount in every doubling of
the iterations (it falls like −log t), and a stopping rule on the parameters' change stops it
anywhere along the way. Converging to a minimum, the NLL settles geometrically instead, so each
doubling changes it far less than the one before. The iteration records the NLL and KL of every
entry at iterations 1, 2, 4, 8, …; an entry has ``attained`` a minimum when it converged and its
NLL fell, over the last doubling before it stopped, by less than ``CREEP_FLOOR`` nats or by less
than ``CREEP_RATIO`` times the doubling before. ``nll_per_decade`` and ``kl_per_decade`` are the
changes over that last stretch, per decade of iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .instance import DTYPE, Instance, Operators
from .objective import Params, decoder_optimum, sym

# A doubling of the iterations that lowers the NLL by less than this (nats) has settled.
CREEP_FLOOR = 1e-8
# A doubling that lowers it by at least this fraction of the doubling before is creeping, not
# settling (geometric convergence shrinks it by orders of magnitude per doubling, −log t not).
CREEP_RATIO = 0.5


@dataclass
class FixedPointResult:
    params: Params
    iterations: torch.Tensor  # iterations run per entry
    converged: torch.Tensor  # bool per entry
    b_norm_trace: torch.Tensor | None  # (entries, iterations + 1) spectral norms, if traced
    encoder_trace: list[tuple[torch.Tensor, torch.Tensor]] | None  # (B_t, Σ_W,t), if traced
    attained: torch.Tensor  # bool per entry: converged to a minimum (module docstring)
    nll_per_decade: torch.Tensor  # change of the NLL per decade of iterations at the end
    kl_per_decade: torch.Tensor  # the same for the KL


class _Doublings:
    """NLL and KL of every entry at iterations 1, 2, 4, 8, …, in the iteration's subspace.

    At the decoder optimum R = Σ_Z, so NLL = ½[n log 2π + n + log|Σ_Y| + log|Σ_W| − log|Σ_X|]
    (from |Σ_Z⁻¹| = |Σ_X| / (|Σ_Y||Σ_W|)) and KL = ½[tr Σ_X − m − log|Σ_W|]: m × m work only.
    """

    def __init__(self, ops: Operators, entries: int, m: int):
        log_det_y = float(torch.linalg.slogdet(ops.sigma_y)[1])
        self.constant = 0.5 * (ops.n * math.log(2 * math.pi) + ops.n + log_det_y)
        self.m = m
        self.entries = entries
        self.nll: dict[int, torch.Tensor] = {}
        self.kl: dict[int, torch.Tensor] = {}

    def terms(self, c, sigma_w, sigma_y_hat) -> tuple[torch.Tensor, torch.Tensor]:
        sigma_x = sym(c @ sigma_y_hat @ c.mT + sigma_w)
        log_det_x = 2.0 * torch.log(torch.linalg.cholesky(sigma_x).diagonal(0, -2, -1)).sum(-1)
        log_det_w = 2.0 * torch.log(torch.linalg.cholesky(sigma_w).diagonal(0, -2, -1)).sum(-1)
        nll = self.constant + 0.5 * (log_det_w - log_det_x)
        kl = 0.5 * (sigma_x.diagonal(0, -2, -1).sum(-1) - self.m - log_det_w)
        return nll, kl

    def record(self, iteration: int, active, c, sigma_w, sigma_y_hat) -> None:
        if iteration & (iteration - 1):  # not a power of two
            return
        nll, kl = self.terms(c, sigma_w, sigma_y_hat)
        for store, values in ((self.nll, nll), (self.kl, kl)):
            store[iteration] = torch.full((self.entries,), math.nan, dtype=DTYPE)
            store[iteration][active] = values

    def verdict(self, iterations, converged, final_nll, final_kl):
        """(attained, nll_per_decade, kl_per_decade) of every entry (module docstring)."""
        attained = converged.clone()
        nll_rate = torch.zeros(self.entries, dtype=DTYPE)
        kl_rate = torch.zeros(self.entries, dtype=DTYPE)
        for entry, stop in enumerate(iterations.tolist()):
            if stop < 4:
                continue
            middle = 1 << (stop.bit_length() - 2)  # the doubling point with stop/4 < it ≤ stop/2
            first = middle // 2
            doublings = math.log2(stop / middle)
            last = (self.nll[middle][entry] - final_nll[entry]) / doublings
            before = self.nll[first][entry] - self.nll[middle][entry]
            decades = math.log10(stop / middle)
            nll_rate[entry] = (final_nll[entry] - self.nll[middle][entry]) / decades
            kl_rate[entry] = (final_kl[entry] - self.kl[middle][entry]) / decades
            if last > CREEP_FLOOR and last > CREEP_RATIO * before:
                attained[entry] = False
        return attained, nll_rate, kl_rate


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
    entry runs all ``max_iter`` iterations and ‖B_t‖₂ and (B_t, Σ_W,t) are recorded (for the
    contraction figure and its metrics); ``tol`` then only decides what is reported as converged.
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
    encoders = [(c @ basis.mT, sigma_w.clone())] if trace else None
    doublings = _Doublings(ops, entries, m)

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
        doublings.record(it, active, c, sigma_w, sigma_y_hat)
        done = change < tol
        if trace:
            norms.append(torch.linalg.matrix_norm(c, ord=2))
            encoders.append((c @ basis.mT, sigma_w))
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

    sigma_y_all = basis.mT @ ops.g
    sigma_y_all = sigma_y_all @ sigma_y_all.mT + ops.noise_var * torch.eye(k, dtype=DTYPE)
    final_nll, final_kl = doublings.terms(final_c, final_w, sigma_y_all)
    attained, nll_rate, kl_rate = doublings.verdict(iterations, converged, final_nll, final_kl)
    b = final_c @ basis.mT
    a, sigma_z = decoder_optimum(instance, b, final_w)
    return FixedPointResult(
        params=Params(a=a, b=b, sigma_z=sigma_z, sigma_w=final_w),
        iterations=iterations,
        converged=converged,
        b_norm_trace=torch.stack(norms, dim=1) if trace else None,
        encoder_trace=encoders,
        attained=attained,
        nll_per_decade=nll_rate,
        kl_per_decade=kl_rate,
    )
