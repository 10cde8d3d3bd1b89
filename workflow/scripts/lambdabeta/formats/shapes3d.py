"""The ``shapes3d_h5`` format: 3dshapes.h5 with ``images`` N × 64 × 64 × 3 and ``labels`` N × 6
factor VALUES, turned into classes by rank."""

from __future__ import annotations

import h5py
import numpy as np

from .common import (
    IMAGE_SIDE,
    Grid,
    PreparationError,
    ReadRequest,
    canonical_rows,
    check_images,
    check_sizes,
    classes_by_rank,
    open_images,
    place_rows,
    progress,
)

# The published factor grid (C order, last factor fastest).
SHAPES3D_FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_SIZES = (10, 10, 10, 8, 4, 15)


def read(request: ReadRequest) -> Grid:
    """3dshapes: classes = rank of each label value in its column; rows reordered canonically."""
    src, chunk = request.src, request.chunk
    try:
        h5 = h5py.File(src, "r")
    except OSError as error:
        raise PreparationError(f"{src}: not a readable HDF5 file ({error})") from None
    with h5:
        missing = [key for key in ("images", "labels") if key not in h5]
        if missing:
            raise PreparationError(f"{src}: missing dataset(s) {missing} (found {sorted(h5)})")
        upstream, labels = h5["images"], h5["labels"][()]
        num_images = check_images(
            f"{src}['images']", upstream.shape, upstream.dtype, (IMAGE_SIDE, IMAGE_SIDE, 3)
        )
        if labels.shape != (num_images, len(SHAPES3D_FACTORS)) or not np.issubdtype(
            labels.dtype, np.floating
        ):
            raise PreparationError(
                f"{src}['labels']: {labels.dtype} {labels.shape}, expected "
                f"float {num_images} × {len(SHAPES3D_FACTORS)}"
            )
        if not np.all(np.isfinite(labels)):
            raise PreparationError(f"{src}['labels']: contains NaN or infinite values")
        classes, uniques = classes_by_rank(labels)
        sizes = tuple(len(unique) for unique in uniques)
        check_sizes(str(src), sizes, request.factor_sizes, SHAPES3D_SIZES)
        rows = canonical_rows(classes, sizes, str(src))
        grid = Grid(
            SHAPES3D_FACTORS,
            sizes,
            (IMAGE_SIDE, IMAGE_SIDE, 3),
            {name: unique.tolist() for name, unique in zip(SHAPES3D_FACTORS, uniques, strict=True)},
        )
        images = open_images(request.images_path, grid)
        with progress(num_images, "shapes3d") as bar:
            for start in range(0, num_images, chunk):
                stop = min(start + chunk, num_images)
                place_rows(images, rows[start:stop], upstream[start:stop])
                bar.update(stop - start)
        images.flush()
    return grid
