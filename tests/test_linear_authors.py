"""The authors' protocol on their own n = 50 instance reproduces their published means.

The instance is ``linear_instance_n50.npz`` of the shared reference folder (Γ and Σ_V of the
paper's n = 50 runs, σ² = 0.05); the starts are drawn as the pipeline draws them for that dims
entry with the default seed.
"""

from __future__ import annotations

import math

import pytest
from linear_helpers import REFERENCE, needs_reference

from lambdabeta import linear as L

pytestmark = needs_reference

N50 = L.Dims(50, 10, 5)
# the authors' published means over 50 restarts on this instance
FIXED_POINT_BETA_1 = {"nll": 3.931, "sap": 0.144, "im": 1.024}  # β = 1, λ = 0
ADAMW_BETA_4_LAMBDA_2_NLL = 2.825


@pytest.fixture(scope="module")
def instance() -> L.Instance:
    return L.load_instance(str(REFERENCE / "linear_instance_n50.npz"), noise_var=0.05)


def authors_settings(**changes) -> L.LinearSettings:
    """The paper config's linear protocol for n = 50 (the schema's defaults plus the authors'
    n = 50 step budget and clip thresholds)."""
    section = {
        "dims": [N50.to_dict()],
        "restarts": 50,
        "betas": [1],
        "lambdas": [0],
        "methods": ["fixed_point", "adamw"],
        "adamw": {"steps": {50: 30_000}, "grad_clip": {50: [1.0, 2.0]}},
    }
    return L.LinearSettings.from_config(section | changes)


def test_fixed_point_at_beta_1_matches_the_published_means(instance):
    """At β = 1, λ = 0 the optimum is a flat family and the start decides where a restart ends,
    so only the mean over restarts can be compared, within its sampling error. Ours and the
    published mean are both means of 50 independent restarts, so their difference has standard
    error s·√(2/50), s the spread over our restarts; the tolerance is 3 of those. (Over 500
    restarts the pipeline's means are NLL 3.765, SAP 0.137, I_m 0.992: the published values lie
    about one standard error of a 50-restart mean away.)"""
    job = authors_settings().study_job(N50.name, "fixed_point")
    table = L.run_study(instance, job)
    assert len(table) == 50 and table["converged"].all()
    for metric, published in FIXED_POINT_BETA_1.items():
        mean, spread = table[metric].mean(), table[metric].std()
        tolerance = 3 * spread * math.sqrt(2 / 50)
        assert abs(mean - published) < tolerance, (metric, mean, published, tolerance)


def test_scaled_normal_starts_keep_less_information_at_beta_1(instance):
    """The start distribution matters where the optimum is not unique: from the scaled-normal
    starts the same fixed point ends far from the published β = 1 means (NLL ≈ 9.03)."""
    job = authors_settings(init="scaled_normal").study_job(N50.name, "fixed_point")
    table = L.run_study(instance, job)
    assert table["nll"].mean() > FIXED_POINT_BETA_1["nll"] + 3
    assert table["im"].mean() < FIXED_POINT_BETA_1["im"] - 0.2


@pytest.mark.slow
def test_adamw_at_beta_4_lambda_2_matches_the_published_nll(instance):
    """At β = 4, λ = 2 the NLL of the optimum is unique, so every restart must reach the
    published mean NLL (within 0.05) under the authors' AdamW protocol: 30,000 steps of
    lr 10⁻³ with per-group clipping, Σ = LLᵀ + εI, the lowest-loss iterate reported. Three
    restarts instead of 50 (the restarts only differ in their start; 3 × 30,000 steps take
    about 45 s on one core)."""
    settings = authors_settings(restarts=3, betas=[4], lambdas=[2])
    job = settings.study_job(N50.name, "adamw")
    assert job.solver.steps == 30_000 and job.solver.grad_clip == (1.0, 2.0)
    table = L.run_study(instance, job)
    assert (abs(table["nll"] - ADAMW_BETA_4_LAMBDA_2_NLL) < 0.05).all(), table["nll"].tolist()
