"""The generative instance of the linear-Gaussian study (Γ, Σ_V, σ²), its files and its seeds.

Factors V ~ N(0, Σ_V) with Σ_V diagonal, observations Y = ΓV + noise, so that
Σ_Y = ΓΣ_VΓᵀ + σ²I_n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

DTYPE = torch.float64


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


class Operators:
    """Torch views of an instance, with the products the optimisers need.

    Σ_Y = GGᵀ + σ²I with G = ΓΣ_V^½ (n × s): products with Σ_Y go through G, which costs
    O(n·s) per column instead of O(n²).
    """

    def __init__(self, instance: Instance):
        self.n, self.s = instance.n, instance.s
        self.gamma = torch.as_tensor(instance.gamma, dtype=DTYPE)
        self.factor_var = torch.as_tensor(instance.factor_var, dtype=DTYPE)
        self.noise_var = float(instance.noise_var)
        self.g = self.gamma * self.factor_var.sqrt()
        self.sigma_y = torch.as_tensor(instance.sigma_y(), dtype=DTYPE)
        self.sigma_y_inv = torch.linalg.inv(self.sigma_y)

    def times_sigma_y(self, x: torch.Tensor) -> torch.Tensor:
        """xΣ_Y for x of shape (…, k, n), through Γ: (xG)Gᵀ + σ²x, each product with the shared G
        one matrix product over every leading index."""
        return (x @ self.g) @ self.g.T + self.noise_var * x

    def sigma_y_times(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_Y x for x of shape (…, n, k): (xᵀΣ_Y)ᵀ, Σ_Y being symmetric."""
        return self.times_sigma_y(x.mT).mT


def random_instance(
    n: int, s: int, noise_var: float, factor_var_range: Sequence[float], seed: int
) -> Instance:
    """Γ ~ N(0, 1)^{n×s}, Σ_V = diag(U(low, high)^s), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    gamma = rng.standard_normal((n, s))
    factor_var = rng.uniform(factor_var_range[0], factor_var_range[1], size=s)
    return Instance(gamma=gamma, factor_var=factor_var, noise_var=float(noise_var))


def load_instance(path: str, noise_var: float | None = None) -> Instance:
    """Read Γ (``Gamma``, n × s) and Σ_V (``Sigma_V``, s × s diagonal) from an ``.npz`` file.

    σ² is ``noise_var`` when given, else the file's ``noise_var`` array (which ``save_instance``
    writes; the published instance files have none, so their σ² must be passed).
    """
    with np.load(path) as data:
        missing = {"Gamma", "Sigma_V"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {data.files})")
        gamma = np.asarray(data["Gamma"], dtype=np.float64)
        sigma_v = np.asarray(data["Sigma_V"], dtype=np.float64)
        if noise_var is None:
            if "noise_var" not in data.files:
                raise ValueError(f"{path}: no noise_var array; pass the noise variance")
            noise_var = float(data["noise_var"])
    if sigma_v.ndim != 2 or sigma_v.shape[0] != sigma_v.shape[1]:
        raise ValueError(f"{path}: Sigma_V must be square, got shape {sigma_v.shape}")
    if not np.allclose(sigma_v, np.diag(np.diag(sigma_v))):
        raise ValueError(f"{path}: Sigma_V must be diagonal (independent factors)")
    return Instance(gamma=gamma, factor_var=np.diag(sigma_v).copy(), noise_var=float(noise_var))


def save_instance(path: str, instance: Instance) -> None:
    """Write an instance, σ² included, in the format ``load_instance`` reads."""
    np.savez(
        path,
        Gamma=instance.gamma,
        Sigma_V=np.diag(instance.factor_var),
        noise_var=np.float64(instance.noise_var),
    )


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
