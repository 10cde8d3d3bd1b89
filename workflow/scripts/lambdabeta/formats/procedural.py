"""The ``procedural`` format: the offline dSprites of ``lambdabeta.procedural``, rendered here
(no upstream file)."""

from __future__ import annotations

from .. import procedural
from .common import Grid, ReadRequest, open_images


def render(request: ReadRequest) -> Grid:
    """Render the procedural dSprites (sub-)grid straight into the memory-mapped output."""
    subgrid = request.subgrid
    values = procedural.factor_values(subgrid)
    grid = Grid(
        procedural.FACTOR_NAMES,
        procedural.factor_sizes(subgrid),
        (procedural.CANVAS, procedural.CANVAS, 1),
        {name: value.tolist() for name, value in values.items()},
    )
    images = open_images(request.images_path, grid)
    procedural.render_grid(
        subgrid,
        out=images[..., 0],
        chunk=request.chunk,
        threads=request.threads,
        foreground=255,
        progress=True,
    )
    images.flush()
    return grid
