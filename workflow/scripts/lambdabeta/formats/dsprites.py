"""The ``dsprites_npz`` format: dSprites .npz with ``imgs`` N × 64 × 64 in {0, 1},
``latents_classes`` N × 6 (colour first, dropped here) and ``latents_values``."""

from __future__ import annotations

import numpy as np

from .common import (
    IMAGE_SIDE,
    Grid,
    PreparationError,
    ReadRequest,
    canonical_rows,
    check_images,
    check_sizes,
    open_images,
    place_rows,
    progress,
)
from .npz import load_small_npz_arrays, open_npz_array

# The published factor grid (C order, last factor fastest).
DSPRITES_FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
DSPRITES_SIZES = (3, 6, 40, 32, 32)


def read(request: ReadRequest) -> Grid:
    """dSprites: drop colour, {0, 1} → {0, 255}, classes from ``latents_classes``."""
    src, chunk = request.src, request.chunk
    arrays = load_small_npz_arrays(src, ("latents_classes", "latents_values"))
    latents_classes, latents_values = arrays["latents_classes"], arrays["latents_values"]
    if (
        latents_classes.ndim != 2
        or latents_classes.shape[1] != 6
        or not np.issubdtype(latents_classes.dtype, np.integer)
    ):
        raise PreparationError(
            f"{src}['latents_classes']: {latents_classes.dtype} "
            f"{latents_classes.shape}, expected integer N × 6"
        )
    if latents_values.shape != latents_classes.shape:
        raise PreparationError(
            f"{src}['latents_values']: shape {latents_values.shape}, expected "
            f"{latents_classes.shape} like latents_classes"
        )
    if latents_classes.min(initial=0) < 0:
        raise PreparationError(f"{src}['latents_classes']: negative class index")
    if len(np.unique(latents_classes[:, 0])) > 1:
        raise PreparationError(
            f"{src}: colour (latents column 0) takes several values; it cannot be dropped"
        )
    classes = latents_classes[:, 1:]
    sizes = tuple(int(s) for s in classes.max(axis=0, initial=-1) + 1)
    check_sizes(str(src), sizes, request.factor_sizes, DSPRITES_SIZES)
    rows = canonical_rows(classes, sizes, str(src))
    factor_values = {}
    for column, name in enumerate(DSPRITES_FACTORS):
        _, first_row = np.unique(classes[:, column], return_index=True)
        factor_values[name] = latents_values[first_row, column + 1].tolist()
    grid = Grid(DSPRITES_FACTORS, sizes, (IMAGE_SIDE, IMAGE_SIDE, 1), factor_values)

    with open_npz_array(src, "imgs") as upstream:
        num_images = check_images(
            upstream.origin, upstream.shape, upstream.dtype, (IMAGE_SIDE, IMAGE_SIDE)
        )
        if num_images != len(classes):
            raise PreparationError(
                f"{upstream.origin}: {num_images} images but {len(classes)} rows of latents_classes"
            )
        images = open_images(request.images_path, grid)
        with progress(num_images, "dsprites") as bar:
            for start, block in upstream.chunks(chunk):
                if block.max(initial=0) > 1:
                    raise PreparationError(
                        f"{upstream.origin}: pixel value "
                        f"{block.max()} in rows {start}.., expected 0 or 1"
                    )
                place_rows(
                    images, rows[start : start + len(block)], block[..., None] * np.uint8(255)
                )
                bar.update(len(block))
        images.flush()
    return grid
