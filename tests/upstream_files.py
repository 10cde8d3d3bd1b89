"""Tiny files in the exact formats of the upstream dataset files.

The grids are small but the layouts are the real ones: dSprites' .npz (``imgs``,
``latents_classes``, ``latents_values``, pickled ``metadata``), 3dshapes.h5 (``images``,
float ``labels``) and mpi3d_real.npz (``images`` only). Every image carries its canonical grid
index ``ravel_multi_index(classes, sizes)`` in the bits of the first 16 pixels of its first row
(channel 0), so a test can tell where a prepared image landed with ``decode_index``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

INDEX_BITS = 16
DSPRITES_TEST_SIZES = (3, 2, 2, 2, 2)  # shape, scale, orientation, pos_x, pos_y
SHAPES3D_TEST_SIZES = (2, 2, 2, 3, 2, 2)  # floor, wall, object hue, scale, shape, orientation
MPI3D_TEST_SIZES = (2, 2, 1, 1, 1, 3, 2)


def grid_classes(sizes: Sequence[int]) -> np.ndarray:
    """All class combinations of a grid in canonical order (C order, last fastest), N × K."""
    return np.stack(np.unravel_index(np.arange(math.prod(sizes)), tuple(sizes)), axis=1)


def encode_index(index: np.ndarray, image_shape: tuple[int, ...], on: int) -> np.ndarray:
    """uint8 images, zero except bit j of ``index`` written as ``on`` at pixel (0, j), channel 0."""
    index = np.asarray(index)
    if index.max(initial=0) >= 1 << INDEX_BITS:
        raise ValueError(f"indices must be below 2**{INDEX_BITS}")
    images = np.zeros((len(index), *image_shape), dtype=np.uint8)
    bits = (index[:, None] >> np.arange(INDEX_BITS)) & 1
    first_row = images[:, 0, :INDEX_BITS] if len(image_shape) == 2 else images[:, 0, :INDEX_BITS, 0]
    first_row[...] = bits * on
    return images


def decode_index(images: np.ndarray) -> np.ndarray:
    """Inverse of ``encode_index`` for N × H × W or N × H × W × C images (any nonzero = bit 1)."""
    first_row = images[:, 0, :INDEX_BITS] if images.ndim == 3 else images[:, 0, :INDEX_BITS, 0]
    return ((first_row > 0).astype(np.int64) << np.arange(INDEX_BITS)).sum(axis=1)


def dsprites_arrays(
    sizes: Sequence[int] = DSPRITES_TEST_SIZES, permutation: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The arrays of dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz for a small grid.

    Colour is latents column 0 with a single class; images are {0, 1}. ``permutation`` reorders
    the rows (the real file is in canonical order).
    """
    classes = grid_classes(sizes)
    num_images = len(classes)
    values = [
        np.array([1.0]),
        np.arange(1.0, 1.0 + sizes[0]),
        np.linspace(0.5, 1.0, sizes[1]),
        np.linspace(0.0, 2 * np.pi, sizes[2]),
        np.linspace(0.0, 1.0, sizes[3]),
        np.linspace(0.0, 1.0, sizes[4]),
    ]
    latents_classes = np.concatenate([np.zeros((num_images, 1), np.int64), classes], axis=1)
    latents_values = np.stack(
        [v[c] for v, c in zip(values, latents_classes.T, strict=True)], axis=1
    )
    imgs = encode_index(np.arange(num_images), (64, 64), on=1)
    imgs[:, 32:40, 32:40] = 1  # a sprite-like block, so that images are not mostly empty rows
    metadata = {
        "title": "dSprites dataset",
        "latents_names": ("color", "shape", "scale", "orientation", "posX", "posY"),
        "latents_sizes": np.array([1, *sizes]),
        "latents_possible_values": {"scale": values[2], "orientation": values[3]},
    }
    order = np.arange(num_images) if permutation is None else permutation
    return {
        "imgs": imgs[order],
        "latents_classes": latents_classes[order],
        "latents_values": latents_values[order],
        "metadata": np.array(metadata, dtype=object),
    }


def shapes3d_arrays(
    sizes: Sequence[int] = SHAPES3D_TEST_SIZES, seed: int | None = 0
) -> dict[str, np.ndarray]:
    """The arrays of 3dshapes.h5 for a small grid: float label VALUES, rows shuffled by ``seed``."""
    classes = grid_classes(sizes)
    values = [
        np.linspace(0.0, 0.9, sizes[0]),
        np.linspace(0.0, 0.9, sizes[1]),
        np.linspace(0.0, 0.9, sizes[2]),
        np.linspace(0.75, 1.25, sizes[3]),
        np.arange(float(sizes[4])),
        np.linspace(-30.0, 30.0, sizes[5]),
    ]
    labels = np.stack([v[c] for v, c in zip(values, classes.T, strict=True)], axis=1)
    images = encode_index(np.arange(len(classes)), (64, 64, 3), on=255)
    images[..., 1] = 100  # colour the images so channels differ
    order = (
        np.arange(len(classes))
        if seed is None
        else np.random.default_rng(seed).permutation(len(classes))
    )
    return {"images": images[order], "labels": labels[order]}


def mpi3d_arrays(sizes: Sequence[int] = MPI3D_TEST_SIZES) -> dict[str, np.ndarray]:
    """The array of mpi3d_real.npz (``images`` only, canonical order) for a small grid."""
    images = encode_index(np.arange(math.prod(sizes)), (64, 64, 3), on=200)
    images[..., 2] = 50
    return {"images": images}


def write_npz(path: str | Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> Path:
    """Write ``arrays`` as numpy writes an .npz (``np.savez_compressed`` or ``np.savez``)."""
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return Path(path)


def write_h5(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as top-level HDF5 datasets, like 3dshapes.h5."""
    with h5py.File(path, "w") as h5:
        for key, array in arrays.items():
            h5.create_dataset(key, data=array)
    return Path(path)
