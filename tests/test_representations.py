"""The two representations a model is scored on, the encoder mean μ and one sample z = μ + σ·ε:
binned metrics of μ do not see a latent's scale, those of z fall with it; in the linear model the
mean's metrics stay those of the start while B collapses; the claims that tell them apart."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from lambdabeta import claims as c
from lambdabeta import linear as L
from lambdabeta import metrics
from lambdabeta.evaluation.passes import sampled_codes
from lambdabeta.linear.jobs import FixedPointSettings
from lambdabeta.statistics import NOT_REPRODUCED, NOT_RUN, REPRODUCED

BINS = 20


def synthetic_encoder(scale: float, samples: int = 10_000, seed: int = 0):
    """10 latents of 3 factors (4, 5 and 6 classes): latents 0-2 carry one factor each with unit
    posterior noise, 3-9 nothing; the means are multiplied by ``scale`` (a collapsing gain) while
    the posterior stays N(μ, 1)."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, k, samples) for k in (4, 5, 6)], axis=1)
    means = np.zeros((samples, 10))
    means[:, :3] = factors * 2.0 + rng.normal(0, 0.1, (samples, 3))
    means[:, 3:] = rng.normal(0, 0.01, (samples, 7))
    return means * scale, np.zeros_like(means), factors


def mig(codes, factors):
    return metrics.mutual_information_gap(codes, factors, BINS)


def test_mean_mig_ignores_a_collapsing_scale_while_sampled_mig_falls_to_the_bias():
    means, logvars, factors = synthetic_encoder(1.0)
    small, _, _ = synthetic_encoder(1e-3)
    assert mig(small, factors) == pytest.approx(mig(means, factors), abs=1e-12)
    informative = mig(sampled_codes(means, logvars, seed=0), factors)
    collapsed = mig(sampled_codes(small, logvars, seed=0), factors)
    bias = metrics.plug_in_bias(BINS, np.array([4, 5, 6]), len(factors))
    entropies = metrics.discrete_entropy(factors)
    assert informative > 0.5
    assert collapsed < np.mean(bias / entropies)  # at the estimator's bias, not at μ's 0.9
    im = metrics.im_score(sampled_codes(small, logvars, seed=0), factors, BINS)
    assert im < 2 * bias.sum()


def test_the_sampled_codes_are_seeded_and_use_the_posterior_scale():
    means, logvars, _ = synthetic_encoder(1.0, samples=1000)
    first, again = sampled_codes(means, logvars, 3), sampled_codes(means, logvars, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, sampled_codes(means, logvars, 4))
    assert np.std(first - means) == pytest.approx(1.0, rel=0.05)
    sharp = sampled_codes(means, np.full_like(logvars, np.log(1e-6)), 3)
    assert np.abs(sharp - means).max() < 1e-2


def test_the_linear_mean_metrics_stay_the_starts_while_b_collapses():
    instance = L.make_instance(30, 6, 3, 0.05, (0.1, 1.0), seed=0)
    table = L.run_grid(
        instance, "fixed_point", 6, [4, 32], [0], restarts=3, seed=5,
        solver=FixedPointSettings(100_000, 1e-8), init="authors",
    )  # fmt: skip
    assert (table["sap"] < 1e-10).all() and (table["im"] < 1e-10).all()
    by_beta = table.set_index(["restart", "beta"])
    for metric in ("sap_mean", "im_mean"):
        at_4 = by_beta.xs(4.0, level="beta")[metric]
        at_32 = by_beta.xs(32.0, level="beta")[metric]
        np.testing.assert_allclose(at_4, at_32, atol=1e-6)
        np.testing.assert_allclose(
            at_4, by_beta.xs(4.0, level="beta")[f"{metric}_start"], atol=1e-6
        )
    assert (table["im_mean"] > 0.5).all()  # far from collapsed


def test_the_mean_correlations_are_the_sampled_ones_without_the_encoder_noise():
    instance = L.make_instance(12, 3, 2, 0.05, (0.1, 1.0), seed=1)
    starts = L.initial_params(instance, 3, 2, 0, init="scaled_normal")
    sampled = L.squared_correlations(instance, starts)
    mean = L.squared_correlations(instance, starts, representation="mean")
    ops = L.Operators(instance)
    signal = torch.diagonal(starts.b @ ops.sigma_y_times(starts.b.mT), 0, -2, -1).numpy()
    noise = torch.diagonal(starts.sigma_w, 0, -2, -1).numpy()
    np.testing.assert_allclose(sampled, mean * (signal / (signal + noise))[..., None])
    scaled = dataclasses.replace(starts, b=starts.b * 1e-6)
    np.testing.assert_allclose(L.squared_correlations(instance, scaled, "mean"), mean, rtol=1e-9)


# ---- the claims ---------------------------------------------------------------------------------

SETTINGS = c.ClaimSettings()


def collapsed_deep_metrics(sampled_mig: float, seeds=(0, 1, 2)) -> pd.DataFrame:
    """Stabilized models at β = 1 and a collapsed β = 64: the mean's MIG stays, the sampled MIG
    of β = 64 is ``sampled_mig``."""
    rows = []
    for beta in (1.0, 64.0):
        for seed in seeds:
            collapsed = beta == 64
            rows.append({
                "dataset": "toy", "phase": "stabilize", "beta": beta, "lambda": 0.0, "seed": seed,
                "train_bce": 100 + beta, "recon_nll": 100 + beta, "mig": 0.05, "sap": 0.02,
                "im": 0.8, "active_latents": 0.0 if collapsed else 5.0,
                "mig_sampled": sampled_mig + 0.001 * seed if collapsed else 0.3,
                "sap_sampled": 0.0 if collapsed else 0.1,
                "im_sampled": 0.1 + 0.01 * seed if collapsed else 1.5,
                "mig_bias": 0.02, "im_bias": 0.1,
                # the permutation null of the sampled scores: chance gives MIG 0.02, I_m 0.15
                "mig_sampled_null_mean": 0.02, "mig_sampled_null_upper": 0.03,
                "im_sampled_null_mean": 0.15, "im_sampled_null_upper": 0.2,
                "mig_null_mean": 0.02, "mig_null_upper": 0.03,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_the_sampled_information_claim_passes_within_its_null_and_fails_above_it():
    row = c.deep_sampled_information_collapses(collapsed_deep_metrics(0.01), SETTINGS)[0]
    assert row["verdict"] == REPRODUCED and row["origin"] == "derived"
    assert "the encoder mean's MIG 0.05 (null 95 % point 0.03)" in row["detail"]
    assert row["error_rate"] == 0.025 and "a quarter of the level" in row["test"]
    informative = c.deep_sampled_information_collapses(collapsed_deep_metrics(0.2), SETTINGS)[0]
    assert informative["verdict"] == NOT_REPRODUCED
    # just above chance's 95 % point on every seed: not "indistinguishable from no information"
    above = c.deep_sampled_information_collapses(collapsed_deep_metrics(0.032), SETTINGS)[0]
    assert above["verdict"] != REPRODUCED
    mean_only = collapsed_deep_metrics(0.01).drop(columns=["mig_sampled", "im_sampled"])
    assert c.deep_sampled_information_collapses(mean_only, SETTINGS)[0]["verdict"] == NOT_RUN
    no_null = collapsed_deep_metrics(0.01).drop(columns=["im_sampled_null_upper"])
    assert c.deep_sampled_information_collapses(no_null, SETTINGS)[0]["verdict"] == NOT_RUN


def test_deep_claims_are_judged_per_representation():
    metrics_table = collapsed_deep_metrics(0.01)
    rows = c.deep_disentanglement_peaks(metrics_table, SETTINGS)
    assert [r["scope"] for r in rows] == ["toy (mean)", "toy (sampled)"]


def linear_rows(blind: bool) -> pd.DataFrame:
    """Collapsed fixed-point restarts at λ = 0 whose mean metrics are (or are not) the start's."""
    rows = []
    for beta in (4.0, 32.0):
        for restart in range(4):
            start = 0.1 + 0.01 * restart
            rows.append({
                "n": 8, "m": 3, "s": 2, "method": "fixed_point", "beta": beta, "lambda": 0.0,
                "restart": restart, "sap": 1e-12, "im": 1e-12, "mi_total": 1e-12,
                "sap_mean": start if blind else start * (1 + 1 / beta), "im_mean": 2 * start,
                "sap_mean_start": start, "im_mean_start": 2 * start, "mi_total_mean": 1.0,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_the_mean_metrics_blindness_claim_passes_and_fails():
    (row,) = c.linear_mean_metrics_blind_to_collapse(linear_rows(blind=True), SETTINGS)
    assert row["verdict"] == REPRODUCED and row["effect"] == 1.0
    (row,) = c.linear_mean_metrics_blind_to_collapse(linear_rows(blind=False), SETTINGS)
    assert row["verdict"] == NOT_REPRODUCED
    # and the paper's collapse claim, judged on the mean, is refuted by the same blindness
    rows = c.linear_collapse(linear_rows(blind=True), SETTINGS)
    verdicts = {r["scope"]: r["verdict"] for r in rows}
    assert verdicts == {"n8_m3_s2 fixed_point (sampled)": REPRODUCED,
                        "n8_m3_s2 fixed_point (mean)": NOT_REPRODUCED}  # fmt: skip
