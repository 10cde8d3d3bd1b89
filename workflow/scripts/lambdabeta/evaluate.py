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

Every score is computed by the scoring function of its group (``evaluation.scorers``) on the
representations its entry in ``lambdabeta.scores`` names, and written under the column the
vocabulary gives it. Besides MIG, SAP and I_m: DCI on the first ``dci.num_train`` train and
``dci.num_test`` test images, and the FactorVAE score on images it draws from the whole dataset
by factor values (``factor_vae``), for the mean and the sampled z, each seeded by the seed's own
stream so that the models of a seed stay paired.

Only the evaluation images are read from the memory-mapped dataset and moved to the device, so
an evaluation needs a few hundred MB whatever the size of the dataset.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import metrics
from .devices import peak_gpu_mb, select_device
from .evaluation import scorers
from .evaluation.passes import (
    ForwardPass,
    count_active_latents,
    forward_pass,
    gather_rows,
    image_encoder,
    load_evaluation_model,
    reconstruct,
    sampled_codes,
    traverse,
)
from .evaluation.results import EvaluationResult, ReconstructionSample, Traversals
from .evaluation.scorers import Codes, Scored
from .evaluation.settings import EvaluationSettings
from .evaluation.split import (
    FACTOR_VAE_NOISE_STREAM,
    SAMPLED_STREAM,
    EvaluationSplit,
    evaluation_stream,
)
from .loader import PreparedDataset, load_prepared
from .scores import QUANTITIES, REPRESENTATIONS
from .training.curve import control_summary, tail_mean

logger = logging.getLogger(__name__)


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
    ``jobs_per_gpu`` concurrent jobs each); ``threads`` is the number of classifier fits (SAP's,
    DCI's) run at once.
    """
    start = time.perf_counter()
    if not isinstance(settings, EvaluationSettings):
        raise TypeError(f"settings must be EvaluationSettings, got {type(settings).__name__}")
    device = select_device(settings.device, jobs_per_gpu=jobs_per_gpu, setting="deep.train.device")
    train_bce = train_bce_tail(curve_csv, settings.bce_window)  # before the heavy work: fail early
    control = control_summary(curve_csv)
    model = load_evaluation_model(model_path, device)
    dataset = load_prepared(dataset_dir)
    split = EvaluationSplit.draw(dataset, settings, device, replicate)
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
    scored = _score_representations(model, dataset, split, forward, settings, threads, replicate)
    position = int(split.test[0])
    values, order, decoded = traverse(
        model, split.images, position, kl, settings.traversal_steps, settings.traversal_range
    )
    traversals = Traversals(
        index=int(split.rows[position]),
        original=gather_rows(dataset.images, split.rows[[position]])[0],
        values=values,
        order=order,
        kl=kl,
        images=decoded,
    )
    results = _record(
        settings, dataset, forward, scored, train_bce, device, time.perf_counter() - start
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
            groups["paper"].arrays["mutual_information"],
            index=pd.RangeIndex(forward.means.shape[1], name="latent"),
            columns=list(dataset.factor_names),
        )
        for name, groups in scored.items()
        if name in settings.representations
    }
    return EvaluationResult(
        metrics=results,
        mi_matrices=mi_matrices,
        reconstructions=reconstructions,
        traversals=traversals,
    )


def _score_representations(
    model: nn.Module,
    dataset: PreparedDataset,
    split: EvaluationSplit,
    forward: ForwardPass,
    settings: EvaluationSettings,
    threads: int,
    replicate: int,
) -> dict[str, dict[str, Scored]]:
    """Every scoring function of ``evaluation.scorers`` on each representation, by
    representation and group: the mean, the sampled z (when asked for) and the mean with the
    inactive latents held constant (from the mean's fits)."""

    def seed(stream: int) -> np.random.SeedSequence:
        return evaluation_stream(settings.seed, replicate, stream)

    def encoder(sampled: bool) -> Callable[[np.ndarray], np.ndarray]:
        noise = np.random.default_rng(seed(FACTOR_VAE_NOISE_STREAM)) if sampled else None
        return image_encoder(model, split.images.device, settings.batch_size, noise)

    values = {"mean": forward.means}
    if "sampled" in settings.representations:
        values["sampled"] = sampled_codes(forward.means, forward.logvars, seed(SAMPLED_STREAM))
    common = {"dataset": dataset, "split": split, "settings": settings, "threads": threads}
    scored = {
        name: scorers.score(
            Codes(name, codes, seed=seed, encode=encoder(name == "sampled"), **common)
        )
        for name, codes in values.items()
    }
    active = forward.kl.mean(axis=0) > settings.active_kl_threshold
    held = np.where(active, forward.means, 0.0)  # the inactive latents held constant
    scored["active"] = scorers.score(
        Codes("active", held, seed=seed, mean=scored["mean"]["paper"], active=active, **common)
    )
    return scored


def _record(
    settings: EvaluationSettings,
    dataset: PreparedDataset,
    forward: ForwardPass,
    scored: dict[str, dict[str, Scored]],
    train_bce: float,
    device: torch.device,
    seconds: float,
) -> dict[str, Any]:
    """``metrics.json``'s values (JSON-ready): each representation's scores under their columns
    (``lambdabeta.scores``: the mean's unsuffixed, the others with ``_sampled``, ``_active``),
    with their per-factor values, nulls and details, the reconstruction measures, the latents'
    statistics, the estimator's bias and how the model was evaluated."""
    kl = forward.kl.mean(axis=0)
    entropies = scored["mean"]["paper"].arrays["factor_entropies"]
    bias = metrics.plug_in_bias(
        settings.num_bins, np.asarray(dataset.factor_sizes), settings.num_train
    )
    record: dict[str, Any] = {}
    for representation, groups in scored.items():
        suffix = REPRESENTATIONS[representation].suffix
        for found in groups.values():
            for name, value in found.values.items():
                record[QUANTITIES[name].column(representation)] = value
            for name, values in found.per_factor.items():
                record[f"{name}_per_factor{suffix}"] = values.tolist()
            for name, draws in found.null.items():
                mean_column, upper_column = QUANTITIES[name].null_columns(representation)
                record[mean_column] = float(np.mean(draws))
                record[upper_column] = metrics.null_upper_point(draws)
            record |= {f"{name}{suffix}": value for name, value in found.details.items()}
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
        "dci_sample": list(settings.dci_sample) if settings.dci.enabled else None,
        "factor_vae_sample": dataclasses.asdict(settings.factor_vae_sample)
        if settings.factor_vae.enabled
        else None,
        "active_kl_threshold": settings.active_kl_threshold,
        "evaluation_seed": settings.seed,
        "device": str(device),
        "eval_seconds": seconds,
        "peak_gpu_mb": peak_gpu_mb(device),
    }


def _encode_and_reconstruct(
    model: nn.Module,
    dataset: PreparedDataset,
    split: EvaluationSplit,
    settings: EvaluationSettings,
) -> tuple[ForwardPass, ReconstructionSample]:
    """Means and KL of every evaluation image, the NLL of the first ``nll_images`` test images,
    and the figure's reconstructions."""
    tick = time.perf_counter()
    forward = forward_pass(
        model,
        split.images,
        np.arange(len(split.rows)),
        settings.batch_size,
        with_kl=True,
        with_nll=False,
    )
    nll = forward_pass(
        model,
        split.images,
        split.test[: settings.nll_count],
        settings.batch_size,
        with_kl=False,
        with_nll=True,
    ).nll
    forward = ForwardPass(means=forward.means, logvars=forward.logvars, kl=forward.kl, nll=nll)
    shown = split.test[: settings.reconstruction_images]
    reconstructions = ReconstructionSample(
        indices=split.rows[shown],
        originals=gather_rows(dataset.images, split.rows[shown]),
        reconstructions=reconstruct(model, split.images, shown),
    )
    logger.info("encoded and decoded in %.1f s", time.perf_counter() - tick)
    return forward, reconstructions
