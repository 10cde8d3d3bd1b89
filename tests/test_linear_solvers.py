"""Both optimisers: fixed-point iteration (Lemma 4.2, Theorem 3.2) and batched AdamW."""

from __future__ import annotations

import pytest
import torch
from linear_helpers import small_instance, total_loss

from lambdabeta import linear as L

# every test here runs or compares optimisation trajectories, so CI runs them under both kernels
pytestmark = pytest.mark.trains

DTYPE = torch.float64


@pytest.fixture(scope="module")
def instance() -> L.Instance:
    return small_instance()


# ---- fixed-point iteration --------------------------------------------------------------------


def test_fast_iteration_equals_the_lemma_formulas(instance):
    """The reduced (m + s)-dimensional iteration reproduces the textbook one exactly."""
    grid = L.grid_entries(instance, 4, [1.0, 4.0, 16.0], [0.0, 2.0], restarts=2, seed=3)
    beta, lam, init = grid.beta, grid.lam, grid.init
    fast = L.run_fixed_point(instance, init.b, init.sigma_w, beta, lam, max_iter=25, tol=0.0)
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


@pytest.fixture(scope="module", params=["scaled_normal", "authors"])
def fixed_point_grid(instance, request):
    return L.run_grid(
        instance,
        "fixed_point",
        m=4,
        betas=[1, 4, 8, 16, 32],
        lambdas=[0, 2, 8],
        restarts=6,
        seed=5,
        solver=L.FixedPointSettings(max_iter=100_000, tol=1e-6),
        init=request.param,
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


@pytest.mark.parametrize("init", ["scaled_normal", "authors"])
def test_contraction_rate_is_at_least_one_over_beta(instance, init):
    """‖B_t‖₂ at λ = 0 shrinks asymptotically by a factor ≤ 1/β per iteration (Theorem 3.2)."""
    traces = L.contraction_traces(
        instance, m=4, betas=[2, 4, 8], lambdas=[0], restarts=3, iterations=40, seed=6, init=init
    )
    for (beta, _), trace in traces.groupby(["beta", "restart"]):
        norms = trace.sort_values("iteration")["b_norm"].to_numpy()
        late = norms[20:][norms[20:] > 1e-250]
        ratios = late[1:] / late[:-1]
        assert ratios.max() <= (1.0 / beta) * (1 + 1e-6), (beta, ratios)
        assert norms[-1] < norms[0] * beta**-30


# ---- AdamW ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameterization", "grad_clip", "init"),
    [
        (L.LogCholesky(), 1.0, "scaled_normal"),
        (L.ProjectedCholesky(5e-5), (1.0, 2.0), "authors"),
    ],
    ids=["log_cholesky", "authors"],
)
def test_batched_adamw_equals_independent_torch_adamw_runs(
    instance, parameterization, grad_clip, init
):
    """One batched run is the same as an independent torch.optim.AdamW run per entry (with
    autograd, clip_grad_norm_ per clip group and the projection of the factors)."""
    beta = torch.tensor([1.0, 8.0], dtype=DTYPE)
    lam = torch.tensor([0.0, 4.0], dtype=DTYPE)
    start = L.initial_params(instance, m=4, restarts=2, seed=8, init=init, method="adamw")
    settings = {"steps": 25, "lr": 1e-2, "weight_decay": 0.01, "grad_clip": grad_clip}
    batched = L.run_adamw(instance, start, beta, lam, **settings, parameterization=parameterization)
    for i in range(2):
        alone = L.adamw_reference(instance, start.select(slice(i, i + 1)), beta[i].item(),
                                  lam[i].item(), **settings,
                                  parameterization=parameterization)  # fmt: skip
        torch.testing.assert_close(batched.params.a[i], alone.a[0], rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(batched.params.b[i], alone.b[0], rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(batched.params.sigma_z[i], alone.sigma_z[0], rtol=1e-6,
                                   atol=1e-8)  # fmt: skip
        torch.testing.assert_close(batched.params.sigma_w[i], alone.sigma_w[0], rtol=1e-6,
                                   atol=1e-8)  # fmt: skip


def test_gradients_in_blocks_equal_one_batch(instance):
    """AdamW evaluates its gradients GRADIENT_BLOCK entries at a time, a partial block included;
    the result must not depend on that split."""
    entries = 2 * L.GRADIENT_BLOCK + 3
    grid = L.grid_entries(instance, 4, [1.0, 4.0, 16.0], [0.0, 2.0, 8.0], restarts=4, seed=13)
    assert len(grid.beta) >= entries
    init = grid.init.select(slice(0, entries))
    for chol in (L.LogCholesky(), L.ProjectedCholesky(5e-5)):
        tensors = [
            init.a,
            init.b,
            chol.raw_from_covariance(init.sigma_z),
            chol.raw_from_covariance(init.sigma_w),
        ]
        beta, lam = grid.beta[:entries], grid.lam[:entries]
        ops = L.Operators(instance)
        blocked_loss, blocked = L.blockwise_loss_and_gradients(chol, ops, tensors, beta, lam)
        whole_loss, whole = chol.loss_and_gradients(ops, *tensors, beta, lam)
        torch.testing.assert_close(blocked_loss, whole_loss, rtol=1e-12, atol=1e-12)
        for part, full in zip(blocked, whole, strict=True):
            torch.testing.assert_close(part, full, rtol=1e-10, atol=1e-12)


def test_adamw_collapses_and_approaches_stationarity():
    instance = L.random_instance(n=12, s=2, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=9)
    grid = L.grid_entries(instance, 3, [1.0, 8.0], [0.0, 4.0], restarts=3, seed=10)
    beta, lam, init = grid.beta, grid.lam, grid.init
    plain = {"lr": 1e-2, "weight_decay": 0.0, "grad_clip": None}
    short = L.run_adamw(instance, init, beta, lam, steps=300, **plain)
    long = L.run_adamw(instance, init, beta, lam, steps=3000, **plain)
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
    result = L.run_adamw(
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


def test_best_report_returns_the_lowest_loss_iterate():
    """With a learning rate far too large the loss oscillates: ``report="best"`` returns the
    iterate of lowest loss among all those visited, and says after how many steps it was."""
    instance = L.random_instance(n=10, s=2, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=14)
    grid = L.grid_entries(instance, 3, [1.0, 8.0], [0.0, 2.0], restarts=2, seed=15,
                          init="authors", method="adamw")  # fmt: skip
    beta, lam, start = grid.beta, grid.lam, grid.init
    chol = L.ProjectedCholesky(5e-5)
    settings = {"lr": 0.3, "weight_decay": 0.01, "grad_clip": (1.0, 2.0), "parameterization": chol}
    best = L.run_adamw(instance, start, beta, lam, steps=40, report="best", **settings)
    losses = []
    for steps in range(41):  # the loss of the iterate after each number of steps
        last = L.run_adamw(instance, start, beta, lam, steps=steps, report="last", **settings)
        losses.append(total_loss(instance, last.params, beta, lam))
        if steps == 40:
            torch.testing.assert_close(last.iterations, best.iterations)
    losses = torch.stack(losses)  # (steps + 1, entries)
    lowest = losses.argmin(0)
    assert torch.equal(best.reported_iteration, lowest)
    assert (lowest < 40).any(), "the test needs an entry whose best iterate is not the last"
    torch.testing.assert_close(
        total_loss(instance, best.params, beta, lam), losses.min(0).values, rtol=1e-9, atol=0
    )
