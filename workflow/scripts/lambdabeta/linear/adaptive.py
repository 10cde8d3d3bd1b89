"""The adaptive-λ controller (``lambdabeta.control``) on the linear model, where its answer is
known: a target information rate I* fixes c* (``closed_form.c_for_information``), so the λ that
holds it at β is λ*(β) = (β − 1)·c*.

The fixed point runs one iteration at a time; after each, the controller reads the encoder's
KL, ½[tr Σ_X − m − log|Σ_W|] (at a stationary point I(X; Y)), and sets λ for the next iteration.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from ..control import ControllerSettings, ControllerState
from .closed_form import lambda_for_information
from .fixed_point import run_fixed_point
from .instance import DTYPE, Instance
from .objective import objective_terms
from .starts import initial_params


def controlled_fixed_point(
    instance: Instance,
    m: int,
    betas: Sequence[float],
    law: ControllerSettings,
    iterations: int,
    seed: int,
    init: str = "authors",
) -> pd.DataFrame:
    """For each β (> 1), from one start: the fixed point with λ set by ``law`` after every
    iteration (all β as one batch, one controller loop each); the final λ and KL beside the
    closed form's λ*(β) for the target ``law.target``, and the spread of λ over the last tenth
    of the iterations relative to its final value."""
    count = len(betas)
    starts = initial_params(instance, m, 1, seed, init=init)
    b, sigma_w = starts.b.expand(count, -1, -1), starts.sigma_w.expand(count, -1, -1)
    beta = torch.tensor([float(v) for v in betas], dtype=DTYPE)
    state = ControllerState(law, shape=(count,))
    history = []
    for _ in range(iterations):
        result = run_fixed_point(
            instance, b, sigma_w, beta, state.lam.to(DTYPE), max_iter=1, tol=0.0
        )
        b, sigma_w = result.params.b, result.params.sigma_w
        state.update(objective_terms(instance, result.params)["kl"])
        history.append(state.lam.double().clone())
    lambdas = torch.stack(history)  # iterations × β
    tail = lambdas[-max(1, iterations // 10) :]
    final = lambdas[-1]
    rows = []
    for k, value in enumerate(betas):
        exact = lambda_for_information(instance, m, float(value), law.target)
        rows.append(
            {
                "beta": float(value),
                "target": law.target,
                "lambda": float(final[k]),
                "exact_lambda": exact,
                "relative_error": (float(final[k]) - exact) / exact,
                "kl": float(state.average[k]),
                "tail_spread": float((tail[:, k].max() - tail[:, k].min()) / final[k]),
                "iterations": iterations,
            }
        )
    return pd.DataFrame(rows)
