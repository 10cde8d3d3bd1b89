"""The linear λβ-VAE in closed form: the oracle of both solvers, the one knob c = λ/(β − 1), the
phase boundary, rotations, and β = 1 with λ > 0, which has no minimiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lambdabeta import linear as L
from lambdabeta.linear import closed_form as cf
from lambdabeta.linear.coupling import sap_from_correlations, squared_correlations
from lambdabeta.linear.objective import loss, objective_terms, stationarity_residual

M = 5
# μ = 34.44, 10.36, 6.81, then the noise variance 0.05: three factor directions
INSTANCE = L.random_instance(20, 3, 0.05, (0.1, 1.0), seed=3)
MU_1 = float(cf.sigma_y_spectrum(INSTANCE)[0][0])


def fixed_point(beta, lam, restarts=3, tol=1e-12, max_iter=200_000):
    starts = L.initial_params(INSTANCE, M, restarts, 1, init="authors", method="fixed_point")
    return L.run_fixed_point(
        INSTANCE,
        starts.b,
        starts.sigma_w,
        torch.full((restarts,), float(beta), dtype=torch.float64),
        torch.full((restarts,), float(lam), dtype=torch.float64),
        max_iter=max_iter,
        tol=tol,
    )


def singular_values(b):
    return torch.linalg.svdvals(b).numpy()


BOUNDARY = 1 + 2 * 0.05 * MU_1  # β*(λ = 0.05) = 4.44
POINTS = [
    (3.0, 0.5),  # three directions
    (2.0, 0.05),  # two
    (4.0, 0.05),  # one, below the boundary
    (0.95 * BOUNDARY, 0.05),  # near it, below
    (1.05 * BOUNDARY, 0.05),  # near it, above: collapsed
    (32.0, 2.0),
    (8.0, 0.0),  # Theorem 3.2
]


@pytest.mark.parametrize(("beta", "lam"), POINTS)
def test_the_fixed_point_converges_to_the_closed_form(beta, lam):
    exact = cf.stationary_terms(INSTANCE, beta, lam, M)
    result = fixed_point(beta, lam)
    assert result.converged.all() and result.attained.all()
    terms = objective_terms(INSTANCE, result.params)
    for name in ("nll", "kl", "l2"):
        np.testing.assert_allclose(terms[name].numpy(), exact[name], rtol=1e-6, atol=1e-9)
    # b_i = sqrt((1 − w_i)/μ_i) need not fall with μ_i: compare them in descending order
    expected = np.sort(cf.stationary_spectrum(INSTANCE, beta, lam, M).b)[::-1]
    for b in singular_values(result.params.b):
        np.testing.assert_allclose(b, expected, rtol=1e-6, atol=1e-6)
    assert (L.information_rank(INSTANCE, result.params) == exact["rank"]).all()


def test_the_closed_form_is_stationary_and_its_terms_are_its_parameters_terms():
    for beta, lam in POINTS:
        point = cf.stationary_point(INSTANCE, beta, lam, M)
        beta_t, lam_t = (
            torch.tensor([beta], dtype=torch.float64),
            torch.tensor([lam], dtype=torch.float64),
        )
        # the conditioning of Σ_Z (eigenvalues 0.05 … 34) amplifies rounding to ~1e-9 in Σ_W
        assert float(stationarity_residual(INSTANCE, point, beta_t, lam_t)) < 1e-8
        terms = objective_terms(INSTANCE, point)
        exact = cf.stationary_terms(INSTANCE, beta, lam, M)
        for name in ("nll", "kl", "l2"):
            assert float(terms[name]) == pytest.approx(exact[name], rel=1e-12, abs=1e-12)
        assert float(loss(terms, beta_t, lam_t)) == pytest.approx(exact["loss"], rel=1e-12)


def test_adamw_converges_to_the_closed_form_within_its_tolerance():
    """AdamW's iterates jitter at about lr per coordinate: after 3,000 steps at lr 10⁻² its NLL,
    KL and L2 lie within 2 % of the closed form's (the claims' AdamW tolerance is 5 %)."""
    beta, lam, restarts = 4.0, 0.5, 2
    grid = L.grid_entries(INSTANCE, M, [beta], [lam], restarts, seed=2, method="adamw")
    result = L.run_adamw(
        INSTANCE, grid.init, grid.beta, grid.lam, steps=3000, lr=1e-2, weight_decay=0.0,
        grad_clip=None, report="best",
    )  # fmt: skip
    terms = objective_terms(INSTANCE, result.params)
    exact = cf.stationary_terms(INSTANCE, beta, lam, M)
    for name in ("nll", "kl", "l2"):
        np.testing.assert_allclose(terms[name].numpy(), exact[name], rtol=0.02)


def test_every_stationary_quantity_depends_on_c_alone():
    along = [(3.0, 0.5), (5.0, 1.0), (9.0, 2.0)]  # c = 0.25
    exact = [cf.stationary_terms(INSTANCE, b, v, M) for b, v in along]
    for name in ("nll", "kl", "l2", "rank"):
        assert exact[0][name] == pytest.approx(exact[1][name]) == pytest.approx(exact[2][name])
    assert exact[0]["nll"] == pytest.approx(3.95476711, abs=1e-8)  # the fixed point's, by hand
    assert exact[0]["kl"] == pytest.approx(2.85841014, abs=1e-8)
    solved = [objective_terms(INSTANCE, fixed_point(b, v, restarts=1).params) for b, v in along]
    for name in ("nll", "kl", "l2"):
        values = [float(t[name]) for t in solved]
        assert max(values) - min(values) < 1e-8


def test_directions_die_one_by_one_at_their_predicted_beta():
    lam = 0.05
    betas = cf.predicted_critical_betas(INSTANCE, M, lam)
    assert betas[0] == pytest.approx(BOUNDARY)
    for beta, rank in [(1.2, 3), (1.5, 3), (2.0, 2), (3.0, 1), (4.4, 1), (4.5, 0)]:
        assert cf.stationary_terms(INSTANCE, beta, lam, M)["rank"] == rank
        assert (L.information_rank(INSTANCE, fixed_point(beta, lam).params) == rank).all()


def test_the_onset_is_continuous():
    """‖B‖₂² ∝ β* − β just below the boundary, and B = 0 above it."""
    below = [cf.stationary_spectrum(INSTANCE, f * BOUNDARY, 0.05, M).b[0] for f in (0.8, 0.95)]
    assert below[0] / below[1] == pytest.approx(math.sqrt(0.2 / 0.05), rel=0.02)
    assert cf.stationary_spectrum(INSTANCE, 1.001 * BOUNDARY, 0.05, M).b[0] == 0


def test_the_loss_does_not_see_a_rotation_of_the_latents_but_sap_does():
    beta, lam = 2.0, 0.5
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((M, M)))
    plain = cf.stationary_point(INSTANCE, beta, lam, M)
    rotated = cf.stationary_point(INSTANCE, beta, lam, M, rotation=rotation)
    beta_t, lam_t = (
        torch.tensor([beta], dtype=torch.float64),
        torch.tensor([lam], dtype=torch.float64),
    )
    loss_plain = float(loss(objective_terms(INSTANCE, plain), beta_t, lam_t))
    loss_rotated = float(loss(objective_terms(INSTANCE, rotated), beta_t, lam_t))
    assert loss_rotated == pytest.approx(loss_plain, rel=1e-12)
    sap = [
        float(sap_from_correlations(squared_correlations(INSTANCE, p))[0]) for p in (plain, rotated)
    ]
    assert abs(sap[0] - sap[1]) > 0.05


def test_a_target_information_gives_the_lambda_of_each_beta():
    for information in (0.5, 2.0, 4.0):
        c = cf.c_for_information(INSTANCE, M, information)
        for beta in (2.0, 8.0):
            lam = cf.lambda_for_information(INSTANCE, M, beta, information)
            assert lam == pytest.approx((beta - 1) * c)
            assert cf.stationary_terms(INSTANCE, beta, lam, M)["information"] == pytest.approx(
                information, rel=1e-10
            )


def test_beta_one_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"needs β > 1.*no minimiser"):
        cf.stationary_point(INSTANCE, 1.0, 2.0, M)


def test_beta_one_with_lambda_has_no_minimiser_and_the_fixed_point_says_so():
    """The NLL keeps falling by a steady amount per decade of iterations (the loss creeping to
    its infimum): every restart is marked not attained, wherever the stopping rule stopped."""
    creeping = fixed_point(1.0, 2.0, restarts=4, tol=1e-6, max_iter=20_000)
    assert not creeping.attained.any()
    assert (creeping.nll_per_decade < -1).all() and (creeping.kl_per_decade > 1).all()
    settled = fixed_point(1.5, 2.0, restarts=4, tol=1e-6, max_iter=20_000)
    assert settled.attained.all()
    assert (settled.nll_per_decade.abs() < 0.1).all()


def test_the_phase_study_measures_the_predicted_boundary():
    solver = L.PhaseSolver(
        tol=1e-10, max_iter=50_000, seed=0, init="authors", scan=(1e-3, 1e3, 2), resolution=2e-3
    )
    table = L.measured_critical_betas(INSTANCE, 3, [0.05, 0.5], solver)
    assert len(table) == 2 * 3
    assert (table["relative_difference"].abs() < 2e-3).all(), table
    rays = L.rays(INSTANCE, 3, [0.25], [1.5, 3.0], 1, solver)
    assert rays["nll"].max() - rays["nll"].min() < 1e-8
