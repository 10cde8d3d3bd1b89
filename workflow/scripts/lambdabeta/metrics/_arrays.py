"""Checks shared by the metrics: every array has one row per sample (N × columns, non-empty),
and arrays that describe the same samples have the same number of rows."""

from __future__ import annotations

import numpy as np


def _as_samples_by_columns(array: np.ndarray, name: str, dtype: type | None = None) -> np.ndarray:
    array = np.asarray(array, dtype=dtype)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty N × columns array (one row per sample), "
            f"got shape {array.shape}"
        )
    return array


def _check_same_samples(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{name_a} has {a.shape[0]} samples (rows) but {name_b} has {b.shape[0]}")


def _classifier_split(
    codes: tuple[np.ndarray, np.ndarray],
    factors: tuple[np.ndarray, np.ndarray],
    names: tuple[str, str, str, str],
    classifiers: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (train, test) codes as float64 and (train, test) factors of a metric that fits
    ``classifiers`` on the codes, checked: samples in rows, as many codes and factors in both
    halves, finite codes. ``names``: the four arrays' names (train codes, test codes, train
    factors, test factors) for the messages."""
    train_codes, test_codes = (
        _as_samples_by_columns(array, name, dtype=np.float64)
        for array, name in zip(codes, names[:2], strict=True)
    )
    train_factors, test_factors = (
        _as_samples_by_columns(array, name) for array, name in zip(factors, names[2:], strict=True)
    )
    _check_same_samples(train_codes, train_factors, names[0], names[2])
    _check_same_samples(test_codes, test_factors, names[1], names[3])
    if train_codes.shape[1] != test_codes.shape[1]:
        raise ValueError(
            f"{names[0]} has {train_codes.shape[1]} codes but {names[1]} {test_codes.shape[1]}"
        )
    if train_factors.shape[1] != test_factors.shape[1]:
        raise ValueError(
            f"{names[2]} has {train_factors.shape[1]} factors but {names[3]} "
            f"{test_factors.shape[1]}"
        )
    for name, array in zip(names[:2], (train_codes, test_codes), strict=True):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contain NaN or inf; cannot fit the {classifiers} classifiers")
    return train_codes, test_codes, train_factors, test_factors
