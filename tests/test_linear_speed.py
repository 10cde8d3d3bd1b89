"""The fast AdamW formulation of the authors' parameterisation against the one through C_Z⁻¹."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from linear_helpers import small_instance
from scipy.linalg import blas

from lambdabeta import linear as L
from lambdabeta.linear import lapack
from lambdabeta.linear.instance import Operators

pytestmark = pytest.mark.trains

EPSILON = 5.0e-5


@pytest.fixture(scope="module")
def instance() -> L.Instance:
    return small_instance()


# the CPU's per-matrix LAPACK kernels and torch's batched operators (what other devices run)
KERNELS = {
    "lapack": L.ProjectedCholesky(EPSILON),
    "batched": L.ProjectedCholesky(EPSILON, lapack_on_cpu=False),
}


@pytest.mark.parametrize("kernels", KERNELS)
def test_precision_gradients_equal_the_reference_formulation(instance, kernels):
    """Loss and all four gradients through F = Σ_Z⁻¹ equal those through C_Z⁻¹ at a start."""
    grid = L.grid_entries(
        instance, 4, [1.0, 8.0], [0.0, 4.0], restarts=3, seed=2, init="authors", method="adamw"
    )
    fast, reference = KERNELS[kernels], L.ProjectedCholeskyReference(EPSILON)
    tensors = [
        grid.init.a,
        grid.init.b,
        fast.raw_from_covariance(grid.init.sigma_z),
        fast.raw_from_covariance(grid.init.sigma_w),
    ]
    ops = Operators(instance)
    loss, grads = fast.loss_and_gradients(ops, *tensors, grid.beta, grid.lam)
    ref_loss, ref_grads = reference.reference_loss_and_gradients(ops, *tensors, grid.beta, grid.lam)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-11, atol=0.0)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        scale = ref_grad.abs().amax((-2, -1), keepdim=True)
        torch.testing.assert_close(grad / scale, ref_grad / scale, rtol=0.0, atol=1e-10)


@pytest.mark.parametrize(
    ("kernels", "report"), [("lapack", "last"), ("lapack", "best"), ("batched", "best")]
)
def test_fast_adamw_trajectory_equals_the_reference(instance, kernels, report):
    """Three hundred AdamW steps agree with the reference formulation's within 1e-9 relative.

    At the paper's learning rate: at ten times it the trajectory from these starts passes close to
    a singular Σ_Z, where any rounding difference (a different block size as well) is amplified.
    """
    grid = L.grid_entries(
        instance, 4, [1.0, 16.0], [0.0, 2.0], restarts=2, seed=5, init="authors", method="adamw"
    )
    settings = {"lr": 1e-3, "weight_decay": 0.01, "grad_clip": (2.0, 3.0), "report": report}
    results = [
        L.run_adamw(
            instance, grid.init, grid.beta, grid.lam, steps=300, parameterization=p, **settings
        ).params
        for p in (KERNELS[kernels], L.ProjectedCholeskyReference(EPSILON))
    ]
    for field in ("a", "b", "sigma_z", "sigma_w"):
        fast, reference = getattr(results[0], field), getattr(results[1], field)
        relative = (fast - reference).abs().amax() / reference.abs().amax()
        assert relative < 1e-9, (field, relative.item())


def test_lapack_kernels_name_a_covariance_that_is_not_positive_definite():
    """Without ε a singular factor L gives a singular Σ_Z = LLᵀ: a clear error, not NaNs."""
    chol = torch.eye(5, dtype=torch.float64).repeat(2, 1, 1)
    chol[1, 2, 2] = 0.0
    with pytest.raises(np.linalg.LinAlgError, match="Σ_Z of entry 1"):
        lapack.precision_products(chol, 0.0, torch.ones(2, 5, 1, dtype=torch.float64))


@pytest.mark.parametrize("n", [9, 100, 129])
def test_lapack_kernels_equal_torchs_batched_operators(n):
    """Σ⁻¹, Σ⁻¹U and log|Σ| of Σ = LLᵀ + εI, and the factor gradient, as torch computes them: at
    sizes below and above the blocked triangular inverse (an odd one splits unevenly)."""
    generator = torch.Generator().manual_seed(n)
    chol = torch.randn(3, n, n, dtype=torch.float64, generator=generator).tril_() / n**0.5
    chol.diagonal(0, -2, -1).add_(1.0)
    basis = torch.randn(3, n, 4, dtype=torch.float64, generator=generator)
    left = torch.randn(3, n, 4, dtype=torch.float64, generator=generator)
    sigma = chol @ chol.mT + EPSILON * torch.eye(n, dtype=torch.float64)
    precision, products, log_det = lapack.precision_products(chol, EPSILON, basis)
    expected = torch.linalg.inv(sigma)
    torch.testing.assert_close(precision, expected, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(products, expected @ basis, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(log_det, torch.logdet(sigma), rtol=1e-12, atol=0.0)
    # F − 0.05F² − VWᵀ is symmetric with W = V
    gradient = lapack.factor_gradient(precision, left, left, chol, 0.05)
    residual = precision - 0.05 * precision @ precision - left @ left.mT
    torch.testing.assert_close(gradient, residual @ chol, rtol=1e-10, atol=1e-11)


def test_a_result_blas_could_not_write_in_place_still_reaches_the_buffer():
    """A row-major buffer makes the BLAS wrapper compute into a copy; it is copied back."""
    buffer = np.zeros((3, 3))
    twice = 2.0 * np.eye(3, order="F")
    result = blas.dgemm(1.0, twice, twice, c=buffer, overwrite_c=1)
    assert not np.shares_memory(result, buffer)
    lapack._into(buffer, result)
    np.testing.assert_array_equal(buffer, 4.0 * np.eye(3))


def test_adamw_step_seconds_times_a_step():
    """The timing helper runs real steps and returns a positive duration."""
    seconds = L.adamw_step_seconds(n=8, restarts=6, steps=2, m=3, s=2)
    assert 0.0 < seconds < 60.0


def test_adamw_on_an_explicit_device_equals_the_default(instance):
    """``device="cpu"`` runs the same steps as the default and returns CPU tensors."""
    grid = L.grid_entries(
        instance, 4, [1.0, 16.0], [0.0, 2.0], restarts=2, seed=6, init="authors", method="adamw"
    )
    settings = {
        "lr": 1e-3,
        "weight_decay": 0.01,
        "grad_clip": (2.0, 3.0),
        "report": "best",
        "parameterization": L.ProjectedCholesky(EPSILON),
    }
    default = L.run_adamw(instance, grid.init, grid.beta, grid.lam, steps=40, **settings)
    on_cpu = L.run_adamw(
        instance, grid.init, grid.beta, grid.lam, steps=40, device="cpu", **settings
    )
    for field in ("a", "b", "sigma_z", "sigma_w"):
        explicit, reference = getattr(on_cpu.params, field), getattr(default.params, field)
        assert explicit.device.type == "cpu"
        torch.testing.assert_close(explicit, reference, rtol=1e-8, atol=0.0)
    assert torch.equal(on_cpu.reported_iteration, default.reported_iteration)
