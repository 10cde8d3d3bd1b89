"""What a solution keeps of the factors (SAP, I_m, I(X; V), distances from the trivial solution)
and the per-restart table of a study."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from linear_helpers import small_instance

from lambdabeta import linear as L

DTYPE = torch.float64


def test_coupling_metrics_on_hand_made_correlations():
    s = np.array([[0.9, 0.1], [0.5, 0.2], [0.0, 0.6]])  # 3 latents × 2 factors
    assert L.sap_from_correlations(s) == pytest.approx(((0.9 - 0.5) + (0.6 - 0.2)) / 2)
    mi = L.mutual_information_from_correlations(s)
    np.testing.assert_allclose(mi, -0.5 * np.log(1 - s))
    # one-to-one: latent 0 ↔ factor 0 and latent 2 ↔ factor 1
    assert L.im_from_mutual_information(mi) == pytest.approx(mi[0, 0] + mi[2, 1])
    batch = np.stack([s, s[::-1]])  # a batch of two entries keeps its shape
    np.testing.assert_allclose(L.sap_from_correlations(batch), [0.4, 0.4])
    assert L.im_from_mutual_information(L.mutual_information_from_correlations(batch)).shape == (2,)


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


def joint_covariance_information(instance, b, sigma_w):
    """I(X; V) from the (m + s) × (m + s) joint covariance of (X, V), in numpy:
    ½ log(|Σ_X| |Σ_V| / |Σ_(X,V)|) — another formula than the conditional-covariance one."""
    sigma_v = np.diag(instance.factor_var)
    sigma_x = b @ instance.sigma_y() @ b.T + sigma_w
    cross = b @ instance.gamma @ sigma_v
    joint = np.block([[sigma_x, cross], [cross.T, sigma_v]])
    logdet = [np.linalg.slogdet(x)[1] for x in (sigma_x, sigma_v, joint)]
    return 0.5 * (logdet[0] + logdet[1] - logdet[2])


def test_total_mutual_information_matches_the_joint_covariance():
    instance = small_instance()
    starts = L.initial_params(instance, m=4, restarts=3, seed=20, init="authors")
    got = L.total_mutual_information(instance, starts).numpy()
    for k in range(3):
        b, sigma_w = starts.b[k].numpy(), starts.sigma_w[k].numpy()
        assert got[k] == pytest.approx(joint_covariance_information(instance, b, sigma_w))
    assert np.all(got > 0)


def test_total_mutual_information_of_one_latent_is_the_gaussian_formula():
    """One latent and one factor: I(X; V) = −½ log(1 − ρ²), ρ² from a Monte-Carlo sample."""
    instance = L.Instance(gamma=np.array([[1.0], [0.5]]), factor_var=np.array([0.7]),
                          noise_var=0.2)  # fmt: skip
    b = torch.tensor([[[0.8, -0.3]]], dtype=DTYPE)
    sigma_w = torch.tensor([[[0.1]]], dtype=DTYPE)
    params = L.Params(torch.zeros(1, 2, 1, dtype=DTYPE), b, torch.eye(2, dtype=DTYPE)[None],
                      sigma_w)  # fmt: skip
    rng = np.random.default_rng(0)
    v = rng.normal(0.0, np.sqrt(0.7), 400_000)
    y = instance.gamma[:, 0][None] * v[:, None] + rng.normal(0.0, np.sqrt(0.2), (len(v), 2))
    x = y @ b[0, 0].numpy() + rng.normal(0.0, np.sqrt(0.1), len(v))
    rho2 = np.corrcoef(x, v)[0, 1] ** 2
    got = L.total_mutual_information(instance, params).item()
    assert got == pytest.approx(-0.5 * np.log(1 - rho2), rel=1e-2)
    # with one latent and one factor, I(X; V) is the single entry of the MI matrix
    s = L.squared_correlations(instance, params)
    assert got == pytest.approx(L.mutual_information_from_correlations(s)[0, 0, 0], rel=1e-12)


def test_distances_vanish_at_the_trivial_solution_only():
    instance = small_instance()
    n, m = instance.n, 4
    trivial = L.Params(
        a=torch.zeros(1, n, m, dtype=DTYPE),
        b=torch.zeros(1, m, n, dtype=DTYPE),
        sigma_z=torch.as_tensor(instance.sigma_y(), dtype=DTYPE)[None],
        sigma_w=torch.eye(m, dtype=DTYPE)[None],
    )
    distances = L.distances_from_trivial(instance, trivial)
    assert set(distances) == {"a_norm", "b_norm", "sigma_w_dist", "sigma_z_dist"}
    for value in distances.values():
        assert value.item() == 0.0
    assert L.total_mutual_information(instance, trivial).item() == pytest.approx(0.0, abs=1e-14)
    moved = L.Params(trivial.a + 1.0, trivial.b, 2.0 * trivial.sigma_z, 4.0 * trivial.sigma_w)
    distances = L.distances_from_trivial(instance, moved)
    assert distances["a_norm"].item() == pytest.approx(np.sqrt(n * m))
    assert distances["sigma_w_dist"].item() == pytest.approx(3.0)  # ‖3I‖_F / √m
    assert distances["sigma_z_dist"].item() == pytest.approx(1.0)


def test_collapsed_solutions_are_the_trivial_one_and_keep_no_information():
    instance = small_instance()
    table = L.run_grid(instance, "fixed_point", m=4, betas=[1, 8], lambdas=[0, 4], restarts=3,
                       seed=21, solver=L.FixedPointSettings(), init="authors")  # fmt: skip
    expected = {"nll", "kl", "l2", "loss", "sap", "im", "mi_total", "a_norm", "b_norm",
                "sigma_w_dist", "sigma_z_dist", "residual", "iterations", "reported_iteration",
                "converged"}  # fmt: skip
    assert expected <= set(table.columns)
    collapsed = table[(table["beta"] == 8) & (table["lambda"] == 0)]
    for column in ("mi_total", "a_norm", "b_norm", "sigma_w_dist", "sigma_z_dist"):
        assert (collapsed[column] < 1e-4).all(), column
    kept = table[table["lambda"] == 4]
    assert (kept["mi_total"] > 0.1).all() and (kept["sigma_z_dist"] > 1e-3).all()
    # every pair holds at most I(X; V) (data processing), so I_m ≤ min(m, s)·I(X; V)
    assert (table["im"] <= 3 * table["mi_total"] * (1 + 1e-9)).all()
    assert (table["reported_iteration"] == table["iterations"]).all()


def test_run_study_writes_dims_and_uses_the_jobs_settings():
    instance = small_instance()
    job = L.StudyJob(
        dims=L.Dims(24, 4, 3),
        method="adamw",
        betas=(1.0, 8.0),
        lambdas=(0.0,),
        restarts=2,
        init="authors",
        seed=0,
        solver=L.AdamWRun(
            steps=30,
            lr=1e-2,
            weight_decay=0.01,
            grad_clip=(1.0, 2.0),
            parameterization="authors",
            report="best",
            tol=0.0,
            epsilon=5e-5,
        ),
    )
    table = L.run_study(instance, job)
    assert list(table.columns[:4]) == ["n", "m", "s", "method"]
    assert (table[["n", "m", "s"]].to_numpy() == [24, 4, 3]).all()
    assert len(table) == 4 and (table["iterations"] == 30).all()
    assert (table["reported_iteration"] <= 30).all()
