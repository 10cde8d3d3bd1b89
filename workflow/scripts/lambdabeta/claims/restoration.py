"""Claims of the λ restoration (Fig 5): the finetunes at high β against λ = 0, paired by seed."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..aggregate import BASELINE_LAMBDA
from ..effects import Finetunes
from ..grid import FINETUNE
from ..selection import MIG_COLUMN
from ..statistics import ABOVE, BELOW, Evidence
from .registry import (
    DEEP_VIEWS,
    claim,
    high_betas,
    interval_text,
    judged_row,
    not_run,
    setting_text,
)
from .settings import ClaimSettings

# Latents are counted in whole units: a mean loss of less than half a latent over seeds is no loss.
ACTIVE_LATENTS_MARGIN = 0.5


def lambda_grid(
    metrics: pd.DataFrame, dataset: str, settings: ClaimSettings
) -> tuple[list[float], list[float], str]:
    """High β and λ > 0 of a dataset's finetuned grid, or a reason why the claim cannot run."""
    runs = metrics[(metrics["dataset"] == dataset) & (metrics["phase"] == FINETUNE)]
    if not (runs["lambda"] == BASELINE_LAMBDA).any():
        return [], [], "no finetuned λ = 0 models to compare with"
    lambdas = sorted(runs.loc[runs["lambda"] > BASELINE_LAMBDA, "lambda"].unique())
    if not lambdas:
        return [], [], "no λ > 0 in the grid"
    betas = high_betas(runs["beta"].unique(), settings.high_beta_min)
    if not betas:
        return [], [], f"no β ≥ claims.high_beta_min = {settings.high_beta_min:g} in the grid"
    return betas, lambdas, ""


def high_beta_text(settings: ClaimSettings) -> str:
    if settings.high_beta_min is None:
        return "high β (the upper half of the β grid)"
    return f"high β (β ≥ {settings.high_beta_min:g})"


def paired_change(
    finetunes: Finetunes,
    dataset: str,
    beta: float,
    lam: float,
    column: str,
    settings: ClaimSettings,
    threshold: float = 0.0,
    side: str = ABOVE,
) -> Evidence:
    """The seed-paired change of ``column`` from λ = 0 to ``lam`` at ``beta``
    (:meth:`lambdabeta.effects.Finetunes.differences`) tested against ``threshold``."""
    differences = finetunes.differences(dataset, beta, lam, column)
    return settings.test(differences.to_numpy(), threshold, side)


def null_margin(finetunes: Finetunes, dataset: str, beta: float, lam: float, score: str) -> float:
    """The non-inferiority margin of a score: the mean over the two compared settings' runs of
    its permutation null's spread (upper 95 % point − mean), i.e. how far above its typical
    value a model without information scores 1 time in 20. A drop smaller than that is within
    what chance alone moves the score. NaN where the null was not computed."""
    upper, mean = f"{score}_null_upper", f"{score}_null_mean"
    blocks = [finetunes.runs(dataset, beta, at) for at in (BASELINE_LAMBDA, lam)]
    if any(block is None or upper not in block or mean not in block for block in blocks):
        return float("nan")
    return float(pd.concat([block[upper] - block[mean] for block in blocks]).mean())


def _over_lambda_grid(
    metrics: pd.DataFrame,
    settings: ClaimSettings,
    test: str,
    judge: Callable[[Finetunes, str, float, float], tuple[Evidence, str]],
) -> list[dict]:
    """One row per dataset of a claim that must hold at every high β and every λ > 0:
    ``judge(finetunes, dataset, β, λ)`` gives that setting's evidence and a text; the claim is their
    ``all_of``. A dataset without the needed grid points gives ``not run``."""
    rows = []
    finetunes = Finetunes(metrics)
    for dataset in sorted(metrics["dataset"].unique()):
        betas, lambdas, reason = lambda_grid(metrics, dataset, settings)
        if reason:
            rows.append(not_run(dataset, test, reason))
            continue
        parts, texts = [], []
        for beta in betas:
            for lam in lambdas:
                evidence, text = judge(finetunes, dataset, beta, lam)
                parts.append(evidence)
                texts.append(text)
        rows.append(judged_row(dataset, test, settings.all_of(parts), "; ".join(texts), settings))
    return rows


@claim(
    "deep.lambda_improves_reconstruction",
    "§5.2 Fig 5",
    "At high β, every λ > 0 lowers the NLL against λ = 0 at the same β.",
    tables=("metrics",),
)
def deep_lambda_improves_reconstruction(
    metrics: pd.DataFrame, settings: ClaimSettings
) -> list[dict]:
    nll = settings.nll
    test = (
        f"at every {high_beta_text(settings)} and every λ > 0: the seed-paired change "
        f"NLL(β, λ) − NLL(β, 0), NLL = {nll} ({settings.mean_test_text}); reproduced if every "
        "change is below 0 (intersection-union), not reproduced if some is above "
        "(Bonferroni); the row shows the deciding setting"
    )

    def judge(finetunes: Finetunes, dataset: str, beta: float, lam: float):
        change = paired_change(finetunes, dataset, beta, lam, nll, settings, side=BELOW)
        return change, f"{setting_text(beta, lam)}: {interval_text(change.interval)}"

    return _over_lambda_grid(metrics, settings, test, judge)


def preservation_parts(
    finetunes: Finetunes,
    dataset: str,
    beta: float,
    lam: float,
    settings: ClaimSettings,
    scores: tuple[str, ...] = (MIG_COLUMN, "sap"),
) -> tuple[list[Evidence], str]:
    """Each of ``scores`` not lower by more than its null margin (:func:`null_margin`), I_m
    higher, no fewer active latents; and whether each score also rises (the same test at 0)."""
    parts, texts = [], []
    for score in scores:
        margin = null_margin(finetunes, dataset, beta, lam, score)
        kept = paired_change(finetunes, dataset, beta, lam, score, settings, -margin)
        rises = paired_change(finetunes, dataset, beta, lam, score, settings)
        parts.append(kept)
        texts.append(
            f"{score.upper()} {interval_text(kept.interval)} (margin {margin:.3g}; rises: "
            f"{settings.verdict(rises)})"
        )
    im = paired_change(finetunes, dataset, beta, lam, "im", settings)
    active = paired_change(
        finetunes, dataset, beta, lam, "active_latents", settings, -ACTIVE_LATENTS_MARGIN
    )
    texts += [
        f"I_m {interval_text(im.interval)}",
        f"active latents {interval_text(active.interval)}",
    ]
    return [*parts, im, active], f"{setting_text(beta, lam)}: " + ", ".join(texts)


@claim(
    "deep.lambda_preserves_disentanglement",
    "§5.2 Fig 5",
    "At high β, λ > 0 does not lower MIG or SAP (it 'preserves disentanglement') and keeps more "
    "information (I_m, active latents) than λ = 0 at the same β.",
    tables=("metrics",),
    views=DEEP_VIEWS,
)
def deep_lambda_preserves_disentanglement(
    metrics: pd.DataFrame, settings: ClaimSettings
) -> list[dict]:
    test = (
        f"at every {high_beta_text(settings)} and every λ > 0, seed-paired against λ = 0 at the "
        f"same β ({settings.mean_test_text}): MIG and SAP changes above −(their permutation "
        "null's spread: upper 95 % point − mean, averaged over the compared models), the test "
        "of 'does not worsen' (whether each also rises, the paper's 'improves overall scores', "
        "is in the detail); I_m change above 0; change of active latents above "
        f"−{ACTIVE_LATENTS_MARGIN:g}; reproduced if all hold (intersection-union)"
    )
    if not {f"{MIG_COLUMN}_null_upper", "sap_null_upper"} <= set(metrics.columns):
        return [
            not_run(
                dataset,
                test,
                "no permutation null of MIG and SAP in the metrics (deep.evaluate.null_shuffles)",
            )
            for dataset in sorted(metrics["dataset"].unique())
        ]

    def judge(finetunes: Finetunes, dataset: str, beta: float, lam: float):
        parts, text = preservation_parts(finetunes, dataset, beta, lam, settings)
        return settings.all_of(parts), text

    return _over_lambda_grid(metrics, settings, test, judge)
