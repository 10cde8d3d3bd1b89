"""End to end on real data: VAEs trained for a few hundred steps on the procedural dSprites
reconstruct far better than the best input-blind model, and score clearly better I_m and MIG
than the same models untrained."""

from __future__ import annotations

import numpy as np
import pytest

from lambdabeta.evaluate import evaluate_checkpoint
from lambdabeta.evaluation.settings import EvaluationSettings
from lambdabeta.loader import load_prepared
from lambdabeta.model import save_model
from lambdabeta.prepare import prepare
from lambdabeta.settings import TrainSettings
from lambdabeta.training import train
from lambdabeta.training.streams import initial_model

pytestmark = [pytest.mark.slow, pytest.mark.trains]

# Two sprite scales (the smallest and the largest), three shapes, 16 × 16 positions: the large
# sprites give the decoder enough signal to leave the input-blind "mean image" state within 200
# to 300 of the 400 steps on every seed and kernel family measured. With the small sprites alone
# (β = 4, lr = 3e-3, 500 steps) a model left that state with AVX-512 kernels and stayed in it
# with AVX2 kernels, so a verdict on it depended on the CPU.
SUBGRID = {"shape": 3, "scale": 2, "orientation": 1, "pos_x": 16, "pos_y": 16}
# lr = 1e-3: at 2e-3 and 3e-3, two of four seeds ended with a dead encoder (constant latent
# means, I_m = 0) under either kernel family. β = 1 keeps the pull towards posterior collapse low.
TRAINING = {"steps": 400, "beta": 1.0, "lam": 0.0, "batch_size": 32, "lr": 1e-3, "latent_dim": 4}
SEEDS = (0, 1)  # the claims are on the mean over these seeds, except where said
METRICS = ("recon_nll", "im", "mig")
EVALUATION = {
    # what learning changes is judged by the paper's scores; DCI and FactorVAE have their tests
    "dci": {"num_train": 0},
    "factor_vae": {"num_train": 0},
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


def mean_image_nll(images: np.ndarray) -> float:
    """NLL (nats per image) of the best model that ignores its input: independent Bernoulli
    pixels with p = the mean image, −(1/N) Σ_n Σ_pixels [x log p + (1 − x) log(1 − p)]."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    p = np.clip(x.mean(axis=0), 1e-12, 1 - 1e-12)
    return float(-(x @ np.log(p) + (1 - x) @ np.log1p(-p)).mean())


def trained_and_untrained_metrics(tmp_path, dataset_dir, images, seed: int) -> tuple[dict, dict]:
    """Evaluation metrics of one seed's model after ``TRAINING`` and at its initial weights."""
    settings = TrainSettings(
        **TRAINING, seed=seed, phase="stabilize", run_name=f"toy/beta1/seed{seed}",
        checkpoint_every=TRAINING["steps"], log_every=100, device="cpu",
    )  # fmt: skip
    out = tmp_path / f"seed{seed}"
    train(settings, images, model_path=out / "model.pt", log_path=out / "train_log.csv",
          summary_path=out / "run.json", progress_dir=out / ".progress",
          progress_interval=1e9)  # fmt: skip
    untrained = out / "untrained.pt"
    save_model(untrained, initial_model(1, TRAINING["latent_dim"], seed=seed), {"phase": "init"})
    curve = out / "train_log.csv"
    after = evaluate_checkpoint(
        out / "model.pt", dataset_dir, curve, EvaluationSettings(**EVALUATION)
    ).metrics
    before = evaluate_checkpoint(
        untrained, dataset_dir, curve, EvaluationSettings(**EVALUATION)
    ).metrics
    return before, after


def test_training_improves_reconstruction_and_disentanglement_scores(tmp_path):
    dataset_dir = prepare("procedural", None, tmp_path / "data", name="toy", subgrid=SUBGRID)
    images = load_prepared(dataset_dir).images
    runs = [trained_and_untrained_metrics(tmp_path, dataset_dir, images, s) for s in SEEDS]
    before = {key: np.mean([untrained[key] for untrained, _ in runs]) for key in METRICS}
    after = {key: np.mean([trained[key] for _, trained in runs]) for key in METRICS}
    blind = mean_image_nll(images)
    # Measured with torch 2.13.0 (input-blind NLL 811 nats), means over seeds 0 and 1:
    #   kernels   channels_last   NLL after   I_m before → after   MIG before → after
    #   AVX-512   on              151         0.90 → 2.28          0.0085 → 0.043
    #   AVX-512   off             154         0.90 → 2.36          0.0085 → 0.032
    #   AVX2      on              152         0.90 → 2.12          0.0085 → 0.034
    #   AVX2      off             155         0.90 → 2.19          0.0085 → 0.058
    # (per seed, the untrained NLL is 2457-3011 and the trained one 145-158). The thresholds
    # sit at about half the smallest effect measured. The kernels move the step at which a
    # model leaves the input-blind state (its training BCE falls from about 811) by up to a
    # hundred steps, so the NLL is held against the blind NLL only as the mean over seeds.
    for seed, (untrained, trained) in zip(SEEDS, runs, strict=True):
        assert trained["recon_nll"] < 0.5 * untrained["recon_nll"], (seed, untrained, trained)
    assert after["recon_nll"] < 0.6 * blind, (after, blind)
    assert after["im"] > before["im"] + 0.6, (before, after)
    assert after["mig"] > before["mig"] + 0.01, (before, after)
