"""Adaptive λ: the controller's law on a first-order plant, an adaptive finetune that resumes
bitwise and refuses other controller settings, the linear model's exact check, and the claims."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from training_helpers import random_binary_images, tiny_settings

from lambdabeta import claims as c
from lambdabeta import linear as L
from lambdabeta.control import ControllerSettings, ControllerState, first_order_plant
from lambdabeta.linear.adaptive import controlled_fixed_point
from lambdabeta.loader import DeviceImages
from lambdabeta.model import load_model
from lambdabeta.statistics import NOT_REPRODUCED, NOT_RUN, REPRODUCED
from lambdabeta.training import CheckpointMismatchError, train
from lambdabeta.training.checkpoint import CHECKPOINT_FILE
from lambdabeta.training.curve import CONTROL_COLUMNS, control_summary

LAW = ControllerSettings(target=10.0, proportional=0.5, integral=0.02, ramp_steps=200,
                         averaging=0.9)  # fmt: skip


# ---- the law ----------------------------------------------------------------------------------


def test_the_controller_settles_on_a_first_order_plant_and_is_deterministic():
    """The plant's rate relaxes to 2·log(1 + λ): the target 10 needs λ = e⁵ − 1 ≈ 147."""
    history = first_order_plant(LAW, gain=2.0, lag=20, steps=3000, noise=0.5, seed=1)
    rate, lam = np.array(history["rate"]), np.array(history["lam"])
    assert abs(rate[-300:].mean() - 10.0) < 0.05
    assert lam[-1] == pytest.approx(math.expm1(5.0), rel=0.05)
    assert rate.max() < 10.0 * 1.05  # the ramp keeps the overshoot small
    again = first_order_plant(LAW, gain=2.0, lag=20, steps=3000, noise=0.5, seed=1)
    assert again == history


def test_the_integrator_does_not_wind_up_at_the_bounds():
    """A target the plant cannot reach pins λ at its bound; once the target is reachable the
    controller leaves the bound at once instead of unwinding a large integral first."""
    capped = dataclasses.replace(LAW, lambda_max=20.0, ramp_steps=0, averaging=0.0)
    state = ControllerState(capped)
    for _ in range(2000):  # the rate stays at 0: the error is +1 every step
        state.update(torch.tensor(0.0))
    assert float(state.lam) == pytest.approx(20.0)
    assert float(state.integral) == pytest.approx(math.log(20.0))
    state.update(torch.tensor(30.0))  # now above target: λ falls at the next update already
    assert float(state.lam) < 20.0
    for _ in range(30):
        state.update(torch.tensor(30.0))
    assert float(state.lam) < 20.0 * 0.5


def test_the_set_point_ramps_from_the_first_rate_to_the_target():
    state = ControllerState(dataclasses.replace(LAW, ramp_steps=10, averaging=0.0))
    state.update(torch.tensor(2.0))
    assert float(state.start) == 2.0
    assert float(state.set_point()) == pytest.approx(2.0 + 8.0 * 0.1)
    for _ in range(20):
        state.update(torch.tensor(2.0))
    assert float(state.set_point()) == 10.0


def test_bad_controller_settings_name_the_problem():
    with pytest.raises(ValueError, match="target"):
        ControllerSettings(target=0.0)
    with pytest.raises(ValueError, match="lambda_min"):
        ControllerSettings(target=1.0, lambda_min=2.0, initial_lambda=1.0)


# ---- the linear model: the exact answer -----------------------------------------------------


def test_the_controller_finds_the_closed_forms_lambda_on_the_linear_model():
    instance = L.random_instance(20, 3, 0.05, (0.1, 1.0), seed=3)
    law = ControllerSettings(target=2.0, proportional=0.5, integral=0.05, lambda_min=1e-3,
                             lambda_max=1e3, ramp_steps=30, averaging=0.0)  # fmt: skip
    table = controlled_fixed_point(instance, 5, [2.0, 4.0, 16.0], law, 300, seed=1)
    assert (table["relative_error"].abs() < 0.01).all(), table
    assert (table["tail_spread"] < 0.01).all()  # and it holds it
    exact = L.lambda_for_information(instance, 5, 16.0, 2.0)
    assert table.set_index("beta").loc[16.0, "exact_lambda"] == pytest.approx(exact)


# ---- an adaptive finetune --------------------------------------------------------------------

CONTROLLER = {
    **{"target": 3.0, "proportional": 0.5, "integral": 0.05, "lambda_min": 0.01},
    **{"lambda_max": 1e4, "initial_lambda": 1.0, "ramp_steps": 4, "averaging": 0.5},
}


@pytest.fixture(scope="module")
def stabilized(tmp_path_factory):
    images = random_binary_images()
    folder = tmp_path_factory.mktemp("stabilized")
    settings = tiny_settings(steps=12, lr=1e-3)
    train(settings, images, model_path=folder / "model.pt", log_path=folder / "curve.csv",
          summary_path=folder / "run.json", progress_dir=folder / "progress")  # fmt: skip
    return images, folder / "model.pt"


def adaptive(controller=CONTROLLER, **overrides):
    return tiny_settings(
        **{"steps": 16, "lr": 1e-3, "phase": "finetune", "run_name": "tiny/beta4/seed0/adaptive",
           "controller": controller, "checkpoint_every": 3, "log_every": 4} | overrides
    )  # fmt: skip


def finetune(folder, settings, stabilized, **kwargs):
    images, init = stabilized
    return train(settings, images, model_path=folder / "model.pt", log_path=folder / "curve.csv",
                 summary_path=folder / "run.json", progress_dir=folder / "progress",
                 init_model=init, **kwargs)  # fmt: skip


def interrupted(monkeypatch, folder, settings, stabilized, call):
    class Interrupted(Exception):
        pass

    original = DeviceImages.batch
    calls = {"n": 0}

    def batch(self, indices, dtype=torch.float32):
        calls["n"] += 1
        if calls["n"] == call:
            raise Interrupted
        return original(self, indices, dtype)

    with monkeypatch.context() as patch:
        patch.setattr(DeviceImages, "batch", batch)
        with pytest.raises(Interrupted):
            finetune(folder, settings, stabilized)


def test_an_adaptive_finetune_writes_its_controller_and_resumes_bitwise(
    tmp_path, stabilized, monkeypatch
):
    reference = tmp_path / "reference"
    summary = finetune(reference, adaptive(), stabilized)
    curve = pd.read_csv(reference / "curve.csv")
    assert list(CONTROL_COLUMNS) <= list(curve.columns)
    assert summary["final_lambda"] == curve["lam"].iloc[-1] != CONTROLLER["initial_lambda"]
    assert summary["settings"]["controller"] == CONTROLLER
    assert control_summary(reference / "curve.csv")["final_lambda"] == summary["final_lambda"]

    resumed = tmp_path / "resumed"
    interrupted(monkeypatch, resumed, adaptive(), stabilized, call=8)  # after the step-6 checkpoint
    saved = torch.load(resumed / "progress" / CHECKPOINT_FILE, weights_only=True)
    assert saved["controller"]["steps"] == 6
    again = finetune(resumed, adaptive(), stabilized)
    assert again["resumed_from_step"] == 6
    pd.testing.assert_frame_equal(
        curve.drop(columns="seconds"), pd.read_csv(resumed / "curve.csv").drop(columns="seconds")
    )
    first, second = load_model(reference / "model.pt")[0], load_model(resumed / "model.pt")[0]
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_resume_under_other_controller_settings_is_refused(tmp_path, stabilized, monkeypatch):
    folder = tmp_path / "run"
    interrupted(monkeypatch, folder, adaptive(), stabilized, call=8)
    with pytest.raises(CheckpointMismatchError, match="controller"):
        finetune(folder, adaptive(CONTROLLER | {"integral": 0.5}), stabilized)


def test_a_static_runs_science_has_no_controller():
    assert "controller" not in tiny_settings().science()
    assert adaptive().science()["controller"] == CONTROLLER


# ---- the claims ------------------------------------------------------------------------------

SETTINGS = c.ClaimSettings(high_beta_min=64)


def metrics_with_adaptive(adaptive_score_shift=0.0, control_error=0.02):
    """Static finetunes at β ∈ {1, 64}, λ ∈ {0, 8, 64}, and one adaptive finetune per seed at
    β = 64 whose NLL is the best static λ's plus ``adaptive_score_shift``·span."""
    rows = []
    for seed in range(4):
        for beta in (1.0, 64.0):
            for lam in (0.0, 8.0, 64.0):
                nll = 100 + (50 if beta == 64 else 0) - 0.5 * lam + seed
                rows.append({"dataset": "toy", "phase": "finetune", "beta": beta, "lambda": lam,
                             "seed": seed, "train_bce": nll, "recon_nll": nll, "mig": 0.1,
                             "sap": 0.05, "im": 1.0, "active_latents": 5.0})  # fmt: skip
        best = 100 + 50 - 32 + seed
        rows.append({"dataset": "toy", "phase": "adaptive", "beta": 64.0, "lambda": math.nan,
                     "seed": seed, "train_bce": best + adaptive_score_shift * 82,
                     "recon_nll": best, "mig": 0.1, "sap": 0.05, "im": 1.0,
                     "active_latents": 5.0, "final_lambda": 50.0, "control_error": control_error,
                     "control_target": 7.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_holds_target_passes_within_the_margin_and_fails_beyond_it():
    (row,) = c.adaptive_holds_target(metrics_with_adaptive(), SETTINGS)
    assert row["verdict"] == REPRODUCED and row["origin"] == "derived"
    (row,) = c.adaptive_holds_target(metrics_with_adaptive(control_error=0.3), SETTINGS)
    assert row["verdict"] == NOT_REPRODUCED
    static_only = metrics_with_adaptive()[lambda t: t["phase"] != "adaptive"]
    assert c.adaptive_holds_target(static_only, SETTINGS)[0]["verdict"] == NOT_RUN


def test_matches_best_static_passes_when_as_good_and_fails_when_worse():
    (row,) = c.adaptive_matches_best_static(metrics_with_adaptive(0.0), SETTINGS)
    assert row["verdict"] == REPRODUCED and row["scope"] == "toy (mean)"
    (row,) = c.adaptive_matches_best_static(metrics_with_adaptive(0.5), SETTINGS)
    assert row["verdict"] == NOT_REPRODUCED


def test_linear_exact_passes_within_one_percent():
    table = pd.DataFrame({"n": 20, "m": 5, "s": 3, "beta": [2.0, 4.0], "lambda": [0.1, 0.3],
                          "exact_lambda": [0.1, 0.3], "relative_error": [1e-4, -2e-4]})  # fmt: skip
    assert c.adaptive_linear_exact(table, SETTINGS)[0]["verdict"] == REPRODUCED
    off = table.assign(relative_error=[0.05, 0.0])
    assert c.adaptive_linear_exact(off, SETTINGS)[0]["verdict"] == NOT_REPRODUCED
