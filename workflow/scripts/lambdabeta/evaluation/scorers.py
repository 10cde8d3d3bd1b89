"""The scoring functions of the evaluation, one per group of scores in ``lambdabeta.scores``.

A scoring function takes one representation's :class:`Codes` and returns :class:`Scored`:
values under the names of the quantities it computes (``mig``, ``dci_disentanglement``, …),
and optionally per-factor values, permutation nulls and details. ``lambdabeta.evaluate``
calls, for every representation, the function of every group whose quantities are computed on
it (``SCORERS``; a group whose settings turn it off is skipped), and writes each value under
the quantity's column for that representation. A new score is a function here, registered in
``SCORERS`` under its group, and its entries in ``lambdabeta.scores``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import metrics
from ..loader import PreparedDataset
from ..scores import QUANTITIES, REPRESENTATIONS
from .settings import EvaluationSettings
from .split import DCI_STREAM, FACTOR_VAE_STREAM, NULL_STREAM, EvaluationSplit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Codes:
    """One representation of a model's codes on the evaluation images, and what scoring it
    needs.

    ``values``: N × m codes of the evaluation images (rows as ``split.rows``). ``encode``: the
    codes of any images of the dataset (uint8 N × H × W × C) in this representation, for scores
    that draw their own images (FactorVAE). ``seed(stream)``: this seed's evaluation stream
    ``stream`` (``split.evaluation_stream``). ``mean``: what the encoder mean scored, for the
    representations derived from it (``active``), with ``active`` the latents that carry
    information."""

    representation: str
    values: np.ndarray
    dataset: PreparedDataset
    split: EvaluationSplit
    settings: EvaluationSettings
    threads: int
    seed: Callable[[int], np.random.SeedSequence]
    encode: Callable[[np.ndarray], np.ndarray] | None = None
    mean: Scored | None = None
    active: np.ndarray | None = None

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """Codes and factors of the evaluation train images."""
        return self.values[self.split.train], self.dataset.factors[
            self.split.rows[self.split.train]
        ]

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """Codes and factors of the evaluation test images."""
        return self.values[self.split.test], self.dataset.factors[self.split.rows[self.split.test]]


@dataclass(frozen=True)
class Scored:
    """What one scoring function found: ``values`` by quantity name; ``per_factor`` arrays
    (length K) by quantity name; ``null`` draws by quantity name; ``details``: other JSON-ready
    values worth keeping (written with the representation's suffix); ``arrays``: what other
    parts of the evaluation reuse (the MI matrix, the SAP accuracies)."""

    values: dict[str, float]
    per_factor: dict[str, np.ndarray] = field(default_factory=dict)
    null: dict[str, np.ndarray] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


# ---- the paper's scores: MIG, SAP, I_m ----------------------------------------------------------


def score_paper(codes: Codes) -> Scored:
    """MIG, SAP and I_m (``lambdabeta.metrics``), with their per-factor values and, on the
    representations that draw one, their permutation null.

    MIG, I_m and the m × K mutual information matrix use the train images (``num_bins``
    equal-width bins per latent); SAP fits one ``LinearSVC`` per latent and factor on the train
    images and scores on the test images. The ``active`` representation reuses the mean's SAP
    fits for the latents it keeps; its other columns are constant, and one classifier per factor
    on a constant feature gives their accuracy.
    """
    settings = codes.settings
    tick = time.perf_counter()
    (train_codes, train_factors), (test_codes, test_factors) = codes.train, codes.test
    mutual_information = metrics.discrete_mutual_information(
        train_codes, train_factors, settings.num_bins
    )
    factor_entropies = metrics.discrete_entropy(train_factors)
    mig_per_factor = metrics.mig_per_factor(mutual_information, factor_entropies)
    logger.info("mutual information in %.1f s", time.perf_counter() - tick)

    tick = time.perf_counter()
    null: dict[str, np.ndarray] = {}
    if codes.mean is None:
        predictions = metrics.sap_predictions(
            train_codes, train_factors, test_codes, test_factors, C=settings.sap_c,
            n_jobs=codes.threads,
        )  # fmt: skip
        sap_scores = metrics.sap_accuracies(predictions, test_factors)
        if settings.null_shuffles and REPRESENTATIONS[codes.representation].null:
            null = metrics.permutation_null(
                metrics.discretize(train_codes, settings.num_bins),
                train_factors,
                predictions,
                test_factors,
                settings.null_shuffles,
                codes.seed(NULL_STREAM),
            )
    else:
        zeros = np.zeros((len(train_codes), 1)), np.zeros((len(test_codes), 1))
        constant = metrics.sap_matrix(
            zeros[0], train_factors, zeros[1], test_factors, C=settings.sap_c,
            n_jobs=codes.threads,
        )  # fmt: skip
        kept = codes.active[:, None]
        sap_scores = np.where(kept, codes.mean.arrays["sap_scores"], constant)
    sap_per_factor = metrics.top_two_gap(sap_scores)
    logger.info("SAP classifiers in %.1f s", time.perf_counter() - tick)
    return Scored(
        values={
            "mig": float(mig_per_factor.mean()),
            "sap": float(sap_per_factor.mean()),
            "im": metrics.matched_information(mutual_information),
        },
        per_factor={"mig": mig_per_factor, "sap": sap_per_factor},
        null=null,
        arrays={
            "mutual_information": mutual_information,
            "factor_entropies": factor_entropies,
            "sap_scores": sap_scores,
        },
    )


# ---- disentanglement_lib's DCI and FactorVAE score ----------------------------------------------


def score_dci(codes: Codes) -> Scored:
    """DCI (``metrics.dci``) of the first ``dci.num_train`` train and ``dci.num_test`` test
    images: one gradient-boosted classifier per factor, fitted on ``threads`` threads, all
    seeded by the seed's DCI stream (so every model of a seed draws alike)."""
    tick = time.perf_counter()
    num_train, num_test = codes.settings.dci_sample
    (train_codes, train_factors), (test_codes, test_factors) = codes.train, codes.test
    seed = int(codes.seed(DCI_STREAM).generate_state(1)[0])
    found = metrics.dci(
        train_codes[:num_train], train_factors[:num_train], test_codes[:num_test],
        test_factors[:num_test], random_state=seed, n_jobs=codes.threads,
    )  # fmt: skip
    logger.info("DCI in %.1f s", time.perf_counter() - tick)
    return Scored(
        values={
            "dci_disentanglement": found["disentanglement"],
            "dci_completeness": found["completeness"],
            "dci_informativeness": found["informativeness_test"],
            "dci_informativeness_train": found["informativeness_train"],
        }
    )


def score_factor_vae(codes: Codes) -> Scored:
    """The FactorVAE score (``metrics.factor_vae_score``) with the sample of
    ``deep.evaluate.factor_vae``: its images are drawn from the whole dataset by factor values
    (``PreparedDataset.images_for``), from the seed's FactorVAE stream, and encoded in this
    representation."""
    tick = time.perf_counter()
    sample = codes.settings.factor_vae_sample
    found = metrics.factor_vae_score(
        codes.encode,
        codes.dataset.factor_sizes,
        codes.dataset.images_for,
        batch_size=sample.batch_size,
        num_train=sample.num_train,
        num_eval=sample.num_eval,
        num_variance_estimate=sample.num_variance_estimate,
        random_state=np.random.RandomState(codes.seed(FACTOR_VAE_STREAM).generate_state(1)),
    )
    logger.info("FactorVAE score in %.1f s", time.perf_counter() - tick)
    return Scored(
        values={"factor_vae": found["eval_accuracy"], "factor_vae_train": found["train_accuracy"]},
        details={"factor_vae_active_dims": found["num_active_dims"]},
    )


# ---- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scorer:
    """A scoring function and whether the settings ask for it."""

    function: Callable[[Codes], Scored]
    wanted: Callable[[EvaluationSettings], bool] = lambda settings: True


SCORERS: dict[str, Scorer] = {
    "paper": Scorer(score_paper),
    "dci": Scorer(score_dci, lambda settings: settings.dci.enabled),
    "factor_vae": Scorer(score_factor_vae, lambda settings: settings.factor_vae.enabled),
}
"""The scoring function of each group of ``lambdabeta.scores``, in the order they run."""


def groups_on(representation: str, settings: EvaluationSettings) -> list[str]:
    """The groups scored on ``representation`` under ``settings``, in ``SCORERS`` order."""
    on = {q.group for q in QUANTITIES.values() if representation in q.representations}
    return [group for group, scorer in SCORERS.items() if group in on and scorer.wanted(settings)]


def score(codes: Codes, groups: Mapping[str, Scorer] | None = None) -> dict[str, Scored]:
    """Every group's scores of ``codes``, by group."""
    groups = SCORERS if groups is None else groups
    return {
        group: groups[group].function(codes)
        for group in groups_on(codes.representation, codes.settings)
        if group in groups
    }
