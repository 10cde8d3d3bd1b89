"""End to end on real data: a VAE trained for a few hundred steps on the procedural dSprites
scores clearly better MIG and I_m than the same model untrained."""

from __future__ import annotations

import pytest

from lambdabeta.evaluate import evaluate_checkpoint
from lambdabeta.loader import load_prepared
from lambdabeta.model import save_model
from lambdabeta.prepare import prepare
from lambdabeta.train import TrainSettings, initial_model, train

pytestmark = pytest.mark.slow

# positions and shapes vary, the rest is fixed: factors a short training can already find
SUBGRID = {"shape": 3, "scale": 1, "orientation": 1, "pos_x": 16, "pos_y": 16}
EVALUATION = {
    "num_train": 500,
    "num_test": 250,
    "num_bins": 20,
    "sap_c": 0.01,
    "batch_size": 250,
    "bce_window": 100,
    "active_kl_threshold": 0.01,
    "reconstruction_images": 2,
    "seed": 0,
    "device": "cpu",
}


def test_training_improves_disentanglement_scores(tmp_path):
    dataset_dir = prepare("procedural", None, tmp_path / "data", name="toy", subgrid=SUBGRID)
    dataset = load_prepared(dataset_dir)
    settings = TrainSettings(
        steps=500, beta=4.0, lam=0.0, seed=0, phase="stabilize", run_name="toy/beta4/seed0",
        batch_size=32, lr=3e-3, checkpoint_every=500, log_every=100, device="cpu", latent_dim=4,
    )  # fmt: skip
    trained = tmp_path / "trained"
    train(settings, dataset.images, model_path=trained / "model.pt",
          log_path=trained / "train_log.csv", summary_path=trained / "run.json",
          progress_dir=trained / ".progress", progress_interval=1e9)  # fmt: skip
    untrained = tmp_path / "untrained.pt"
    save_model(untrained, initial_model(1, 4, seed=0), {"phase": "untrained"})

    after = evaluate_checkpoint(
        trained / "model.pt", dataset_dir, trained / "train_log.csv", **EVALUATION
    ).metrics
    before = evaluate_checkpoint(
        untrained, dataset_dir, trained / "train_log.csv", **EVALUATION
    ).metrics
    # measured: MIG 0.010 → 0.063, I_m 0.94 → 2.56 nats, NLL 397 → 65 nats
    assert after["mig"] > max(3 * before["mig"], before["mig"] + 0.02), (before, after)
    assert after["im"] > before["im"] + 0.5, (before["im"], after["im"])
    assert after["recon_nll"] < before["recon_nll"]
