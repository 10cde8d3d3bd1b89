"""Evaluation of one trained checkpoint (disentanglement_lib conventions).

A checkpoint is evaluated on ``num_train + num_test`` distinct images of its prepared dataset,
drawn by a seeded permutation that depends only on the dataset size, the evaluation seed and the
run's own seed (``replicate``). Every model of one seed (its β, its λ finetunes) sees the same
images, the same sampled noise and the same shuffles of the permutation null, so comparisons
within a seed stay paired; different seeds draw their own, so that the seeds the claims treat as
independent replicates are independent in their evaluation as well as their training (all seeds
on one image sample would share its estimation noise, which no spread over seeds shows).

Representations (``representations``): the metrics score the encoder mean μ (the paper's deep
convention, disentanglement_lib's ``mean``; columns ``mig``, ``sap``, ``im``) and the sampled
z = μ + σ·ε (the theory's X = BY + W; ``mig_sampled``, …), one draw per image from the
evaluation seed's own stream, on the same images and bins. Binned MI with equal-width bins over
each latent's own range does not change when a latent is rescaled, so a collapsing latent keeps
its μ-based MI while its sampled MI falls to the estimator's bias (``metrics.plug_in_bias``).
``mig_active``, ``sap_active``, ``im_active`` score the mean with the inactive latents held
constant.

Permutation null (``null_shuffles``): what chance alone gives these codes. The mean and the
sampled representation are scored again with the factors shuffled over the evaluation images
(``metrics.permutation_null``; the same seeded shuffles for both), and ``metrics.json`` keeps
each score's null mean and upper 95 % point (``mig_null_mean``, ``mig_null_upper``,
``mig_sampled_null_mean``, …): a score at or below the upper point is indistinguishable from a
representation without information about the factors.

- MIG, I_m and the latent × factor mutual information matrix use the ``num_train`` images;
  SAP fits its classifiers on them and scores on the ``num_test`` others.
- Per-latent KL and the number of active latents use all evaluation images; the reconstruction
  NLL uses the first ``nll_images`` test images (all of them by default): decoding is most of an
  evaluation's time, and the paper's reconstruction measure is the training BCE anyway.
- The training BCE over the last ``bce_window`` steps comes from the training curve.
- ``reconstruction_images`` of the test images (the first ones of the permutation's test part)
  are decoded from μ for the reconstruction figure.

Only the evaluation images are read from the memory-mapped dataset and moved to the device, so
an evaluation needs a few hundred MB whatever the size of the dataset.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import metrics
from .devices import peak_gpu_mb, select_device
from .grid import RUN_KEYS
from .io import atomic_path, write_json
from .loader import DeviceImages, PreparedDataset, load_prepared
from .loss import image_nll, kl_per_latent
from .model import load_model
from .settings import EvaluationSettings
from .training.curve import control_summary, tail_mean

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconstructionSample:
    """Dataset rows ``indices`` (k), their images and reconstructions (uint8 k × H × W × C)."""

    indices: np.ndarray
    originals: np.ndarray
    reconstructions: np.ndarray


@dataclass(frozen=True)
class Traversals:
    """Each latent swept from a test image's μ: ``images`` (m × steps × H × W × C uint8, rows in
    ``order``, the latents by decreasing KL), the swept ``values``, each latent's ``kl`` and the
    ``original`` image (dataset row ``index``)."""

    index: int
    original: np.ndarray
    values: np.ndarray
    order: np.ndarray
    kl: np.ndarray
    images: np.ndarray


@dataclass(frozen=True)
class EvaluationResult:
    """Everything one evaluation produces.

    ``metrics`` holds JSON-ready values; ``mi_matrices`` the m × K mutual information (nats)
    between discretised latents (index ``latent``) and factors (one column per factor name) of
    each representation.
    """

    metrics: dict[str, Any]
    mi_matrices: dict[str, pd.DataFrame]
    reconstructions: ReconstructionSample
    traversals: Traversals

    @property
    def mi_matrix(self) -> pd.DataFrame:
        """The encoder mean's MI matrix (Fig 8's)."""
        return self.mi_matrices["mean"]


# ---- sampling and encoding ---------------------------------------------------------------------


IMAGES_STREAM, SAMPLED_STREAM, NULL_STREAM = 0, 1, 2
"""Spawn keys, under (evaluation seed, run seed), of the images, the sampled noise, the null."""


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
class _Pass:
    means: np.ndarray
    logvars: np.ndarray
    kl: np.ndarray | None
    nll: np.ndarray | None


def _forward_pass(
    model: nn.Module,
    images: DeviceImages,
    indices: np.ndarray | torch.Tensor,
    batch_size: int,
    *,
    with_kl: bool,
    with_nll: bool,
) -> _Pass:
    """Encoder means and log-variances (N × m), per-image-per-latent KL (N × m) and per-image NLL
    (N), float64.

    One pass over ``images[indices]`` in batches; ``decode`` runs only when the NLL is asked for.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    device = next(model.parameters()).device
    indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    means, logvars, kls, nlls = [], [], [], []
    with torch.inference_mode():
        for batch_indices in indices.split(batch_size):
            x = images.batch(batch_indices).to(device)
            mu, logvar = model.encode(x)
            means.append(mu.double())
            logvars.append(logvar.double())
            if with_kl:
                kls.append(kl_per_latent(mu.double(), logvar.double()))
            if with_nll:
                nlls.append(image_nll(model.decode(mu), x).double())
    return _Pass(
        means=torch.cat(means).cpu().numpy(),
        logvars=torch.cat(logvars).cpu().numpy(),
        kl=torch.cat(kls).cpu().numpy() if with_kl else None,
        nll=torch.cat(nlls).cpu().numpy() if with_nll else None,
    )


def encode_means(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor, batch_size: int
) -> np.ndarray:
    """Encoder means μ(x) of ``images[indices]``, N × m float64, computed in batches."""
    return _forward_pass(model, images, indices, batch_size, with_kl=False, with_nll=False).means


def reconstruction_nll(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor, batch_size: int
) -> float:
    """Mean per-image Bernoulli negative log-likelihood of the reconstruction from μ (nats).

    ``(1/N) Σ_n Σ_pixels BCE-with-logits(decode(μ(x_n)), x_n)``; images in [0, 1] that are not
    binary give the cross-entropy, as in training.
    """
    return float(
        _forward_pass(model, images, indices, batch_size, with_kl=False, with_nll=True).nll.mean()
    )


def mean_kl_per_latent(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor, batch_size: int
) -> np.ndarray:
    """Mean over ``images[indices]`` of each latent's KL(q(z_j|x) ‖ N(0, 1)) (nats), length m.

    ``KL_j = (1/N) Σ_n ½(μ_nj² + σ_nj² − 1 − log σ_nj²)``.
    """
    return _forward_pass(model, images, indices, batch_size, with_kl=True, with_nll=False).kl.mean(
        axis=0
    )


def count_active_latents(kl: np.ndarray, threshold: float = 0.01) -> int:
    """Number of latents whose mean KL exceeds ``threshold`` nats (the others are collapsed)."""
    return int(np.count_nonzero(np.asarray(kl) > threshold))


def reconstruct(
    model: nn.Module, images: DeviceImages, indices: np.ndarray | torch.Tensor
) -> np.ndarray:
    """Decoder means of ``images[indices]`` from μ as uint8 k × H × W × C: round(255·σ(logits))."""
    device = next(model.parameters()).device
    indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    with torch.inference_mode():
        mu, _ = model.encode(images.batch(indices).to(device))
        pixels = torch.sigmoid(model.decode(mu).float()).mul(255.0).round()
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def sampled_codes(
    means: np.ndarray, logvars: np.ndarray, seed: int | np.random.SeedSequence
) -> np.ndarray:
    """One draw z = μ + exp(½ log σ²)·ε per image and latent (N × m, float64), ε ~ N(0, 1) from
    the stream ``seed`` (:func:`evaluation_stream`), so every model of a seed is scored on the
    same noise."""
    noise = np.random.default_rng(seed)
    return means + np.exp(0.5 * logvars) * noise.standard_normal(means.shape)


def traverse(
    model: nn.Module,
    images: DeviceImages,
    position: int,
    kl: np.ndarray,
    steps: int,
    span: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder means (uint8, latents × steps × H × W × C) of image ``position``'s μ with each
    latent in turn set to ``steps`` values evenly over [−span, span]; latents by decreasing KL.
    Returns (the values, the latents' order, the images)."""
    device = next(model.parameters()).device
    values = np.linspace(-span, span, steps)
    order = np.argsort(-np.asarray(kl), kind="stable")
    with torch.inference_mode():
        mu, _ = model.encode(images.batch(torch.tensor([position])).to(device))
        codes = mu.repeat(len(order) * steps, 1)
        rows = torch.arange(len(order) * steps, device=device)
        latents = torch.as_tensor(np.repeat(order, steps), device=device)
        swept = torch.as_tensor(np.tile(values, len(order)), dtype=codes.dtype, device=device)
        codes[rows, latents] = swept
        pixels = torch.sigmoid(model.decode(codes).float()).mul(255.0).round()
    decoded = pixels.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return values, order, decoded.reshape(len(order), steps, *decoded.shape[1:])


# ---- training curve ----------------------------------------------------------------------------


def train_bce_tail(curve_csv: str | os.PathLike, window: int = 5000) -> float:
    """Mean training BCE over the last ``window`` steps of a training curve
    (``lambdabeta.training.curve.tail_mean``)."""
    return tail_mean(curve_csv, "bce", window)


# ---- one checkpoint ----------------------------------------------------------------------------


def evaluate_checkpoint(
    model_path: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    curve_csv: str | os.PathLike,
    settings: EvaluationSettings,
    *,
    threads: int = 1,
    jobs_per_gpu: int = 1,
    replicate: int = 0,
) -> EvaluationResult:
    """Evaluate the model at ``model_path`` on its prepared dataset (see the module docstring);
    ``replicate`` is the run's seed, which picks its evaluation images, noise and shuffles.

    ``settings.device`` is "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N",
    resolved by ``devices.select_device`` (which shares the GPUs of a workstation among
    ``jobs_per_gpu`` concurrent jobs each); ``threads`` is the number of SAP classifier fits run
    at once.
    """
    start = time.perf_counter()
    if not isinstance(settings, EvaluationSettings):
        raise TypeError(f"settings must be EvaluationSettings, got {type(settings).__name__}")
    device = select_device(settings.device, jobs_per_gpu=jobs_per_gpu, setting="deep.train.device")
    train_bce = train_bce_tail(curve_csv, settings.bce_window)  # before the heavy work: fail early
    control = control_summary(curve_csv)
    model = load_evaluation_model(model_path, device)
    dataset = load_prepared(dataset_dir)
    split = _EvaluationSplit.draw(dataset, settings, device, replicate)
    logger.info(
        "evaluating %s on %d + %d images of %s (%s)",
        model_path,
        settings.num_train,
        settings.num_test,
        dataset.name,
        device,
    )
    forward, reconstructions = _encode_and_reconstruct(model, dataset, split, settings)
    kl = forward.kl.mean(axis=0)
    active = kl > settings.active_kl_threshold
    codes = {"mean": forward.means}
    if "sampled" in settings.representations:
        noise = evaluation_stream(settings.seed, replicate, SAMPLED_STREAM)
        codes["sampled"] = sampled_codes(forward.means, forward.logvars, noise)
    shuffles = evaluation_stream(settings.seed, replicate, NULL_STREAM)
    scores = {
        name: _score_representation(values, dataset, split, settings, threads, shuffles)
        for name, values in codes.items()
    }
    held = np.where(active, forward.means, 0.0)  # the inactive latents held constant
    known = (scores["mean"]["sap_scores"], active)
    scores["active"] = _score_representation(
        held, dataset, split, settings, threads, known_sap=known
    )
    position = int(split.test[0])
    values, order, decoded = traverse(
        model, split.images, position, kl, settings.traversal_steps, settings.traversal_range
    )
    traversals = Traversals(
        index=int(split.rows[position]),
        original=_gather_rows(dataset.images, split.rows[[position]])[0],
        values=values,
        order=order,
        kl=kl,
        images=decoded,
    )
    results = _record(
        settings, dataset, forward, scores, train_bce, device, time.perf_counter() - start
    )
    results |= control
    logger.info(
        "MIG %.4f  SAP %.4f  I_m %.4f  NLL %.2f  (%.1f s)",
        results["mig"],
        results["sap"],
        results["im"],
        results["recon_nll"],
        results["eval_seconds"],
    )
    mi_matrices = {
        name: pd.DataFrame(
            scores[name]["mutual_information"],
            index=pd.RangeIndex(scores[name]["mutual_information"].shape[0], name="latent"),
            columns=list(dataset.factor_names),
        )
        for name in codes
    }
    return EvaluationResult(
        metrics=results,
        mi_matrices=mi_matrices,
        reconstructions=reconstructions,
        traversals=traversals,
    )


def _record(
    settings: EvaluationSettings,
    dataset: PreparedDataset,
    forward: _Pass,
    scores: dict[str, dict[str, Any]],
    train_bce: float,
    device: torch.device,
    seconds: float,
) -> dict[str, Any]:
    """``metrics.json``'s values (JSON-ready): the scores of each representation (the mean's
    unsuffixed, the others with ``_sampled``, ``_active``), the reconstruction measures, the
    latents' statistics, the estimator's bias and how the model was evaluated."""
    kl = forward.kl.mean(axis=0)
    entropies = scores["mean"]["factor_entropies"]
    bias = metrics.plug_in_bias(
        settings.num_bins, np.asarray(dataset.factor_sizes), settings.num_train
    )
    record: dict[str, Any] = {}
    for name, score in scores.items():
        suffix = "" if name == "mean" else f"_{name}"
        record |= {
            f"mig{suffix}": score["mig"],
            f"sap{suffix}": score["sap"],
            f"im{suffix}": score["im"],
            f"mig_per_factor{suffix}": score["mig_per_factor"].tolist(),
            f"sap_per_factor{suffix}": score["sap_per_factor"].tolist(),
        }
        for metric, values in score["null"].items():
            record |= {
                f"{metric}{suffix}_null_mean": float(np.mean(values)),
                f"{metric}{suffix}_null_upper": metrics.null_upper_point(values),
            }
    informative = entropies > 0
    return record | {
        "recon_nll": float(forward.nll.mean()),
        "train_bce": train_bce,
        "kl_per_latent": kl.tolist(),
        "kl_total": float(kl.sum()),
        "active_latents": count_active_latents(kl, settings.active_kl_threshold),
        "mu_std_per_latent": forward.means.std(axis=0).tolist(),
        "sigma2_mean_per_latent": np.exp(forward.logvars).mean(axis=0).tolist(),
        "factor_entropies": entropies.tolist(),
        "factor_names": list(dataset.factor_names),
        "mi_bias_per_factor": bias.tolist(),
        # what a latent independent of every factor scores: MIG ≈ mean_k bias_k / H_k, I_m ≈ Σ_k
        "mig_bias": float(
            np.mean(np.divide(bias, entropies, out=np.zeros_like(bias), where=informative))
        ),
        "im_bias": float(bias.sum()),
        "num_train": settings.num_train,
        "num_test": settings.num_test,
        "num_bins": settings.num_bins,
        "null_shuffles": settings.null_shuffles,
        "nll_images": int(forward.nll.shape[0]),
        "representations": list(settings.representations),
        "im_max": float(entropies.sum()),
        "latent_dim": int(forward.means.shape[1]),
        "sap_c": settings.sap_c,
        "active_kl_threshold": settings.active_kl_threshold,
        "evaluation_seed": settings.seed,
        "device": str(device),
        "eval_seconds": seconds,
        "peak_gpu_mb": peak_gpu_mb(device),
    }


@dataclass(frozen=True)
class _EvaluationSplit:
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
    ) -> _EvaluationSplit:
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


def _encode_and_reconstruct(
    model: nn.Module,
    dataset: PreparedDataset,
    split: _EvaluationSplit,
    settings: EvaluationSettings,
) -> tuple[_Pass, ReconstructionSample]:
    """Means and KL of every evaluation image, the NLL of the first ``nll_images`` test images,
    and the figure's reconstructions."""
    tick = time.perf_counter()
    forward = _forward_pass(
        model,
        split.images,
        np.arange(len(split.rows)),
        settings.batch_size,
        with_kl=True,
        with_nll=False,
    )
    nll = _forward_pass(
        model,
        split.images,
        split.test[: settings.nll_count],
        settings.batch_size,
        with_kl=False,
        with_nll=True,
    ).nll
    forward = _Pass(means=forward.means, logvars=forward.logvars, kl=forward.kl, nll=nll)
    shown = split.test[: settings.reconstruction_images]
    reconstructions = ReconstructionSample(
        indices=split.rows[shown],
        originals=_gather_rows(dataset.images, split.rows[shown]),
        reconstructions=reconstruct(model, split.images, shown),
    )
    logger.info("encoded and decoded in %.1f s", time.perf_counter() - tick)
    return forward, reconstructions


def _score_representation(
    codes: np.ndarray,
    dataset: PreparedDataset,
    split: _EvaluationSplit,
    settings: EvaluationSettings,
    threads: int,
    shuffles: np.random.SeedSequence | None = None,
    known_sap: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """MIG, SAP and I_m of ``codes`` (N × m), with the per-factor values they come from.

    ``shuffles`` seeds the permutation null (none without it). ``known_sap`` = (accuracies,
    kept): SAP accuracies already fitted on these codes' columns where ``kept``; the other
    columns are constant here, and one classifier per factor on a constant feature gives their
    accuracy.
    """
    tick = time.perf_counter()
    train_codes, test_codes = codes[split.train], codes[split.test]
    train_factors = dataset.factors[split.rows[split.train]]
    test_factors = dataset.factors[split.rows[split.test]]
    mutual_information = metrics.discrete_mutual_information(
        train_codes, train_factors, settings.num_bins
    )
    factor_entropies = metrics.discrete_entropy(train_factors)
    mig_per_factor = metrics.mig_per_factor(mutual_information, factor_entropies)
    logger.info("mutual information in %.1f s", time.perf_counter() - tick)

    tick = time.perf_counter()
    null: dict[str, np.ndarray] = {}
    if known_sap is None:
        predictions = metrics.sap_predictions(
            train_codes, train_factors, test_codes, test_factors, C=settings.sap_c, n_jobs=threads
        )
        sap_scores = metrics.sap_accuracies(predictions, test_factors)
        if settings.null_shuffles and shuffles is not None:
            null = metrics.permutation_null(
                metrics.discretize(train_codes, settings.num_bins),
                train_factors,
                predictions,
                test_factors,
                settings.null_shuffles,
                shuffles,
            )
    else:
        accuracies, kept = known_sap
        zeros = np.zeros((len(train_codes), 1)), np.zeros((len(test_codes), 1))
        constant = metrics.sap_matrix(
            zeros[0], train_factors, zeros[1], test_factors, C=settings.sap_c, n_jobs=threads
        )
        sap_scores = np.where(kept[:, None], accuracies, constant)
    sap_per_factor = metrics.top_two_gap(sap_scores)
    logger.info("SAP classifiers in %.1f s", time.perf_counter() - tick)
    return {
        "mig": float(mig_per_factor.mean()),
        "sap": float(sap_per_factor.mean()),
        "im": metrics.matched_information(mutual_information),
        "mutual_information": mutual_information,
        "factor_entropies": factor_entropies,
        "mig_per_factor": mig_per_factor,
        "sap_per_factor": sap_per_factor,
        "sap_scores": sap_scores,
        "null": null,
    }


def load_evaluation_model(model_path: str | os.PathLike, device: torch.device) -> nn.Module:
    """The saved model in eval mode on ``device``; channels-last on the CPU.

    oneDNN's CPU convolutions run about 1.5× faster on channels-last tensors (and allocate far
    less per batch); results agree with the default layout up to float rounding.
    """
    model, _ = load_model(model_path, device=device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def evaluation_images(images: np.ndarray, rows: np.ndarray, device: torch.device) -> DeviceImages:
    """``images[rows]`` (uint8 N × H × W × C, e.g. a memory map) on ``device``, in row order.

    The rows are read from ``images`` in increasing order, which a memory-mapped file serves
    fastest; batches come out channels-last on the CPU (see ``load_evaluation_model``).
    """
    return DeviceImages(
        _gather_rows(images, rows), device=device, channels_last=device.type == "cpu"
    )


# ---- writers -----------------------------------------------------------------------------------


def write_evaluation(
    result: EvaluationResult,
    *,
    metrics_path: str | os.PathLike,
    mi_matrix_path: str | os.PathLike,
    reconstructions_path: str | os.PathLike,
    traversals_path: str | os.PathLike,
    mi_matrix_sampled_path: str | os.PathLike | None = None,
    run: Mapping[str, Any] | None = None,
) -> None:
    """Write ``metrics.json`` (run keys first), ``mi_matrix.csv`` (the mean's),
    ``mi_matrix_sampled.csv`` (when the sampled representation was scored and a path is given),
    ``reconstructions.npz`` and ``traversals.npz``.

    ``run`` identifies the model (``RUN_KEYS``: dataset, phase, beta, lambda, seed). Every file
    is written atomically.
    """
    record: dict[str, Any] = {}
    if run is not None:
        missing = [key for key in RUN_KEYS if key not in run]
        if missing:
            raise ValueError(f"run description lacks key(s) {missing} (expected {list(RUN_KEYS)})")
        record.update({key: run[key] for key in RUN_KEYS})
    clashes = sorted(set(record) & set(result.metrics))
    if clashes:
        raise ValueError(f"run keys {clashes} collide with metric names")
    record.update(result.metrics)
    write_json(metrics_path, record)
    matrices = {"mean": mi_matrix_path, "sampled": mi_matrix_sampled_path}
    for name, path in matrices.items():
        if path is not None:
            with atomic_path(path) as tmp:
                result.mi_matrices[name].to_csv(tmp, index=True, index_label="latent")
    sample = result.reconstructions
    _write_npz(reconstructions_path, originals=sample.originals,
               reconstructions=sample.reconstructions, indices=sample.indices)  # fmt: skip
    traversals = result.traversals
    _write_npz(traversals_path, index=traversals.index, original=traversals.original,
               values=traversals.values, order=traversals.order, kl=traversals.kl,
               images=traversals.images)  # fmt: skip


def _write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """The arrays, compressed, written whole or not at all."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def _gather_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` read in increasing row order, which a memory-mapped file serves fastest."""
    order = np.argsort(rows)
    gathered = np.empty((rows.size, *array.shape[1:]), dtype=array.dtype)
    gathered[order] = array[rows[order]]
    return gathered
