"""Tests of lambdabeta.evaluate: sampling, batched encoding, the training curve, one checkpoint."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lambdabeta import scores
from lambdabeta.evaluate import evaluate_checkpoint, train_bce_tail
from lambdabeta.evaluation.passes import (
    count_active_latents,
    encode_means,
    evaluation_images,
    load_evaluation_model,
    mean_kl_per_latent,
    reconstruct,
    reconstruction_nll,
)
from lambdabeta.evaluation.results import write_evaluation
from lambdabeta.evaluation.settings import EvaluationSettings
from lambdabeta.evaluation.split import IMAGES_STREAM, evaluation_stream, sample_evaluation_indices
from lambdabeta.io import write_json
from lambdabeta.loader import DeviceImages
from lambdabeta.model import VAE, save_model

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = {
    "mig", "sap", "im", "recon_nll", "train_bce", "kl_per_latent", "kl_total", "active_latents",
    "factor_entropies", "factor_names", "num_train", "num_test", "num_bins", "eval_seconds",
}  # fmt: skip
IMAGES = evaluation_stream(0, 0, IMAGES_STREAM)  # the images of seed 0's runs
SETTINGS = {
    "dci": {"num_train": 30, "num_test": 12},
    "factor_vae": {"batch_size": 4, "num_train": 12, "num_eval": 6, "num_variance_estimate": 40},
    "num_train": 40,
    "num_test": 16,
    "num_bins": 20,
    "sap_c": 0.01,
    "batch_size": 16,
    "bce_window": 30,
    "active_kl_threshold": 0.01,
    "reconstruction_images": 3,
    "seed": 0,
    "device": "cpu",
}


class TinyVAE(nn.Module):
    """A small Gaussian-encoder / Bernoulli-decoder VAE with the interface of lambdabeta.model."""

    def __init__(self, in_channels: int = 1, latent_dim: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 4, kernel_size=8, stride=8),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 8 * 8, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 4 * 8 * 8),
            nn.Unflatten(1, (4, 8, 8)),
            nn.ConvTranspose2d(4, in_channels, kernel_size=8, stride=8),
        )

    def encode(self, x):
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z):
        return self.decoder(z)


def random_images(num_images: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(num_images, 64, 64, channels), dtype=np.uint8)


def float_images(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def write_curve(path: Path, steps: list[int], steps_in_row: list[int], bce: list[float]) -> Path:
    latent_dim = 2
    frame = pd.DataFrame(
        {
            "step": steps,
            "loss": np.add(bce, 1.0),
            "bce": bce,
            "kl": 1.0,
            "l2": 0.5,
            **{f"kl_z{j}": 0.5 for j in range(latent_dim)},
            "seconds": np.arange(len(steps), dtype=float),
            "steps_in_row": steps_in_row,
        }
    )
    frame.to_csv(path, index=False)
    return path


def write_prepared_dataset(directory: Path, sizes=(3, 4, 5), channels: int = 1) -> Path:
    """A prepared dataset in the uniform format: random images on a full factor grid."""
    directory.mkdir(parents=True)
    num_images = math.prod(sizes)
    factors = np.stack(np.unravel_index(np.arange(num_images), sizes), axis=1).astype(np.int16)
    np.save(directory / "images.npy", random_images(num_images, channels, seed=1))
    np.save(directory / "factors.npy", factors)
    names = [f"factor{k}" for k in range(len(sizes))]
    write_json(
        directory / "meta.json",
        {
            "name": "toy",
            "factor_names": names,
            "factor_sizes": list(sizes),
            "num_images": num_images,
            "image_shape": [64, 64, channels],
        },
    )
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A saved model of the real architecture, its prepared dataset and its training curve."""
    directory = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    model_path = directory / "model.pt"
    save_model(model_path, VAE(in_channels=1, latent_dim=4), {"beta": 1.0})
    dataset_dir = write_prepared_dataset(directory / "toy")
    curve = write_curve(directory / "curve.csv", [10, 20, 30, 40], [10] * 4, [9.0, 8.0, 7.0, 6.0])
    return model_path, dataset_dir, curve


@pytest.fixture(scope="module")
def evaluated(checkpoint):
    """The evaluation of ``checkpoint`` with the test settings."""
    return evaluate_checkpoint(*checkpoint, EvaluationSettings(**SETTINGS))


# ---- sampling ----------------------------------------------------------------------------------


def test_evaluation_indices_are_distinct_seeded_and_disjoint():
    train, test = sample_evaluation_indices(1000, 600, 300, seed=3)
    assert train.shape == (600,) and test.shape == (300,)
    rows = np.concatenate([train, test])
    assert np.unique(rows).size == 900 and rows.min() >= 0 and rows.max() < 1000
    again = sample_evaluation_indices(1000, 600, 300, seed=3)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(sample_evaluation_indices(1000, 600, 300, seed=4)[0], train)


def test_evaluation_indices_refuse_a_too_small_dataset():
    with pytest.raises(ValueError, match=r"has 100 images, fewer than .* 80 \+ 30"):
        sample_evaluation_indices(100, 80, 30, seed=0)


# ---- batched encoding --------------------------------------------------------------------------


def test_encode_means_is_batched_float64_and_matches_one_batch():
    images = random_images(23)
    model = TinyVAE().eval()
    indices = np.array([5, 0, 22, 7, 7, 13, 1])
    means = encode_means(model, DeviceImages(images), indices, batch_size=3)
    with torch.no_grad():
        expected, _ = model.encode(float_images(images[indices]))
    assert means.dtype == np.float64 and means.shape == (7, 3)
    np.testing.assert_allclose(means, expected.double().numpy(), rtol=1e-6, atol=1e-6)


def test_channels_last_evaluation_layout_agrees_with_the_default(tmp_path):
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", VAE(in_channels=3, latent_dim=5), {})
    images = random_images(6, channels=3)
    cpu = torch.device("cpu")
    model = load_evaluation_model(tmp_path / "model.pt", cpu)
    fast = encode_means(model, evaluation_images(images, np.arange(6), cpu), np.arange(6), 4)
    plain = VAE(in_channels=3, latent_dim=5)
    plain.load_state_dict(model.state_dict())
    reference = encode_means(plain.eval(), DeviceImages(images), np.arange(6), 4)
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-6)


def test_reconstruction_nll_is_mean_per_image_bce_of_the_decoded_mean():
    images = random_images(10, channels=3)
    model = TinyVAE(in_channels=3).eval()
    indices = np.arange(10)
    nll = reconstruction_nll(model, DeviceImages(images), indices, batch_size=4)
    x = float_images(images)
    with torch.no_grad():
        mu, _ = model.encode(x)
        expected = F.binary_cross_entropy_with_logits(model.decode(mu), x, reduction="sum") / 10
    assert nll == pytest.approx(expected.item(), rel=1e-5)


def test_reconstruction_nll_of_zero_logits_is_pixels_times_log_two():
    model = TinyVAE().eval()
    for parameter in model.decoder.parameters():
        nn.init.zeros_(parameter)
    nll = reconstruction_nll(model, DeviceImages(random_images(5)), np.arange(5), batch_size=2)
    assert nll == pytest.approx(64 * 64 * math.log(2), rel=1e-6)


def test_mean_kl_per_latent_and_active_latents():
    images = random_images(12)
    model = TinyVAE(latent_dim=4).eval()
    with torch.no_grad():  # latent 3: posterior N(0, 1) for every image, so its KL is 0
        model.encoder[-1].weight[[3, 7]] = 0.0
        model.encoder[-1].bias[[3, 7]] = 0.0
    kl = mean_kl_per_latent(model, DeviceImages(images), np.arange(12), batch_size=5)
    with torch.no_grad():
        mu, logvar = (t.double() for t in model.encode(float_images(images)))
    expected = (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).mean(dim=0).numpy()
    np.testing.assert_allclose(kl, expected, rtol=1e-6)
    assert kl[3] == 0.0
    assert count_active_latents(kl, threshold=0.01) == int(np.sum(expected > 0.01))
    assert count_active_latents(np.array([0.5, 0.01, 0.02, 0.0]), threshold=0.01) == 2


def test_reconstruct_gives_rounded_sigmoid_of_decoded_mean_as_uint8_nhwc():
    images = random_images(4, channels=3)
    model = TinyVAE(in_channels=3).eval()
    recon = reconstruct(model, DeviceImages(images), np.array([2, 0]))
    with torch.no_grad():
        mu, _ = model.encode(float_images(images[[2, 0]]))
        expected = torch.sigmoid(model.decode(mu)).mul(255).round().permute(0, 2, 3, 1)
    assert recon.dtype == np.uint8 and recon.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(recon, expected.to(torch.uint8).numpy())


# ---- training curve ----------------------------------------------------------------------------


def test_train_bce_tail_weights_rows_by_their_steps(tmp_path):
    # rows of 500 steps, the last one shorter (a run stopping between two log points)
    curve = write_curve(
        tmp_path / "curve.csv",
        steps=[500, 1000, 1500, 2000, 2200],
        steps_in_row=[500, 500, 500, 500, 200],
        bce=[50.0, 40.0, 30.0, 20.0, 10.0],
    )
    assert train_bce_tail(curve, window=200) == pytest.approx(10.0)
    assert train_bce_tail(curve, window=700) == pytest.approx((200 * 10 + 500 * 20) / 700)
    # a window that ends inside a row takes only the overlapping steps of that row
    assert train_bce_tail(curve, window=1000) == pytest.approx(
        (200 * 10 + 500 * 20 + 300 * 30) / 1000
    )
    assert train_bce_tail(curve, window=2200) == pytest.approx(
        (200 * 10 + 500 * (20 + 30 + 40 + 50)) / 2200
    )


def test_train_bce_tail_rejects_bad_curves(tmp_path):
    short = write_curve(tmp_path / "short.csv", [500, 1000], [500, 500], [2.0, 1.0])
    with pytest.raises(ValueError, match="covers 1000 steps, fewer than bce_window = 5000"):
        train_bce_tail(short, window=5000)
    gap = write_curve(tmp_path / "gap.csv", [500, 1500], [500, 500], [2.0, 1.0])
    with pytest.raises(ValueError, match="not contiguous at row 1"):
        train_bce_tail(gap, window=500)
    pd.DataFrame({"step": [1], "bce": [1.0]}).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['steps_in_row'\]"):
        train_bce_tail(tmp_path / "old.csv", window=1)


# ---- one checkpoint ----------------------------------------------------------------------------


def test_scores_a_setting_turns_off_have_no_columns(checkpoint):
    off = {**SETTINGS, "dci": {"num_train": 0}, "factor_vae": {"num_train": 0}}
    metrics = evaluate_checkpoint(*checkpoint, EvaluationSettings(**off)).metrics
    scored = [key for key in metrics if key.startswith(("dci_", "factor_vae_"))]
    assert sorted(scored) == ["dci_sample", "factor_vae_sample"]
    assert metrics["dci_sample"] is None and metrics["factor_vae_sample"] is None
    assert "mig_sampled" in metrics and "sap_active" in metrics


def test_evaluate_checkpoint_end_to_end(checkpoint, evaluated):
    model_path, dataset_dir, curve = checkpoint
    result = evaluated
    metrics = result.metrics
    assert set(metrics) >= METRIC_KEYS
    for key in ("mig", "sap", "im", "recon_nll", "train_bce", "kl_total", "eval_seconds"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["mig"] <= 1.0 and 0.0 <= metrics["sap"] <= 1.0
    assert metrics["train_bce"] == pytest.approx((6.0 * 10 + 7.0 * 10 + 8.0 * 10) / 30)
    assert len(metrics["kl_per_latent"]) == 4
    assert metrics["kl_total"] == pytest.approx(sum(metrics["kl_per_latent"]))
    assert metrics["factor_names"] == ["factor0", "factor1", "factor2"]
    # the train sample of a 60-image grid: entropies are those of its factor classes
    train_rows, _ = sample_evaluation_indices(60, 40, 16, IMAGES)
    classes = np.stack(np.unravel_index(train_rows, (3, 4, 5)), axis=1)
    expected_entropy = [-np.sum(p * np.log(p)) for p in (np.bincount(c) / 40 for c in classes.T)]
    np.testing.assert_allclose(metrics["factor_entropies"], expected_entropy, rtol=1e-12)

    # each score's permutation null, for both representations: its mean below its 95 % point
    for score in ("mig", "sap", "im", "mig_sampled", "sap_sampled", "im_sampled"):
        assert metrics[f"{score}_null_mean"] <= metrics[f"{score}_null_upper"], score
    assert metrics["null_shuffles"] == 19 and "mig_active_null_mean" not in metrics

    # every score of the vocabulary on every representation it is computed on
    for quantity in scores.scores():
        for representation in quantity.representations:
            value = metrics[quantity.column(representation)]
            assert 0.0 <= value <= 1.0 or quantity.name == "im", quantity.column(representation)
    assert "dci_disentanglement_active" not in metrics and "factor_vae_active" not in metrics
    assert metrics["dci_sample"] == [30, 12] and metrics["factor_vae_sample"]["num_eval"] == 6
    assert 0 <= metrics["factor_vae_active_dims"] <= 4

    mi = result.mi_matrix
    assert mi.index.name == "latent" and list(mi.index) == [0, 1, 2, 3]
    assert list(mi.columns) == ["factor0", "factor1", "factor2"]
    assert metrics["im"] <= sum(metrics["factor_entropies"]) + 1e-12

    sample = result.reconstructions
    _, test_rows = sample_evaluation_indices(60, 40, 16, IMAGES)
    np.testing.assert_array_equal(sample.indices, test_rows[:3])
    images = np.load(dataset_dir / "images.npy")
    np.testing.assert_array_equal(sample.originals, images[sample.indices])
    assert sample.reconstructions.shape == (3, 64, 64, 1)
    assert sample.reconstructions.dtype == np.uint8

    again = evaluate_checkpoint(model_path, dataset_dir, curve, EvaluationSettings(**SETTINGS))
    for key in METRIC_KEYS - {"eval_seconds"}:
        assert again.metrics[key] == metrics[key], key


def test_reconstruction_nll_is_measured_on_the_chosen_test_images(checkpoint, evaluated):
    model_path, dataset_dir, _ = checkpoint
    model = load_evaluation_model(model_path, torch.device("cpu"))
    _, test_rows = sample_evaluation_indices(60, 40, 16, IMAGES)
    images = DeviceImages(np.load(dataset_dir / "images.npy"))
    assert evaluated.metrics["nll_images"] == 16  # all test images by default
    assert evaluated.metrics["recon_nll"] == pytest.approx(
        reconstruction_nll(model, images, test_rows, 16), rel=1e-6
    )
    subset = evaluate_checkpoint(*checkpoint, EvaluationSettings(**SETTINGS, nll_images=5))
    assert subset.metrics["nll_images"] == 5
    assert subset.metrics["recon_nll"] == pytest.approx(
        reconstruction_nll(model, images, test_rows[:5], 16), rel=1e-6
    )
    assert subset.metrics["mig"] == evaluated.metrics["mig"]  # nothing else changes
    with pytest.raises(ValueError, match="nll_images"):
        EvaluationSettings(**SETTINGS, nll_images=17)


def test_evaluate_checkpoint_uses_the_same_images_for_every_model_of_a_seed(
    checkpoint, evaluated, tmp_path
):
    model_path, dataset_dir, curve = checkpoint
    other_path = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_model(other_path, VAE(in_channels=1, latent_dim=4), {"beta": 8.0})
    first = evaluated
    second = evaluate_checkpoint(other_path, dataset_dir, curve, EvaluationSettings(**SETTINGS))
    np.testing.assert_array_equal(first.reconstructions.indices, second.reconstructions.indices)
    np.testing.assert_array_equal(first.reconstructions.originals, second.reconstructions.originals)
    assert first.metrics["recon_nll"] != second.metrics["recon_nll"]
    # another seed's runs: other images, other noise, other shuffles (independent replicates)
    other_seed = evaluate_checkpoint(
        model_path, dataset_dir, curve, EvaluationSettings(**SETTINGS), replicate=1
    )
    assert not np.array_equal(other_seed.reconstructions.indices, first.reconstructions.indices)
    assert other_seed.metrics["mig_sampled_null_mean"] != first.metrics["mig_sampled_null_mean"]


def test_evaluate_checkpoint_refuses_too_many_evaluation_images(checkpoint):
    model_path, dataset_dir, curve = checkpoint
    with pytest.raises(ValueError, match="has 60 images, fewer than"):
        evaluate_checkpoint(
            model_path, dataset_dir, curve, EvaluationSettings(**{**SETTINGS, "num_train": 50})
        )


def test_evaluation_takes_its_settings_as_one_object(checkpoint):
    with pytest.raises(TypeError, match="EvaluationSettings"):
        evaluate_checkpoint(*checkpoint, dict(SETTINGS))
    with pytest.raises(ValueError, match="typo"):
        EvaluationSettings.from_dict({**SETTINGS, "typo": 1})


def test_write_evaluation_files(evaluated, tmp_path):
    result = evaluated
    run = {"dataset": "toy", "phase": "finetune", "beta": 8, "lambda": 0.5, "seed": 2}
    out = tmp_path / "out"
    paths = {
        "metrics_path": out / "metrics.json",
        "mi_matrix_path": out / "mi_matrix.csv",
        "reconstructions_path": out / "reconstructions.npz",
        "traversals_path": out / "traversals.npz",
        "mi_matrix_sampled_path": out / "mi_matrix_sampled.csv",
    }
    write_evaluation(result, run=run, **paths)

    record = json.loads(paths["metrics_path"].read_text())
    assert list(record)[:5] == ["dataset", "phase", "beta", "lambda", "seed"]
    assert {key: record[key] for key in run} == run
    assert set(record) >= METRIC_KEYS
    assert record["mig"] == result.metrics["mig"]

    table = pd.read_csv(paths["mi_matrix_path"])
    assert list(table.columns) == ["latent", "factor0", "factor1", "factor2"]
    np.testing.assert_allclose(table.drop(columns="latent").to_numpy(), result.mi_matrix)

    with np.load(paths["reconstructions_path"]) as arrays:
        assert set(arrays.files) == {"originals", "reconstructions", "indices"}
        assert arrays["originals"].dtype == np.uint8
        np.testing.assert_array_equal(
            arrays["reconstructions"], result.reconstructions.reconstructions
        )
        np.testing.assert_array_equal(arrays["indices"], result.reconstructions.indices)
    with np.load(paths["traversals_path"]) as arrays:
        assert arrays["images"].shape[:2] == (result.metrics["latent_dim"], 7)
        assert arrays["images"].dtype == np.uint8
        kl = np.asarray(result.metrics["kl_per_latent"])
        assert (np.diff(kl[arrays["order"]]) <= 0).all()  # latents by decreasing KL
    sampled = pd.read_csv(paths["mi_matrix_sampled_path"]).drop(columns="latent")
    np.testing.assert_allclose(sampled.to_numpy(), result.mi_matrices["sampled"])
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json",
        "mi_matrix.csv",
        "mi_matrix_sampled.csv",
        "reconstructions.npz",
        "traversals.npz",
    ]  # no temporary files left behind

    with pytest.raises(ValueError, match=r"lacks key\(s\) \['lambda'\]"):
        write_evaluation(result, run={k: v for k, v in run.items() if k != "lambda"}, **paths)


def test_entry_point_honours_the_snakemake_contract(checkpoint, tmp_path):
    model_path, dataset_dir, curve = checkpoint
    out = tmp_path / "run"
    snakemake = {
        "input": {"model": model_path, "curve": curve, "images": dataset_dir / "images.npy"},
        "output": {
            "metrics": out / "metrics.json",
            "mi_matrix": out / "mi_matrix.csv",
            "reconstructions": out / "reconstructions.npz",
            "traversals": out / "traversals.npz",
        },
        "params": {
            "settings": {k: v for k, v in SETTINGS.items() if k not in ("batch_size", "device")},
            "run": {"dataset": "toy", "phase": "stabilize", "beta": 4, "lambda": 0, "seed": 1},
        },
        # logistics, which never reach params, come from the config
        "config": {
            "deep": {
                "evaluate": {"batch_size": SETTINGS["batch_size"]},
                "train": {"device": SETTINGS["device"]},
            },
            "resources": {"jobs_per_gpu": 1},
        },
        "threads": 2,
        "resources": {"gpu": 0},
        "log": [out / "evaluate.log"],
    }
    script = textwrap.dedent(
        f"""
        import json, runpy, sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from conftest import snakemake_stand_in

        spec = json.loads({json.dumps(json.dumps(snakemake, default=str))})
        snakemake = snakemake_stand_in(**spec)
        runpy.run_path({str(REPO / "workflow/scripts/evaluate.py")!r},
                       init_globals={{"snakemake": snakemake}})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow/scripts")}
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr + (out / "evaluate.log").read_text()
    record = json.loads((out / "metrics.json").read_text())
    assert record["phase"] == "stabilize" and record["seed"] == 1
    assert set(record) >= METRIC_KEYS
    assert (out / "mi_matrix.csv").is_file() and (out / "reconstructions.npz").is_file()
    assert "MIG" in (out / "evaluate.log").read_text()
