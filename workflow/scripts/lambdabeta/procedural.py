"""An offline dSprites: binary 64 × 64 sprites rendered from the exact dSprites factor grid.

The grid is dSprites' own (colour dropped): shape ∈ {square, ellipse, heart}, scale =
linspace(0.5, 1, 6), orientation = linspace(0, 2π, 40) (0 and 2π both included, as upstream),
pos_x, pos_y = linspace(0, 1, 32); 737,280 images in C order, last factor fastest.

Geometry. Pixel ``(row, col)`` has its centre at ``(x, y) = (col + ½, row + ½)``: x grows to the
right, y grows downwards. Every shape is defined in a unit frame in which its smallest enclosing
circle is the unit circle centred at the origin; the origin is the shape centre, about which it
rotates. A sprite with factors ``(scale s, orientation θ, pos_x, pos_y)`` is that unit shape
rotated by θ (clockwise on screen, since y points down), scaled by ``s · radius`` pixels and
centred at::

    centre = margin + pos · (canvas − 2 · margin),    margin = radius + 1

so ``pos = (½, ½)`` is the canvas centre and, because ``s ≤ 1``, no lit pixel ever lies in the
outermost row or column: every sprite stays fully inside the canvas at every scale and
orientation. A pixel is lit when its centre lies inside the shape (no anti-aliasing, like dSprites).

Rendering is a batched inside-test on the rotated pixel coordinates, in torch on the CPU.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPES = ("square", "ellipse", "heart")
CANVAS = 64
# Radius (pixels) of the circle enclosing a sprite of scale 1; it also fixes the position margin.
# At 15 px, one scale step (0.1) widens an axis-aligned square by 2 × 1.06 px: every step changes
# the image (the area grows strictly with scale at every position and orientation).
RADIUS = 15.0
# Semi-minor / semi-major axis ratio of the ellipse (dSprites' ellipse is elongated, so that its
# orientation is visible).
ELLIPSE_ASPECT = 0.5


def full_factor_values() -> dict[str, np.ndarray]:
    """The dSprites factor values, in grid order (shape values are the shape names)."""
    return {
        "shape": np.array(SHAPES),
        "scale": np.linspace(0.5, 1.0, 6),
        "orientation": np.linspace(0.0, 2.0 * np.pi, 40),
        "pos_x": np.linspace(0.0, 1.0, 32),
        "pos_y": np.linspace(0.0, 1.0, 32),
    }


FULL_FACTOR_SIZES = tuple(len(v) for v in full_factor_values().values())


def subgrid_indices(subgrid: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Indices into the full grid of the values a sub-grid keeps, per factor.

    ``subgrid`` maps factor names to a count ``k`` (missing names keep the full grid); the ``k``
    kept values are evenly spaced over the full grid: indices ``round(linspace(0, full − 1, k))``.
    """
    subgrid = dict(subgrid or {})
    unknown = sorted(set(subgrid) - set(FACTOR_NAMES))
    if unknown:
        raise ValueError(f"subgrid: unknown factor name(s) {unknown}; known: {list(FACTOR_NAMES)}")
    indices = {}
    for name, full in zip(FACTOR_NAMES, FULL_FACTOR_SIZES, strict=True):
        count = subgrid.get(name, full)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise ValueError(f"subgrid[{name!r}] must be an integer count, got {count!r}")
        if not 1 <= count <= full:
            raise ValueError(f"subgrid[{name!r}] = {count} is outside 1..{full}")
        kept = np.linspace(0, full - 1, int(count)).round().astype(np.int64)
        if len(np.unique(kept)) != len(kept):  # cannot happen for count ≤ full; guards the rule
            raise ValueError(f"subgrid[{name!r}] = {count} selects repeated values")
        indices[name] = kept
    return indices


def factor_values(subgrid: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """The factor values of the (sub-)grid, per factor name, in grid order."""
    full = full_factor_values()
    return {name: full[name][idx] for name, idx in subgrid_indices(subgrid).items()}


def factor_sizes(subgrid: Mapping[str, int] | None = None) -> tuple[int, ...]:
    """Number of values of each factor in the (sub-)grid, in ``FACTOR_NAMES`` order."""
    return tuple(len(idx) for idx in subgrid_indices(subgrid).values())


def _heart_geometry() -> tuple[float, float, float, float, float]:
    """The heart: a diamond with two disc lobes on its upper edges, tip pointing down on screen.

    Before normalisation the diamond is ``|u| + |v − c| ≤ 1`` (tip at ``(0, c + 1)``) and the lobes
    are discs of radius ``1/√2`` on the midpoints ``(±½, c − ½)`` of its upper edges. ``c`` puts
    the centre of the smallest enclosing circle at the origin: the tip and the far side of the
    lobes are equidistant from it, ``c + 1 = √(¼ + (c − ½)²) + 1/√2``, solved by
    ``c = t − 1 + 1/√2`` with ``t = (¼ + (1/√2 − 3/2)²) / (2 (3/2 − 1/√2))``. Everything is then
    divided by the enclosing radius ``c + 1``.

    Returns ``(diamond_centre_v, diamond_half_diagonal, lobe_u, lobe_v, lobe_radius)`` in the
    unit frame.
    """
    lobe_radius = 1.0 / math.sqrt(2.0)
    t = (0.25 + (lobe_radius - 1.5) ** 2) / (2.0 * (1.5 - lobe_radius))
    c = t - 1.0 + lobe_radius
    enclosing = c + 1.0
    return (
        c / enclosing,
        1.0 / enclosing,
        0.5 / enclosing,
        (c - 0.5) / enclosing,
        lobe_radius / enclosing,
    )


_HEART = _heart_geometry()


def _inside(shape_name: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Boolean mask: is the unit-frame point ``(u, v)`` inside the shape?

    Each shape's smallest enclosing circle is the unit circle: the square has half-side ``1/√2``,
    the ellipse is ``u² + (v / ELLIPSE_ASPECT)² ≤ 1``, the heart is described in
    ``_heart_geometry``.
    """
    if shape_name == "square":
        return torch.maximum(u.abs(), v.abs()) <= 1.0 / math.sqrt(2.0)
    if shape_name == "ellipse":
        return u.square().add_(v.square().div_(ELLIPSE_ASPECT**2)) <= 1.0
    if shape_name == "heart":
        diamond_v, half_diagonal, lobe_u, lobe_v, lobe_radius = _HEART
        abs_u = u.abs()  # the heart is mirror-symmetric in u: one lobe test covers both
        diamond = abs_u + (v - diamond_v).abs_() <= half_diagonal
        lobes = (abs_u - lobe_u).square_().add_((v - lobe_v).square_()) <= lobe_radius**2
        return diamond.logical_or_(lobes)
    raise ValueError(f"unknown shape {shape_name!r}; known: {list(SHAPES)}")


def _check_geometry(canvas: int, radius: float) -> None:
    if not 0.0 < radius <= canvas / 2 - 1:
        raise ValueError(
            f"radius = {radius} px must lie in (0, canvas/2 − 1 = {canvas / 2 - 1}] "
            f"so that a sprite of scale 1 fits inside the {canvas}-pixel canvas"
        )


def _render_into(
    out: np.ndarray,
    shape: np.ndarray,
    scale: np.ndarray,
    orientation: np.ndarray,
    pos_x: np.ndarray,
    pos_y: np.ndarray,
    *,
    radius: float,
    foreground: int,
) -> None:
    """Render a batch of sprites into ``out`` (B × canvas × canvas uint8), see the module doc.

    A pixel centre at offset ``(dx, dy)`` from the sprite centre has unit-frame coordinates
    ``u = (cos θ dx + sin θ dy) / (s r)``, ``v = (−sin θ dx + cos θ dy) / (s r)`` (rotation by
    −θ, then division by the sprite radius ``s r``). Each term depends on the column or on the row
    only, so u and v are sums of a B × 1 × w and a B × w × 1 array.

    A sprite lights only pixels whose centre lies within ``s r ≤ r`` of its own centre, i.e. in
    columns ``⌈c_x − r − ½⌉ … ⌊c_x + r − ½⌋`` (at most ``⌊2r⌋ + 1`` of them), and likewise rows.
    So the inside test runs on a w × w window per sprite, ``w = ⌊2r⌋ + 2`` (one spare pixel
    against rounding), instead of the whole canvas: 4× fewer pixels at the default sizes.
    """
    canvas = out.shape[-1]
    window = min(canvas, math.floor(2.0 * radius) + 2)
    margin = radius + 1.0
    offsets = np.arange(window)

    def window_pixels(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First pixel index of each sprite's window, and its pixel centres minus the sprite's."""
        centre = margin + pos * (canvas - 2.0 * margin)
        first = np.clip(np.ceil(centre - radius - 0.5), 0, canvas - window).astype(np.int64)
        return first, (first[:, None] + offsets + 0.5) - centre[:, None]

    first_col, dx = window_pixels(pos_x)
    first_row, dy = window_pixels(pos_y)
    # 2π mod 2π is exactly 0, so orientation 2π renders bit-identically to 0
    theta = np.mod(orientation, 2.0 * np.pi)
    cos = (np.cos(theta) / (scale * radius))[:, None]
    sin = (np.sin(theta) / (scale * radius))[:, None]
    terms = [
        torch.from_numpy(t.astype(np.float32)) for t in (cos * dx, sin * dx, cos * dy, sin * dy)
    ]
    cos_dx, sin_dx = (t[:, None, :] for t in terms[:2])
    cos_dy, sin_dy = (t[:, :, None] for t in terms[2:])
    # windows[b, r, c] is the w × w block of image b whose top-left pixel is (r, c); the blocks
    # written below belong to distinct images, so the overlapping views never alias a write
    windows = np.lib.stride_tricks.sliding_window_view(
        out, (window, window), axis=(1, 2), writeable=True
    )
    out.fill(0)
    for shape_id in np.unique(shape):
        batch = np.flatnonzero(shape == shape_id)
        picked = torch.from_numpy(batch)
        u = cos_dx[picked] + sin_dy[picked]
        v = cos_dy[picked] - sin_dx[picked]
        sprites = _inside(SHAPES[shape_id], u, v).to(torch.uint8).mul_(foreground)
        windows[batch, first_row[batch], first_col[batch]] = sprites.numpy()


def render(
    shape: np.ndarray | int,
    scale: np.ndarray | float,
    orientation: np.ndarray | float,
    pos_x: np.ndarray | float,
    pos_y: np.ndarray | float,
    *,
    canvas: int = CANVAS,
    radius: float = RADIUS,
    foreground: int = 1,
) -> np.ndarray:
    """Render sprites for a batch of factor values; returns uint8 B × canvas × canvas.

    Args:
        shape: index into ``SHAPES`` (0 square, 1 ellipse, 2 heart).
        scale: sprite size in (0, 1]; the enclosing radius is ``scale · radius`` pixels.
        orientation: rotation angle in radians (clockwise on screen).
        pos_x, pos_y: position in [0, 1] of the shape centre along columns and rows.
        canvas: image side in pixels.
        radius: enclosing radius in pixels of a sprite of scale 1.
        foreground: value of lit pixels (1 as in dSprites, 255 for the prepared format).

    The arguments broadcast against each other and are flattened into one batch of B sprites.
    """
    shape, scale, orientation, pos_x, pos_y = (
        np.ravel(a) for a in np.broadcast_arrays(shape, scale, orientation, pos_x, pos_y)
    )
    if not np.issubdtype(shape.dtype, np.integer) or np.any((shape < 0) | (shape >= len(SHAPES))):
        raise ValueError(f"shape must be integer indices into {list(SHAPES)}, got {shape!r}")
    if np.any((scale <= 0) | (scale > 1)):
        raise ValueError(f"scale must lie in (0, 1], got values {np.unique(scale)}")
    for name, pos in (("pos_x", pos_x), ("pos_y", pos_y)):
        if np.any((pos < 0) | (pos > 1)):
            raise ValueError(f"{name} must lie in [0, 1], got values {np.unique(pos)}")
    if not 0 < foreground <= 255:
        raise ValueError(f"foreground = {foreground} must lie in 1..255")
    _check_geometry(canvas, radius)
    out = np.empty((len(shape), canvas, canvas), dtype=np.uint8)
    _render_into(
        out,
        shape,
        scale.astype(np.float64),
        orientation.astype(np.float64),
        pos_x.astype(np.float64),
        pos_y.astype(np.float64),
        radius=radius,
        foreground=foreground,
    )
    return out


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op torch threads (unchanged when None)."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def render_grid(
    subgrid: Mapping[str, int] | None = None,
    out: np.ndarray | None = None,
    *,
    chunk: int = 1024,
    threads: int | None = None,
    canvas: int = CANVAS,
    radius: float = RADIUS,
    foreground: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Render every image of the (sub-)grid in canonical order (C order, last factor fastest).

    Image ``i`` has factor classes ``unravel_index(i, factor_sizes(subgrid))``. ``out``, if given,
    is a writable uint8 N × canvas × canvas array (e.g. a view of a memory-mapped file) that is
    filled ``chunk`` images at a time, so memory use does not grow with N.

    ``threads`` chunks (default: torch's thread count) are rendered concurrently, each with one
    torch thread. Chunks are independent and write disjoint rows of ``out``; this scales better
    than torch's intra-op parallelism over small tensors, which busy-waits on a loaded machine.
    """
    if chunk < 1:
        raise ValueError(f"chunk = {chunk} must be positive")
    workers = torch.get_num_threads() if threads is None else threads
    if workers < 1:
        raise ValueError(f"threads = {threads} must be positive")
    _check_geometry(canvas, radius)
    indices = subgrid_indices(subgrid)
    sizes = tuple(len(idx) for idx in indices.values())
    num_images = math.prod(sizes)
    expected_shape = (num_images, canvas, canvas)
    if out is None:
        out = np.empty(expected_shape, dtype=np.uint8)
    elif out.shape != expected_shape or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 {expected_shape}, got {out.dtype} {out.shape}")
    full = full_factor_values()

    def render_chunk(start: int) -> int:
        stop = min(start + chunk, num_images)
        classes = np.unravel_index(np.arange(start, stop), sizes)
        grid_index = {name: indices[name][c] for name, c in zip(FACTOR_NAMES, classes, strict=True)}
        values = (full[name][grid_index[name]] for name in FACTOR_NAMES[1:])
        _render_into(
            out[start:stop], grid_index["shape"], *values, radius=radius, foreground=foreground
        )
        return stop - start

    with (
        torch_threads(1),
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(
            total=num_images,
            desc="render",
            unit="img",
            unit_scale=True,
            mininterval=5.0,
            disable=not progress,
        ) as bar,
    ):
        for rendered in pool.map(render_chunk, range(0, num_images, chunk)):
            bar.update(rendered)
    return out
