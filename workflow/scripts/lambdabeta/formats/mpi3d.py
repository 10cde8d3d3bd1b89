"""The ``mpi3d_npz`` format: mpi3d_real.npz with ``images`` N × 64 × 64 × 3 only; the factors
are the published grid order."""

from __future__ import annotations

from .common import (
    IMAGE_SIDE,
    Grid,
    PreparationError,
    ReadRequest,
    check_images,
    open_images,
    progress,
)
from .npz import open_npz_array

# The published factor grid (C order, last factor fastest).
MPI3D_FACTORS = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
MPI3D_SIZES = (6, 6, 2, 3, 3, 40, 40)
# The factor values documented with mpi3d_real.npz (github.com/rr-learning/disentanglement_dataset).
MPI3D_VALUES = {
    "object_color": ["white", "green", "red", "blue", "brown", "olive"],
    "object_shape": ["cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"],
    "object_size": ["small", "large"],
    "camera_height": ["top", "center", "bottom"],
    "background_color": ["purple", "sea green", "salmon"],
    "horizontal_axis": list(range(40)),
    "vertical_axis": list(range(40)),
}


def read(request: ReadRequest) -> Grid:
    """MPI3D: images already in grid order; the factors are the grid order (no labels)."""
    factor_sizes = request.factor_sizes
    sizes = tuple(int(s) for s in (factor_sizes if factor_sizes is not None else MPI3D_SIZES))
    if len(sizes) != len(MPI3D_FACTORS):
        raise ValueError(
            f"factor_sizes {sizes}: MPI3D has {len(MPI3D_FACTORS)} factors {MPI3D_FACTORS}"
        )
    # the documented values describe the published grid only
    values = MPI3D_VALUES if sizes == MPI3D_SIZES else None
    grid = Grid(MPI3D_FACTORS, sizes, (IMAGE_SIDE, IMAGE_SIDE, 3), values)
    with open_npz_array(request.src, "images") as upstream:
        num_images = check_images(
            upstream.origin, upstream.shape, upstream.dtype, (IMAGE_SIDE, IMAGE_SIDE, 3)
        )
        if num_images != grid.num_images:
            raise PreparationError(
                f"{upstream.origin}: {num_images} images, but the factor grid "
                f"{sizes} has {grid.num_images}"
            )
        images = open_images(request.images_path, grid)
        with progress(num_images, "mpi3d") as bar:
            for start, block in upstream.chunks(request.chunk):
                images[start : start + len(block)] = block
                bar.update(len(block))
        images.flush()
    return grid
