"""The evaluation images and random streams of one seed's models (``lambdabeta.evaluate``).

Every model of one seed (its β, its λ finetunes) sees the same images, noise and shuffles, so
comparisons within a seed stay paired; each seed draws its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..loader import DeviceImages, PreparedDataset
from .passes import evaluation_images
from .settings import EvaluationSettings

IMAGES_STREAM, SAMPLED_STREAM, NULL_STREAM = 0, 1, 2
"""Spawn keys, under (evaluation seed, run seed), of the images, the sampled noise, the null."""
DCI_STREAM, FACTOR_VAE_STREAM, FACTOR_VAE_NOISE_STREAM = 3, 4, 5
"""… of the DCI classifiers' seed, the FactorVAE score's factor draws, and the noise of the
sampled codes it encodes."""


def evaluation_stream(seed: int, replicate: int, stream: int) -> np.random.SeedSequence:
    """The seed of one evaluation stream of one seed's runs: ``SeedSequence(seed)`` spawned at
    (``replicate``, ``stream``). Independent between streams and between replicates."""
    return np.random.SeedSequence(seed, spawn_key=(replicate, stream))


def sample_evaluation_indices(
    num_images: int, num_train: int, num_test: int, seed: int | np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct dataset rows for training and testing the metrics.

    The first ``num_train + num_test`` entries of ``default_rng(seed).permutation(num_images)``:
    the first ``num_train`` are the train rows, the next ``num_test`` the test rows. The draw
    depends only on (num_images, seed, num_train, num_test), never on the model. A dataset with
    fewer than ``num_train + num_test`` images is an error: choose smaller numbers.
    """
    if num_train < 2 or num_test < 1:
        raise ValueError(
            f"need num_train ≥ 2 and num_test ≥ 1 evaluation images, got {num_train} and {num_test}"
        )
    if num_images < num_train + num_test:
        raise ValueError(
            f"the dataset has {num_images} images, fewer than num_train + num_test = "
            f"{num_train} + {num_test}; lower num_train/num_test in the evaluation settings"
        )
    permutation = np.random.default_rng(seed).permutation(num_images)
    return permutation[:num_train], permutation[num_train : num_train + num_test]


@dataclass(frozen=True)
class EvaluationSplit:
    """The evaluation images on the device: dataset rows ``rows`` (train rows first), and the
    positions of the train and test rows within them."""

    rows: np.ndarray
    images: DeviceImages
    train: np.ndarray
    test: np.ndarray

    @classmethod
    def draw(
        cls,
        dataset: PreparedDataset,
        settings: EvaluationSettings,
        device: torch.device,
        replicate: int,
    ) -> EvaluationSplit:
        train_rows, test_rows = sample_evaluation_indices(
            len(dataset),
            settings.num_train,
            settings.num_test,
            evaluation_stream(settings.seed, replicate, IMAGES_STREAM),
        )
        rows = np.concatenate([train_rows, test_rows])
        return cls(
            rows=rows,
            images=evaluation_images(dataset.images, rows, device),
            train=np.arange(settings.num_train),
            test=np.arange(settings.num_train, len(rows)),
        )
