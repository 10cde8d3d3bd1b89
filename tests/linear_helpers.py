"""Shared pieces of the linear-study tests: a small instance and the published instances."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdabeta import linear as L

# the authors' instances, in the shared folder beside the repository (as in CI)
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="the published reference instances are absent"
)


def small_instance() -> L.Instance:
    """n = 24, s = 3: big enough for every effect the tests check, fast enough for many runs."""
    return L.random_instance(n=24, s=3, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=7)


def total_loss(instance, params, beta, lam):
    return L.loss(L.objective_terms(instance, params), beta, lam)
