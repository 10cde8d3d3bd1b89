"""What each deep claim's scenarios draw: the means of every setting of the grid and the tables
the claim reads, built on :func:`~lambdabeta.calibration.simulation.simulate`. Each builder
takes the size of the change it plants (0, or a value at the claim's boundary, for a scenario
without an effect; ``EFFECT`` noise units for one with an effect) and returns
``tables(seeds, noise, rng)``, the tables by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ..claims.adaptive import PREFERENCE
from ..claims.selection import selected_betas
from ..selection import augmented_tchebycheff
from .simulation import BETAS, DATASET, HIGH_BETAS, LAMBDAS, LAST, NEUTRAL, Means, Noise, simulate

EFFECT = 3.0
"""The planted effect, in units of the runs' noise."""


def metrics_only(means: Means, **options) -> Callable:
    """The tables of a claim that reads the metrics table alone, ``simulate``'s options given."""

    def tables(seeds: int, noise: Noise, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        return {"metrics": simulate(means, seeds, noise, rng, **options)}

    return tables


def _index(beta: float) -> int:
    return BETAS.index(beta)


Shape = Callable[[int], float]
"""A score along the β grid: its mean at the k-th β."""


def score_means(mig: Shape, sap: Shape | None = None) -> Means:
    """MIG and SAP (by default MIG's shape) of the stabilized models along the β grid."""
    sap = sap or mig

    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        k = _index(beta)
        return NEUTRAL | {"mig": mig(k), "sap": sap(k)}

    return means


def nll_means(shape: Callable[[int], float]) -> Means:
    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        value = shape(_index(beta))
        return {
            "train_bce": value,
            "recon_nll": value,
            "mig": 0.0,
            "sap": 0.0,
            "im": 0.0,
            "active_latents": 0.0,
        }

    return means


Change = float | Callable[[float, float], float]
"""A change against λ = 0: the same at every setting, or a function of (β, λ)."""


def _at(change: Change, beta: float, lam: float) -> float:
    return change(beta, lam) if callable(change) else float(change)


def restoration_means(
    nll: Change = 0.0,
    mig: Change = 0.0,
    im: Change = 0.0,
    active: Change = 0.0,
    sap: Change | None = None,
    spread: float = 1.0,
) -> Means:
    """Finetune changes against λ = 0 (0 at λ = 0; SAP's by default MIG's), each score's
    permutation null spread ``spread`` (the non-inferiority margin of MIG and SAP)."""
    sap = mig if sap is None else sap

    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        def change(spec: Change) -> float:
            return _at(spec, beta, lam) if lam > 0.0 else 0.0

        return {
            "train_bce": change(nll),
            "recon_nll": change(nll),
            "mig": change(mig),
            "sap": change(sap),
            "im": change(im),
            "active_latents": change(active),
            "mig_null_mean": 0.0,
            "mig_null_upper": spread,
            "sap_null_mean": 0.0,
            "sap_null_upper": spread,
        }

    return means


_NULL_COLUMNS = {f"{s}_null_{p}": 0.0 for s in ("mig", "sap") for p in ("mean", "upper")}


def restoration_tables(means: Means) -> Callable:
    """Finetunes whose null columns are exact (no noise), as evaluation computes them."""
    return metrics_only(means, scale=dict(_NULL_COLUMNS))


def one_off(good: float, boundary: float = 0.0) -> Callable[[float, float], float]:
    """``good`` at every (high β, λ) but one, where it is ``boundary``: the least favourable
    table of a claim over every part (one part exactly at the boundary, the others clear)."""
    return lambda beta, lam: boundary if (beta, lam) == (HIGH_BETAS[0], LAMBDAS[1]) else good


def _collapse_means(mig: Mapping[str, float], sap: Mapping[str, float] | None = None) -> Means:
    """MIG (SAP) of 0.5 at the small β falling to 0.5·(1 − mig[dataset]) (sap[dataset], by
    default MIG's) at the largest (noise 0.05 per run)."""
    sap = sap or mig

    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        fall = max(0, _index(beta) - 3) / (LAST - 3)
        return NEUTRAL | {
            "mig": 0.5 * (1.0 - mig[dataset] * fall),
            "sap": 0.5 * (1.0 - sap[dataset] * fall),
        }

    return means


def collapse_tables(mig: Mapping[str, float], sap: Mapping[str, float] | None = None) -> Callable:
    def tables(seeds: int, noise: Noise, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        metrics = simulate(
            _collapse_means(mig, sap),
            seeds,
            noise,
            rng,
            datasets=tuple(mig),
            scale={"mig": 0.05, "sap": 0.05},
            phases=("stabilize",),
        )
        return {"metrics": metrics}

    return tables


NULL_MEAN = 5.0
"""The null mean of a sampled score in null spreads (noise units): the plug-in bias of a latent
without information is several times the spread of its estimate."""


def _sampled_means(mig: float, im: float) -> Means:
    """Sampled MIG and I_m at ``mig`` and ``im`` null spreads above their null's mean (1.87
    spreads: at the upper 95 % point of 19 normal shuffles); one null spread is one noise
    unit. The plug-in bias columns of older tables hold the null mean."""

    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        record = dict(NEUTRAL)
        for score, excess in (("mig", mig), ("im", im)):
            record |= {
                f"{score}_sampled": NULL_MEAN + excess,
                f"{score}_sampled_null_mean": NULL_MEAN,
                f"{score}_sampled_null_upper": NULL_MEAN + UPPER_SPREADS,
                f"{score}_bias": NULL_MEAN,
            }
        return record

    return means


UPPER_SPREADS = 1.87
"""The upper 95 % point of 19 shuffles (their largest) above their mean, in standard deviations
of a normal null: E[max of 19 normals]."""


def sampled_tables(mig: float, im: float) -> Callable:
    exact = {f"{s}_sampled_null_{p}": 0.0 for s in ("mig", "im") for p in ("mean", "upper")}
    exact |= {"mig_bias": 0.0, "im_bias": 0.0}
    return metrics_only(_sampled_means(mig, im), scale=exact, phases=("stabilize",))


def selection_tables(mig: Callable[[float, float], float]) -> Callable:
    """Finetunes with the NLL rising 3 units per β step (so w₁ = 1 picks the smallest β) and
    MIG ``mig(β, λ)``; selection.csv from the same scoring as the selection rule."""

    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        return {
            "train_bce": EFFECT * _index(beta),
            "recon_nll": EFFECT * _index(beta),
            "mig": mig(beta, lam),
            "sap": 0.0,
            "im": 0.0,
            "active_latents": 0.0,
        }

    def tables(seeds: int, noise: Noise, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        metrics = simulate(means, seeds, noise, rng, phases=("finetune",))
        grid = metrics.pivot_table(
            index="seed", columns=["beta", "lambda"], values=["train_bce", "mig"]
        )
        points = list(grid["train_bce"].columns)
        betas = np.array([beta for beta, _ in points])
        chosen = selected_betas(
            grid["train_bce"][points].to_numpy(),
            grid["mig"][points].to_numpy(),
            betas,
            [0.0, 1.0],
            1e-3,
        )
        selection = pd.DataFrame({"dataset": DATASET, "w1": [0.0, 1.0], "beta": chosen})
        return {"metrics": metrics, "selection": selection}

    return tables


def concentration_tables(change: float) -> Callable:
    def tables(seeds: int, noise: Noise, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        # a seed's two MI matrices come from different models: independent draws
        draws = noise(rng, (2, seeds))
        rows = [
            {
                "dataset": DATASET,
                "role": role,
                "beta": beta,
                "lambda": lam,
                "seed": seed,
                "concentration": 0.5
                + (change if role == "concentrated" else 0.0)
                + 0.05 * draws[i, seed],
                "representation": "mean",
            }
            for i, (role, beta, lam) in enumerate(
                (("reference", 1.0, 0.0), ("concentrated", 8.0, 32.0))
            )
            for seed in range(seeds)
        ]
        return {"concentration": pd.DataFrame(rows)}

    return tables


ADAPTIVE_MARGIN = 0.1


def adaptive_tables(error: float, first: float | None = None) -> Callable:
    """Adaptive finetunes at every high β whose control error has mean ``error`` (``first``
    at the first high β; noise 0.02)."""

    def means(dataset: str, phase: str, beta: float, lam: float) -> dict[str, float]:
        return NEUTRAL | {
            "control_error": first if first is not None and beta == HIGH_BETAS[0] else error,
            "control_target": 7.0,
            "final_lambda": 100.0,
        }

    def tables(seeds: int, noise: Noise, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        metrics = simulate(
            means,
            seeds,
            noise,
            rng,
            phases=("adaptive",),
            scale={"control_error": 0.02, "control_target": 0.0, "final_lambda": 0.0},
        )
        return {"metrics": metrics[metrics["beta"].isin(HIGH_BETAS)]}

    return tables


def matching_tables(score_difference: float, first: float | None = None) -> Callable:
    """Static finetunes at one λ > 0 besides λ = 0, and adaptive finetunes whose NLL exceeds
    that λ's by the amount that makes the noise-free Tchebycheff score difference (w₁ = 0.5)
    ``score_difference`` (``first`` at the first high β); MIG is the same. The NLL spans 7 × 3
    units over the grid, so one unit of noise moves the normalisation little."""
    span = EFFECT * LAST
    lam = LAMBDAS[1]

    def static(beta: float, lam_: float) -> dict[str, float]:
        nll = EFFECT * _index(beta) - (EFFECT if lam_ > 0 else 0.0)
        return {
            "train_bce": nll,
            "recon_nll": nll,
            "mig": 0.5,
            "sap": 0.0,
            "im": 0.0,
            "active_latents": 0.0,
        }

    def offset(difference: float) -> float:
        # f1 of a high-β point dominates the max at w₁ = 0.5 (f2 = 0 with MIG flat), so the
        # score is linear in the NLL there, with the same slope at every high β
        f1 = (static(HIGH_BETAS[0], lam)["train_bce"] + EFFECT) / (span + EFFECT)
        base = augmented_tchebycheff(np.array(f1), np.array(0.0), PREFERENCE)
        step = augmented_tchebycheff(
            np.array(f1 + 1.0 / (span + EFFECT)), np.array(0.0), PREFERENCE
        )
        return float(difference / (step - base))

    shifts = {beta: offset(score_difference) for beta in BETAS}
    if first is not None:
        shifts[HIGH_BETAS[0]] = offset(first)

    def means(dataset: str, phase: str, beta: float, lam_: float) -> dict[str, float]:
        if phase == "adaptive":
            record = static(beta, lam)
            record["train_bce"] += shifts[beta]
            record["recon_nll"] += shifts[beta]
            return record | {"final_lambda": lam, "control_error": 0.0, "control_target": 7.0}
        return static(beta, lam_) | {
            "final_lambda": lam_,
            "control_error": np.nan,
            "control_target": np.nan,
        }

    def tables(seeds: int, noise: Noise, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        metrics = simulate(
            means,
            seeds,
            noise,
            rng,
            phases=("finetune", "adaptive"),
            scale={"mig": 0.0, "final_lambda": 0.0, "control_error": 0.0, "control_target": 0.0},
        )
        metrics = metrics[metrics["lambda"].isin([0.0, lam]) | (metrics["phase"] == "adaptive")]
        return {"metrics": metrics}

    return tables


def peak(k: int) -> float:
    """A score that peaks at the middle of the β grid, ``EFFECT`` above both ends."""
    return EFFECT if 0 < k < LAST and abs(k - LAST / 2) < 2 else 0.0
