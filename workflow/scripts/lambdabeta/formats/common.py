"""What every format reader shares: the request it answers and the grid it returns, the error
it raises, the checks of an upstream image array and factor grid, and the memory-mapped
images.npy it writes rows into."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

IMAGE_SIDE = 64


class PreparationError(ValueError):
    """An upstream file does not have the expected content; the message names the file."""


@dataclass(frozen=True)
class Grid:
    """The factor grid of a prepared dataset."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    image_shape: tuple[int, int, int]
    factor_values: dict[str, list] | None = None

    @property
    def num_images(self) -> int:
        return math.prod(self.factor_sizes)


@dataclass(frozen=True)
class ReadRequest:
    """What ``prepare`` asks a format's reader to write (see ``prepare`` for each option)."""

    src: Path | None  # the upstream file; None for a format that renders its images
    images_path: Path  # the images.npy the reader creates and fills
    chunk: int  # images read, rendered and written at a time
    factor_sizes: Sequence[int] | None = None  # formats that read an upstream file
    subgrid: Mapping[str, int] | None = None  # formats that render their images
    threads: int | None = None  # formats that render their images


@dataclass(frozen=True)
class Reader:
    """How one format's images.npy is written, and what the format needs.

    ``read`` creates ``request.images_path`` and returns the grid it holds. A format that
    ``renders`` its images reads no upstream file and is the only kind that takes a
    ``subgrid``; any other reads ``request.src``.
    """

    read: Callable[[ReadRequest], Grid]
    renders: bool = False


# ---- checks of an upstream file ---------------------------------------------------------------


def check_images(
    origin: str, shape: tuple[int, ...], dtype: np.dtype, row_shape: tuple[int, ...]
) -> int:
    """Number of images, after checking an upstream image array is uint8 N × ``row_shape``."""
    if dtype != np.uint8:
        raise PreparationError(f"{origin}: dtype {dtype}, expected uint8")
    if len(shape) != 1 + len(row_shape) or tuple(shape[1:]) != row_shape:
        raise PreparationError(
            f"{origin}: shape {tuple(shape)}, expected N × " + " × ".join(map(str, row_shape))
        )
    if shape[0] == 0:
        raise PreparationError(f"{origin}: holds no images")
    return int(shape[0])


def canonical_rows(classes: np.ndarray, sizes: Sequence[int], origin: str) -> np.ndarray:
    """Canonical row ``ravel_multi_index(classes[i], sizes)`` of every upstream row ``i``.

    Raises ``PreparationError`` unless the rows are exactly the full grid: ``N = prod(sizes)``
    and every class combination occurs once.
    """
    sizes = tuple(int(s) for s in sizes)
    expected = math.prod(sizes)
    if len(classes) != expected:
        raise PreparationError(
            f"{origin}: {len(classes)} rows, but the factor grid {sizes} has "
            f"{expected} combinations"
        )
    rows = np.ravel_multi_index(tuple(classes.T), sizes)
    counts = np.bincount(rows, minlength=expected)
    if np.any(counts != 1):
        missing = np.flatnonzero(counts == 0)
        example = tuple(int(c) for c in np.unravel_index(missing[0], sizes))
        raise PreparationError(
            f"{origin}: incomplete factor grid {sizes}: {len(missing)} class "
            f"combination(s) missing (e.g. {example}) and "
            f"{int(np.sum(counts > 1))} repeated"
        )
    return rows


def check_sizes(
    origin: str, found: tuple[int, ...], expected: Sequence[int] | None, published: tuple[int, ...]
) -> None:
    """Compare the grid found in a file with the requested one; note a non-published grid."""
    if expected is not None and tuple(expected) != found:
        raise PreparationError(f"{origin}: factor sizes {found}, expected {tuple(expected)}")
    if found != published:
        log.warning(
            "%s: factor sizes %s differ from the published grid %s", origin, found, published
        )


def classes_by_rank(values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class index of each value = rank of the value among the column's distinct values."""
    classes = np.empty(values.shape, dtype=np.int64)
    uniques = []
    for column in range(values.shape[1]):
        unique, classes[:, column] = np.unique(values[:, column], return_inverse=True)
        uniques.append(unique)
    return classes, uniques


# ---- the images written -----------------------------------------------------------------------


def open_images(path: Path, grid: Grid) -> np.memmap:
    """Create images.npy at ``path``, memory-mapped, with one row per image of ``grid``."""
    return np.lib.format.open_memmap(
        path, mode="w+", dtype=np.uint8, shape=(grid.num_images, *grid.image_shape)
    )


def place_rows(images: np.ndarray, rows: np.ndarray, block: np.ndarray) -> None:
    """``images[rows] = block``; one slice copy when the rows are consecutive (in-order files)."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
        images[rows[0] : rows[-1] + 1] = block
    else:
        images[rows] = block


def progress(total: int, desc: str) -> tqdm:
    """A progress bar over ``total`` images, updated at most every 5 s."""
    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, mininterval=5.0)
