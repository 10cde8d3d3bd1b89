"""The closed-form objective, the optimal decoder, and AdamW's closed-form gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from linear_helpers import small_instance, total_loss

from lambdabeta import linear as L

DTYPE = torch.float64


@pytest.fixture(scope="module")
def instance() -> L.Instance:
    return small_instance()


def test_objective_matches_monte_carlo(instance):
    """NLL, KL and L2 in closed form agree with sampling Y, X and averaging the integrands."""
    params = L.initial_params(instance, m=4, restarts=1, seed=0)
    terms = L.objective_terms(instance, params)
    gen = np.random.default_rng(0)
    samples = 200_000
    y = gen.multivariate_normal(np.zeros(instance.n), instance.sigma_y(), size=samples)
    a, b = params.a[0].numpy(), params.b[0].numpy()
    sigma_z, sigma_w = params.sigma_z[0].numpy(), params.sigma_w[0].numpy()
    x = y @ b.T + gen.multivariate_normal(np.zeros(4), sigma_w, size=samples)
    residual = y - x @ a.T
    _, log_det_z = np.linalg.slogdet(sigma_z)
    mahalanobis = np.einsum("ij,ij->i", residual @ np.linalg.inv(sigma_z), residual)
    nll = 0.5 * (instance.n * math.log(2 * math.pi) + log_det_z + mahalanobis).mean()
    assert terms["nll"].item() == pytest.approx(nll, rel=5e-3)
    assert terms["l2"].item() == pytest.approx((residual**2).sum(1).mean(), rel=5e-3)
    mean = y @ b.T  # KL(N(By, Σ_W) ‖ N(0, I)) averaged over y
    kl = 0.5 * (np.trace(sigma_w) + (mean**2).sum(1) - 4 - np.linalg.slogdet(sigma_w)[1]).mean()
    assert terms["kl"].item() == pytest.approx(kl, rel=5e-3)


def test_decoder_optimum_is_the_regression_of_y_on_x(instance):
    """A = Σ_YBᵀΣ_X⁻¹ (push-through identity) and Σ_Z is the residual covariance R at that A."""
    params = L.initial_params(instance, m=4, restarts=3, seed=1)
    a, sigma_z = L.decoder_optimum(instance, params.b, params.sigma_w)
    sigma_y = torch.as_tensor(instance.sigma_y())
    sigma_x = params.b @ sigma_y @ params.b.mT + params.sigma_w
    regression = sigma_y @ params.b.mT @ torch.linalg.inv(sigma_x)
    torch.testing.assert_close(a, regression)
    at_optimum = L.Params(a, params.b, sigma_z, params.sigma_w)
    r = L.objective_terms(instance, at_optimum)["l2"]
    torch.testing.assert_close(torch.diagonal(sigma_z, 0, -2, -1).sum(-1), r)


def autograd_check(instance, parameterization, raw_z, raw_w, a, b):
    """The parameterisation's closed-form loss and gradients against autograd through
    ``objective_terms`` at three (β, λ) entries."""
    ops = L.Operators(instance)
    beta = torch.tensor([1.0, 4.0, 32.0], dtype=DTYPE)
    lam = torch.tensor([0.0, 2.0, 8.0], dtype=DTYPE)
    leaves = [t.clone().requires_grad_() for t in (a, b, raw_z, raw_w)]
    sigma_z = parameterization.covariance(leaves[2])
    sigma_w = parameterization.covariance(leaves[3])
    reference = total_loss(instance, L.Params(leaves[0], leaves[1], sigma_z, sigma_w), beta, lam)
    expected = torch.autograd.grad(reference.sum(), leaves)
    value, grads = parameterization.loss_and_gradients(ops, a, b, raw_z, raw_w, beta, lam)
    torch.testing.assert_close(value, reference.detach())
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_log_cholesky_gradients_match_autograd(instance):
    params = L.initial_params(instance, m=4, restarts=3, seed=2)
    chol = L.LogCholesky()
    gen = torch.Generator().manual_seed(0)
    raw_z = chol.raw_from_covariance(params.sigma_z)
    raw_z = raw_z + 0.05 * torch.tril(torch.randn(raw_z.shape, generator=gen, dtype=DTYPE))
    raw_w = chol.raw_from_covariance(params.sigma_w)
    autograd_check(instance, chol, raw_z, raw_w, params.a, params.b)


def test_projected_cholesky_gradients_match_autograd(instance):
    """Σ = LLᵀ + εI with L used as a full matrix: the gradient of the upper triangle too,
    as autograd gives it; ε is made large so that a missing ε term would show."""
    params = L.initial_params(instance, m=4, restarts=3, seed=2, init="authors", method="adamw")
    chol = L.ProjectedCholesky(epsilon=0.3)
    gen = torch.Generator().manual_seed(1)
    l_z = chol.raw_from_covariance(params.sigma_z)
    l_z = l_z + 0.05 * torch.tril(torch.randn(l_z.shape, generator=gen, dtype=DTYPE))
    l_w = chol.raw_from_covariance(params.sigma_w)
    autograd_check(instance, chol, l_z, l_w, params.a, params.b)


def test_projected_cholesky_keeps_covariances_positive_definite():
    """A zero or negative diagonal entry of L is allowed: Σ = LLᵀ + εI stays ≥ εI."""
    chol = L.ProjectedCholesky(epsilon=5e-5)
    raw = torch.tensor([[[0.0, 0.0], [1.0, -2.0]]], dtype=DTYPE)
    sigma = chol.covariance(raw)
    assert torch.linalg.eigvalsh(sigma).min() >= 5e-5 * (1 - 1e-12)
    full = torch.ones(1, 3, 3, dtype=DTYPE)
    chol.project_(full)
    assert torch.equal(full, torch.tril(torch.ones(1, 3, 3, dtype=DTYPE)))


def test_parameterizations_by_name():
    assert L.parameterization_named("authors", 5e-5) == L.ProjectedCholesky(5e-5)
    assert L.parameterization_named("log_cholesky", None) == L.LogCholesky()
    with pytest.raises(ValueError, match="newton"):
        L.parameterization_named("newton", None)
