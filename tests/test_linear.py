"""The linear-Gaussian λβ-VAE: closed forms, both optimisers, Theorem 3.2 and the metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lambdabeta import linear as L

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
DTYPE = torch.float64


@pytest.fixture(scope="module")
def instance() -> L.Instance:
    return L.random_instance(n=24, s=3, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=7)


def total_loss(instance, params, beta, lam):
    return L.loss(L.objective_terms(instance, params), beta, lam)


# ---- the instance ---------------------------------------------------------------------------


def test_random_instance_is_seeded_and_in_range():
    first = L.random_instance(30, 4, 0.05, (0.1, 1.0), seed=3)
    again = L.random_instance(30, 4, 0.05, (0.1, 1.0), seed=3)
    other = L.random_instance(30, 4, 0.05, (0.1, 1.0), seed=4)
    assert first.gamma.shape == (30, 4) and first.factor_var.shape == (4,)
    np.testing.assert_array_equal(first.gamma, again.gamma)
    assert not np.allclose(first.gamma, other.gamma)
    assert np.all((first.factor_var >= 0.1) & (first.factor_var <= 1.0))
    sigma_y = first.sigma_y()
    np.testing.assert_allclose(
        sigma_y, first.gamma @ np.diag(first.factor_var) @ first.gamma.T + 0.05 * np.eye(30)
    )


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the published reference instance is absent")
def test_published_instance_loads_and_round_trips(tmp_path):
    instance = L.load_instance(str(REFERENCE / "linear_instance_n100.npz"), noise_var=0.05)
    assert (instance.n, instance.s) == (100, 5)
    path = tmp_path / "copy.npz"
    L.save_instance(str(path), instance)
    again = L.load_instance(str(path), noise_var=0.05)
    np.testing.assert_array_equal(again.gamma, instance.gamma)
    np.testing.assert_array_equal(again.factor_var, instance.factor_var)


def test_bad_instance_files_fail_clearly(tmp_path):
    np.savez(tmp_path / "missing.npz", Gamma=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"missing arrays \['Sigma_V'\]"):
        L.load_instance(str(tmp_path / "missing.npz"), 0.05)
    np.savez(tmp_path / "full.npz", Gamma=np.ones((5, 2)), Sigma_V=np.ones((2, 2)))
    with pytest.raises(ValueError, match="diagonal"):
        L.load_instance(str(tmp_path / "full.npz"), 0.05)
    np.savez(tmp_path / "ok.npz", Gamma=np.ones((5, 2)), Sigma_V=np.eye(2))
    with pytest.raises(ValueError, match="n = 6, s = 2"):
        L.make_instance(6, 3, 2, 0.05, (0.1, 1.0), seed=0, instance_file=str(tmp_path / "ok.npz"))


# ---- closed forms ---------------------------------------------------------------------------


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


def test_analytic_gradients_match_autograd(instance):
    ops = L._Operators(instance)
    params = L.initial_params(instance, m=4, restarts=3, seed=2)
    gen = torch.Generator().manual_seed(0)
    raw_z = L._raw_from_cholesky(torch.linalg.cholesky(params.sigma_z))
    raw_z = raw_z + 0.05 * torch.tril(torch.randn(raw_z.shape, generator=gen, dtype=DTYPE))
    raw_w = L._raw_from_cholesky(torch.linalg.cholesky(params.sigma_w))
    beta = torch.tensor([1.0, 4.0, 32.0], dtype=DTYPE)
    lam = torch.tensor([0.0, 2.0, 8.0], dtype=DTYPE)
    leaves = [t.clone().requires_grad_() for t in (params.a, params.b, raw_z, raw_w)]
    l_z, l_w = L._cholesky_from_raw(leaves[2]), L._cholesky_from_raw(leaves[3])
    reference = total_loss(
        instance, L.Params(leaves[0], leaves[1], l_z @ l_z.mT, l_w @ l_w.mT), beta, lam
    )
    expected = torch.autograd.grad(reference.sum(), leaves)
    value, grads = L.cholesky_loss_and_gradients(ops, params.a, params.b, raw_z, raw_w, beta, lam)
    torch.testing.assert_close(value, reference.detach())
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


# ---- fixed-point iteration --------------------------------------------------------------------


def test_fast_iteration_equals_the_lemma_formulas(instance):
    """The reduced (m + s)-dimensional iteration reproduces the textbook one exactly."""
    grid = L.grid_entries(instance, 4, [1.0, 4.0, 16.0], [0.0, 2.0], restarts=2, seed=3)
    beta, lam, init = grid.beta, grid.lam, grid.init
    fast = L.fixed_point(instance, init.b, init.sigma_w, beta, lam, max_iter=25, tol=0.0)
    b, sigma_w = L.fixed_point_reference(instance, init.b, init.sigma_w, beta, lam, 25)
    torch.testing.assert_close(fast.params.b, b, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(fast.params.sigma_w, sigma_w, rtol=1e-8, atol=1e-10)


def test_each_iteration_lowers_the_loss(instance):
    """Both half-steps are exact block minimisations, so the loss never increases."""
    grid = L.grid_entries(instance, 4, [1.0, 4.0, 32.0], [0.0, 2.0, 8.0], restarts=2, seed=4)
    beta, lam = grid.beta, grid.lam
    b, sigma_w = grid.init.b, grid.init.sigma_w
    a, sigma_z = L.decoder_optimum(instance, b, sigma_w)
    previous = total_loss(instance, L.Params(a, b, sigma_z, sigma_w), beta, lam)
    for _ in range(30):
        b, sigma_w = L.fixed_point_reference(instance, b, sigma_w, beta, lam, 1)
        a, sigma_z = L.decoder_optimum(instance, b, sigma_w)
        current = total_loss(instance, L.Params(a, b, sigma_z, sigma_w), beta, lam)
        assert torch.all(current <= previous + 1e-9 * previous.abs())
        previous = current


@pytest.fixture(scope="module")
def fixed_point_grid(instance):
    return L.run_grid(
        instance,
        "fixed_point",
        m=4,
        betas=[1, 4, 8, 16, 32],
        lambdas=[0, 2, 8],
        restarts=6,
        seed=5,
        fixed_point_settings={"max_iter": 100_000, "tol": 1e-6},
        adamw_settings={},
    )


def test_theorem_3_2_collapse_for_beta_above_one(fixed_point_grid):
    table = fixed_point_grid
    assert table["converged"].all()
    collapsed = table[(table["lambda"] == 0) & (table["beta"] >= 4)]
    assert (collapsed["im"] < 1e-3).all() and (collapsed["sap"] < 1e-3).all()
    assert (collapsed["b_norm"] < 1e-3).all()
    informative = table[(table["lambda"] == 0) & (table["beta"] == 1)]
    assert (informative["im"] > 0.05).all() and (informative["b_norm"] > 0.1).all()


def test_lambda_keeps_information_up_to_beta_32(fixed_point_grid):
    restored = fixed_point_grid[fixed_point_grid["lambda"] >= 2]
    assert (restored["sap"] > 0.01).all() and (restored["im"] > 0.05).all()
    at_32 = restored[restored["beta"] == 32].groupby("lambda")["im"].mean()
    assert at_32.loc[8.0] > at_32.loc[2.0] > 0.05  # more λ, more information kept


def test_fixed_points_satisfy_lemma_4_2(fixed_point_grid):
    assert (fixed_point_grid["residual"] < 1e-6).all()


def test_contraction_rate_is_at_least_one_over_beta(instance):
    """‖B_t‖₂ at λ = 0 shrinks asymptotically by a factor ≤ 1/β per iteration (Theorem 3.2)."""
    traces = L.contraction_traces(
        instance, m=4, betas=[2, 4, 8], lambdas=[0], restarts=3, iterations=40, seed=6
    )
    for (beta, _), trace in traces.groupby(["beta", "restart"]):
        norms = trace.sort_values("iteration")["b_norm"].to_numpy()
        late = norms[20:][norms[20:] > 1e-250]
        ratios = late[1:] / late[:-1]
        assert ratios.max() <= (1.0 / beta) * (1 + 1e-6), (beta, ratios)
        assert norms[-1] < norms[0] * beta**-30


# ---- AdamW ------------------------------------------------------------------------------------


def test_batched_adamw_equals_independent_torch_adamw_runs(instance):
    """One batched run is the same as an independent torch.optim.AdamW run per entry."""
    beta = torch.tensor([1.0, 8.0], dtype=DTYPE)
    lam = torch.tensor([0.0, 4.0], dtype=DTYPE)
    init = L.initial_params(instance, m=4, restarts=2, seed=8)
    settings = {"steps": 25, "lr": 1e-2, "weight_decay": 0.01, "grad_clip": 1.0}
    batched = L.adamw(instance, init, beta, lam, **settings)
    for i in range(2):
        alone = L.adamw_reference(instance, init.select(slice(i, i + 1)), beta[i].item(),
                                  lam[i].item(), **settings)  # fmt: skip
        torch.testing.assert_close(batched.params.a[i], alone.a[0], rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(batched.params.b[i], alone.b[0], rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(batched.params.sigma_z[i], alone.sigma_z[0], rtol=1e-6,
                                   atol=1e-8)  # fmt: skip


def test_gradients_in_blocks_equal_one_batch(instance):
    """AdamW evaluates its gradients GRADIENT_BLOCK entries at a time, a partial block included;
    the result must not depend on that split."""
    entries = 2 * L.GRADIENT_BLOCK + 3
    grid = L.grid_entries(instance, 4, [1.0, 4.0, 16.0], [0.0, 2.0, 8.0], restarts=4, seed=13)
    assert len(grid.beta) >= entries
    init = grid.init.select(slice(0, entries))
    tensors = [
        init.a,
        init.b,
        L._raw_from_cholesky(torch.linalg.cholesky(init.sigma_z)),
        L._raw_from_cholesky(torch.linalg.cholesky(init.sigma_w)),
    ]
    beta, lam = grid.beta[:entries], grid.lam[:entries]
    ops = L._Operators(instance)
    blocked_loss, blocked = L._blockwise_loss_and_gradients(ops, tensors, beta, lam)
    whole_loss, whole = L.cholesky_loss_and_gradients(ops, *tensors, beta, lam)
    torch.testing.assert_close(blocked_loss, whole_loss, rtol=1e-12, atol=1e-12)
    for part, full in zip(blocked, whole, strict=True):
        torch.testing.assert_close(part, full, rtol=1e-10, atol=1e-12)


def test_adamw_collapses_and_approaches_stationarity():
    instance = L.random_instance(n=12, s=2, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=9)
    grid = L.grid_entries(instance, 3, [1.0, 8.0], [0.0, 4.0], restarts=3, seed=10)
    beta, lam, init = grid.beta, grid.lam, grid.init
    short = L.adamw(instance, init, beta, lam, steps=300, lr=1e-2, weight_decay=0.0, grad_clip=None)
    long = L.adamw(instance, init, beta, lam, steps=3000, lr=1e-2, weight_decay=0.0, grad_clip=None)
    table = L.metrics_table(instance, long.params, beta, lam)
    table["beta"], table["lambda"] = beta.numpy(), lam.numpy()
    collapsed = table[(table["beta"] == 8) & (table["lambda"] == 0)]
    assert (collapsed["im"] < 1e-3).all() and (collapsed["sap"] < 1e-3).all()
    assert (table[table["lambda"] == 4]["im"] > 0.05).all()
    early = L.stationarity_residual(instance, short.params, beta, lam)
    late = L.stationarity_residual(instance, long.params, beta, lam)
    assert torch.all(late < early) and late.median() < 0.02


def test_adamw_stops_converged_entries():
    instance = L.random_instance(n=10, s=2, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=11)
    grid = L.grid_entries(instance, 3, [4.0], [0.0, 4.0], restarts=2, seed=12)
    beta, lam, init = grid.beta, grid.lam, grid.init
    result = L.adamw(
        instance,
        init,
        beta,
        lam,
        steps=4000,
        lr=1e-2,
        weight_decay=0.0,
        grad_clip=None,
        tol=1e-9,
        check_every=100,
    )
    assert result.converged.any()
    assert (result.iterations[result.converged] < 4000).all()
    assert torch.isfinite(result.params.b).all()


# ---- metrics from the joint covariance ------------------------------------------------------


def test_coupling_metrics_on_hand_made_correlations():
    s = np.array([[0.9, 0.1], [0.5, 0.2], [0.0, 0.6]])  # 3 latents × 2 factors
    assert L.sap_from_correlations(s) == pytest.approx(((0.9 - 0.5) + (0.6 - 0.2)) / 2)
    mi = L.mutual_information_from_correlations(s)
    np.testing.assert_allclose(mi, -0.5 * np.log(1 - s))
    # one-to-one: latent 0 ↔ factor 0 and latent 2 ↔ factor 1
    assert L.im_from_mutual_information(mi) == pytest.approx(mi[0, 0] + mi[2, 1])


def coupling_params(instance, b):
    m = b.shape[0]
    b = torch.as_tensor(b, dtype=DTYPE)[None]
    sigma_w = 1e-5 * torch.eye(m, dtype=DTYPE)[None]
    a, sigma_z = L.decoder_optimum(instance, b, sigma_w)
    return L.Params(a, b, sigma_z, sigma_w)


def test_identity_zero_and_duplicate_couplings():
    gamma = np.eye(3)
    instance = L.Instance(gamma=gamma, factor_var=np.array([1.0, 0.5, 0.25]), noise_var=1e-4)
    identity = coupling_params(instance, np.eye(3))  # X_i = V_i + tiny noise
    s = L.squared_correlations(instance, identity)[0]
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-3)
    assert s[~np.eye(3, dtype=bool)].max() < 1e-12
    assert L.sap_from_correlations(s) == pytest.approx(1.0, abs=1e-3)
    mi = L.mutual_information_from_correlations(s)
    assert L.im_from_mutual_information(mi) == pytest.approx(np.trace(mi))

    zero = coupling_params(instance, np.zeros((3, 3)))
    s = L.squared_correlations(instance, zero)[0]
    assert np.all(s == 0) and L.sap_from_correlations(s) == 0
    assert L.im_from_mutual_information(L.mutual_information_from_correlations(s)) == 0

    duplicate = coupling_params(instance, np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]))
    s = L.squared_correlations(instance, duplicate)[0]
    gaps = np.sort(s, axis=0)[-1] - np.sort(s, axis=0)[-2]
    assert gaps[0] == pytest.approx(0.0, abs=1e-9)  # factor 0 read equally by two latents
    assert gaps[1] == pytest.approx(1.0, abs=1e-3)
