"""What a solution keeps of the factors, from the joint covariance of (X, V) in closed form.

With X = BY + W and Y = ΓV + noise, Cov(X, V) = Σ_XV = BΓΣ_V and Σ_X = BΣ_YBᵀ + Σ_W. SAP and
I_m are the scores of ``lambdabeta.metrics`` applied to the exact latent × factor matrices
(squared correlations and Gaussian mutual informations) instead of estimates from samples.

Two representations (``REPRESENTATIONS``): the **sampled** latent X = BY + W, the theory's
(Eq. 7 includes Σ_W; the paper's linear study), and the encoder **mean** μ = BY, the deep
study's convention, whose covariance leaves Σ_W out. The mean's squared correlations do not
change when a row of B is rescaled, S^sampled_ij = S^mean_ij · r_i with
r_i = (BΣ_YBᵀ)_ii / ((BΣ_YBᵀ)_ii + (Σ_W)_ii), so a collapsing B (r → 0) leaves them as they are.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..metrics import matched_information, top_two_gap
from .instance import DTYPE, Instance, Operators
from .objective import Params, logdet_spd, sym

REPRESENTATIONS = ("sampled", "mean")


def squared_correlations(
    instance: Instance, params: Params, representation: str = "sampled"
) -> np.ndarray:
    """S_ij = (Σ_XV)_ij² / ((Σ_X)_ii (Σ_V)_jj) with Σ_XV = BΓΣ_V; shape (…, m, s).

    S_ij is the squared correlation of latent X_i with factor V_j: of X = BY + W for
    ``sampled``, of μ = BY (Σ_X = BΣ_YBᵀ) for ``mean``, where a latent row of B that is exactly
    0 correlates with nothing (S = 0).
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
    ops = Operators(instance)
    b, sigma_w = params.b, params.sigma_w
    signal = torch.diagonal(b @ ops.sigma_y_times(b.mT), 0, -2, -1)
    sigma_x_diag = (
        signal + torch.diagonal(sigma_w, 0, -2, -1) if representation == "sampled" else signal
    )
    cross = (b @ ops.gamma) * ops.factor_var  # Σ_XV = BΓΣ_V
    denominator = sigma_x_diag.unsqueeze(-1) * ops.factor_var
    s = torch.where(denominator > 0, cross**2 / denominator.clamp(min=1e-300), 0.0)
    return s.numpy()


def sap_from_correlations(s: np.ndarray) -> np.ndarray:
    """SAP = mean_j (largest S_·j − second largest S_·j), for S of shape (…, m, s)."""
    flat = s.reshape(-1, *s.shape[-2:])
    scores = np.array([top_two_gap(matrix).mean() for matrix in flat])
    return scores.reshape(s.shape[:-2])


def mutual_information_from_correlations(s: np.ndarray) -> np.ndarray:
    """I(X_i; V_j) = −½ log(1 − S_ij) for jointly Gaussian scalars, in nats."""
    return -0.5 * np.log1p(-np.clip(s, 0.0, 1.0 - 1e-15))


def im_from_mutual_information(mi: np.ndarray) -> np.ndarray:
    """I_m = max over one-to-one latent↔factor assignments of Σ I(X_i; V_j) (Hungarian)."""
    flat = mi.reshape(-1, *mi.shape[-2:])
    scores = np.array([matched_information(matrix) for matrix in flat])
    return scores.reshape(mi.shape[:-2])


def total_mutual_information(instance: Instance, params: Params) -> torch.Tensor:
    """I(X; V) in nats: ½ log(|Σ_X| / |Σ_X − Σ_XVΣ_V⁻¹Σ_VX|).

    Σ_XVΣ_V⁻¹Σ_VX = BΓΣ_VΓᵀBᵀ, so the conditional covariance is Σ_X|V = σ²BBᵀ + Σ_W (what is
    left of X once V is known: the encoded observation noise and the encoder noise).
    """
    ops = Operators(instance)
    b, sigma_w = params.b, params.sigma_w
    sigma_x = b @ ops.sigma_y_times(b.mT) + sigma_w
    conditional = ops.noise_var * (b @ b.mT) + sigma_w
    return 0.5 * (logdet_spd(sym(sigma_x)) - logdet_spd(sym(conditional)))


def mean_mutual_information(instance: Instance, params: Params) -> np.ndarray:
    """I(μ; V) in nats for the encoder mean μ = BY: ½ log(|QᵀΣ_YQ| / |σ²QᵀQ|), Q an orthonormal
    basis of the row space of B (μ is an invertible map of QᵀY). Like the mean's correlations it
    does not see B's scale; directions with a singular value below 10⁻¹⁰ of B's largest count as
    absent, and a B that is exactly 0 keeps 0 nats."""
    ops = Operators(instance)
    b = params.b.reshape(-1, *params.b.shape[-2:])
    results = np.zeros(b.shape[0])
    for k, matrix in enumerate(b):
        _, singular, right = torch.linalg.svd(matrix, full_matrices=False)
        if singular.numel() == 0 or singular[0] == 0:
            continue
        basis = right[singular > 1e-10 * singular[0]].mT  # n × r
        projected = sym(basis.mT @ ops.sigma_y_times(basis))
        results[k] = 0.5 * float(logdet_spd(projected) - basis.shape[1] * math.log(ops.noise_var))
    return results.reshape(params.b.shape[:-2])


def distances_from_trivial(instance: Instance, params: Params) -> dict[str, torch.Tensor]:
    """How far a solution is from Theorem 3.2's trivial one (A = 0, B = 0, Σ_W = I, Σ_Z = Σ_Y).

    a_norm = ‖A‖_F, b_norm = ‖B‖₂, sigma_w_dist = ‖Σ_W − I‖_F/√m and
    sigma_z_dist = ‖Σ_Z − Σ_Y‖_F/‖Σ_Y‖_F; all four are 0 at the trivial solution.
    """
    m = params.sigma_w.shape[-1]
    sigma_y = torch.as_tensor(instance.sigma_y(), dtype=DTYPE)
    eye_m = torch.eye(m, dtype=DTYPE)
    return {
        "a_norm": torch.linalg.matrix_norm(params.a),
        "b_norm": torch.linalg.matrix_norm(params.b, ord=2),
        "sigma_w_dist": torch.linalg.matrix_norm(params.sigma_w - eye_m) / math.sqrt(m),
        "sigma_z_dist": torch.linalg.matrix_norm(params.sigma_z - sigma_y)
        / torch.linalg.matrix_norm(sigma_y),
    }


RANK_SNR_FLOOR = 1e-6
"""A latent direction whose signal-to-noise ratio is below this carries less than 5·10⁻⁷ nats
(½ log(1 + SNR)): ``information_rank`` counts it as collapsed."""


def latent_signal_to_noise(instance: Instance, params: Params) -> np.ndarray:
    """The signal-to-noise ratios of the latent directions, descending, shape (…, m): the
    eigenvalues of Σ_W^(−½) BΣ_YBᵀ Σ_W^(−½). Direction j carries ½ log(1 + SNR_j) nats of
    I(X; Y); at a stationary point they are 2cμ_i − 1 (``closed_form``)."""
    ops = Operators(instance)
    b, sigma_w = params.b, params.sigma_w
    chol = torch.linalg.cholesky(sym(sigma_w))
    whitened = torch.linalg.solve_triangular(chol, b, upper=False)  # L⁻¹B
    signal = sym(whitened @ ops.sigma_y_times(whitened.mT))
    return torch.linalg.eigvalsh(signal).flip(-1).clamp(min=0.0).numpy()


def information_rank(instance: Instance, params: Params) -> np.ndarray:
    """The number of latent directions that carry information: SNR > ``RANK_SNR_FLOOR``."""
    return (latent_signal_to_noise(instance, params) > RANK_SNR_FLOOR).sum(axis=-1)
