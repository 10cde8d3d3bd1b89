"""The linear-Gaussian instance: random draws, instance files and seeds."""

from __future__ import annotations

import numpy as np
import pytest
from linear_helpers import REFERENCE, needs_reference

from lambdabeta import linear as L


def test_random_instance_is_seeded_and_in_range():
    first = L.random_instance(30, 4, 0.05, (0.1, 1.0), seed=3)
    again = L.random_instance(30, 4, 0.05, (0.1, 1.0), seed=3)
    other = L.random_instance(30, 4, 0.05, (0.1, 1.0), seed=4)
    assert first.gamma.shape == (30, 4) and first.factor_var.shape == (4,)
    np.testing.assert_array_equal(first.gamma, again.gamma)
    assert not np.allclose(first.gamma, other.gamma)
    assert np.all((first.factor_var >= 0.1) & (first.factor_var <= 1.0))
    sigma_y = first.sigma_y()
    np.testing.assert_allclose(
        sigma_y, first.gamma @ np.diag(first.factor_var) @ first.gamma.T + 0.05 * np.eye(30)
    )


@needs_reference
def test_published_instance_loads_and_round_trips(tmp_path):
    instance = L.load_instance(str(REFERENCE / "linear_instance_n100.npz"), noise_var=0.05)
    assert (instance.n, instance.s) == (100, 5)
    path = tmp_path / "copy.npz"
    L.save_instance(str(path), instance)
    again = L.load_instance(str(path))  # σ² comes from the file this time
    np.testing.assert_array_equal(again.gamma, instance.gamma)
    np.testing.assert_array_equal(again.factor_var, instance.factor_var)
    assert again.noise_var == 0.05


def test_bad_instance_files_fail_clearly(tmp_path):
    np.savez(tmp_path / "missing.npz", Gamma=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"missing arrays \['Sigma_V'\]"):
        L.load_instance(str(tmp_path / "missing.npz"), 0.05)
    np.savez(tmp_path / "full.npz", Gamma=np.ones((5, 2)), Sigma_V=np.ones((2, 2)))
    with pytest.raises(ValueError, match="diagonal"):
        L.load_instance(str(tmp_path / "full.npz"), 0.05)
    np.savez(tmp_path / "ok.npz", Gamma=np.ones((5, 2)), Sigma_V=np.eye(2))
    with pytest.raises(ValueError, match="no noise_var"):
        L.load_instance(str(tmp_path / "ok.npz"))
    with pytest.raises(ValueError, match="n = 6, s = 2"):
        L.make_instance(6, 3, 2, 0.05, (0.1, 1.0), seed=0, instance_file=str(tmp_path / "ok.npz"))


def test_instance_and_starts_use_separate_seeds():
    """The instance and the starts of one dims entry come from different streams of the config
    seed, and different dims give different streams."""
    assert L.starts_seed(0, 30, 6, 3) != L.derived_seed(0, 30, 6, 3, 0)
    assert L.starts_seed(0, 30, 6, 3) != L.starts_seed(0, 50, 6, 3)
    assert L.starts_seed(0, 30, 6, 3) == L.starts_seed(0, 30, 6, 3)
