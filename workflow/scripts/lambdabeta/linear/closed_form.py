"""The stationary points of the linear λβ-VAE in closed form: an oracle for both solvers.

**Derivation.** Write Σ_Y = Σ_i μ_i u_i u_iᵀ with μ_1 ≥ μ_2 ≥ … and look for a stationary point of
Lemma 4.2 that is diagonal in that basis: B = R·[diag(b_1 … b_k) U_kᵀ; 0], Σ_W = R·diag(w_1 … w_k,
1 … 1)·Rᵀ for an orthogonal m × m matrix R (the prior is isotropic, so the loss is invariant
under X → RX). Along a direction u_i the decoder and encoder conditions become scalar, with z
the eigenvalue of Σ_Z along u_i and a the decoder's gain::

    decoder   1/z = 1/μ + b²/w                        a = z·b / w
    encoder   w = 1 / (1 + a²·m′)   b = w·a·m′         m′ = (1/z + 2λ)/β

Substituting a into b = w·a·m′ gives b = z·m′·b, so a direction with b ≠ 0 has z·m′ = 1, i.e.
1 + 2λz = β: with **c = λ/(β − 1)** (β > 1),

    z = 1/(2c),   w = 1/(2cμ),   b² = (1 − w)/μ,   a = z·b/w,

(the encoder's w follows from the decoder's 1/z once b²/w = 2c − 1/μ is used in w = 1/(1 + a²/z)).
The direction carries information (b > 0) exactly when w < 1, **2cμ > 1**; every other direction
is trivial (b = 0, w = 1, z = μ). At most m directions survive, the largest μ.

**Consequences.** Everything stationary depends on (β, λ) only through c. At the decoder optimum
the residual covariance is R = Σ_Z, so tr(Σ_Z⁻¹R) = n, and along a surviving direction
Σ_X = μb² + w = 1; hence, over the surviving set S,

    NLL = ½[n log 2π + n + Σ_{i∈S} log(1/(2c)) + Σ_{i∉S} log μ_i]
    KL  = I(X; Y) = ½ Σ_{i∈S} log(2cμ_i)
    L2  = tr Σ_Z = |S|/(2c) + Σ_{i∉S} μ_i

The trivial solution of Theorem 3.2 is the optimum exactly when no direction survives,
β > β*(λ) = 1 + 2λμ_1; direction i dies at β_i = 1 + 2λμ_i (a cascade), and the onset is
continuous: b_i² = (1 − (β − 1)/(β_i − 1))/μ_i ∝ β_i − β. At λ = 0 (c = 0) nothing survives for
any β > 1 (Theorem 3.2). At β = 1, λ > 0 (c = ∞) there is no minimiser: z → 0 and w → 0, the NLL
falls without bound while the loss approaches its infimum. A target information rate
I(X; Y) = I* fixes c* (``c_for_information``), so λ*(β) = (β − 1)·c*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .instance import DTYPE, Instance
from .objective import Params


def critical_c(instance: Instance, m: int) -> np.ndarray:
    """c_i = 1/(2μ_i) for the m largest eigenvalues μ_i of Σ_Y: direction i survives when
    c > c_i."""
    return 1.0 / (2.0 * sigma_y_spectrum(instance)[0][:m])


def sigma_y_spectrum(instance: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues μ (descending) and eigenvectors U (columns) of Σ_Y."""
    values, vectors = np.linalg.eigh(instance.sigma_y())
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def knob(beta: float, lam: float) -> float:
    """c = λ/(β − 1), the one parameter of every stationary point (β > 1)."""
    if not beta > 1.0:
        raise ValueError(
            f"β = {beta:g}: the closed form needs β > 1 (at β = 1 with λ > 0 the loss has no "
            "minimiser, its infimum is approached as Σ_W → 0; at β = 1, λ = 0 the optimum is a "
            "flat family that the start chooses from)"
        )
    if lam < 0:
        raise ValueError(f"λ must be ≥ 0, got {lam:g}")
    return lam / (beta - 1.0)


def predicted_critical_betas(instance: Instance, m: int, lam: float) -> np.ndarray:
    """β_i = 1 + 2λμ_i, the β above which direction i (of the m largest μ) carries nothing."""
    return 1.0 + 2.0 * lam * sigma_y_spectrum(instance)[0][:m]


@dataclass(frozen=True)
class Spectrum:
    """The per-direction quantities of a stationary point along u_1 … u_m (module docstring):
    ``mu`` the eigenvalues of Σ_Y, ``alive`` whether the direction survives, and ``b``, ``w``,
    ``z`` the singular value of B, the eigenvalue of Σ_W and of Σ_Z along it."""

    mu: np.ndarray
    alive: np.ndarray
    b: np.ndarray
    w: np.ndarray
    z: np.ndarray

    @property
    def rank(self) -> int:
        return int(self.alive.sum())


def stationary_spectrum(instance: Instance, beta: float, lam: float, m: int) -> Spectrum:
    """The per-direction quantities of the optimum at (β, λ) (β > 1)."""
    c = knob(beta, lam)
    mu = sigma_y_spectrum(instance)[0][:m]
    alive = 2.0 * c * mu > 1.0
    with np.errstate(divide="ignore"):
        w = np.where(alive, 1.0 / (2.0 * c * mu), 1.0)
        z = np.where(alive, 1.0 / (2.0 * c) if c > 0 else np.inf, mu)
    b = np.sqrt(np.where(alive, (1.0 - w) / mu, 0.0))
    return Spectrum(mu=mu, alive=alive, b=b, w=w, z=z)


def stationary_point(
    instance: Instance, beta: float, lam: float, m: int, rotation: np.ndarray | None = None
) -> Params:
    """The optimum of the loss at (β, λ), β > 1, as a batch of one, in closed form.

    B = R·diag(b)·U_mᵀ, Σ_W = R·diag(w)·Rᵀ, Σ_Z = Σ_Y − Σ_{i∈S} (μ_i − z_i) u_i u_iᵀ and
    A = U_m·diag(z·b/w)·Rᵀ; ``rotation`` is R (default I), which the loss does not see. With no
    surviving direction this is the trivial solution (A = 0, B = 0, Σ_W = I, Σ_Z = Σ_Y).
    """
    spectrum = stationary_spectrum(instance, beta, lam, m)
    mu_all, vectors = sigma_y_spectrum(instance)
    if m > instance.n:
        raise ValueError(f"m = {m} latents exceed n = {instance.n} observations")
    u = vectors[:, :m]
    r = np.eye(m) if rotation is None else np.asarray(rotation, dtype=np.float64)
    if r.shape != (m, m) or not np.allclose(r @ r.T, np.eye(m), atol=1e-10):
        raise ValueError(f"rotation must be an orthogonal {m} × {m} matrix")
    z = np.where(spectrum.alive, spectrum.z, mu_all[:m])
    gain = np.where(spectrum.alive, z * spectrum.b / spectrum.w, 0.0)
    b = r @ (spectrum.b[:, None] * u.T)
    sigma_w = (r * spectrum.w) @ r.T
    sigma_z = instance.sigma_y() - (u * (mu_all[:m] - z)) @ u.T
    a = (u * gain) @ r.T
    as_batch = [torch.as_tensor(x, dtype=DTYPE).unsqueeze(0) for x in (a, b, sigma_z, sigma_w)]
    return Params(*as_batch)


def stationary_terms(instance: Instance, beta: float, lam: float, m: int) -> dict[str, float]:
    """NLL, KL, L2, the loss and I(X; Y) of the optimum at (β, λ) from the formulas of the
    module docstring, with the rank (number of surviving directions)."""
    spectrum = stationary_spectrum(instance, beta, lam, m)
    mu_all = sigma_y_spectrum(instance)[0]
    n = instance.n
    log_z = np.log(np.where(spectrum.alive, spectrum.z, spectrum.mu))
    nll = 0.5 * (n * math.log(2 * math.pi) + n + log_z.sum() + np.log(mu_all[m:]).sum())
    information = -0.5 * float(np.log(spectrum.w).sum())
    l2 = float(np.where(spectrum.alive, spectrum.z, spectrum.mu).sum() + mu_all[m:].sum())
    return {
        "nll": float(nll),
        "kl": information,
        "l2": l2,
        "loss": float(nll) + beta * information + lam * l2,
        "information": information,
        "rank": spectrum.rank,
    }


def c_for_information(instance: Instance, m: int, information: float) -> float:
    """The c at which the optimum carries ``information`` nats of I(X; Y) (> 0).

    I(c) = ½ Σ_{i: 2cμ_i > 1} log(2cμ_i) is continuous and increasing in c; between two
    critical values with k surviving directions it is ½[k log 2c + Σ log μ_i], solved exactly.
    """
    if not information > 0:
        raise ValueError(f"the target information must be > 0 nats, got {information:g}")
    mu = sigma_y_spectrum(instance)[0][:m]
    for k in range(1, m + 1):
        c = math.exp((2.0 * information - float(np.log(mu[:k]).sum())) / k) / 2.0
        upper = math.inf if k == m else 1.0 / (2.0 * mu[k])
        if 1.0 / (2.0 * mu[k - 1]) < c <= upper:
            return c
    raise AssertionError("I(c) is continuous and unbounded: some k brackets the target")


def lambda_for_information(instance: Instance, m: int, beta: float, information: float) -> float:
    """λ*(β) = (β − 1)·c*: the λ whose optimum at β carries ``information`` nats."""
    knob(beta, 0.0)
    return (beta - 1.0) * c_for_information(instance, m, information)
