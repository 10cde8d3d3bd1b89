"""Pixel-level properties of the procedural dSprites."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lambdabeta import procedural
from lambdabeta.procedural import SHAPES, factor_sizes, factor_values, render, render_grid

SHAPE_IDS = np.arange(len(SHAPES))
ORIENTATIONS = factor_values()["orientation"]


def centroid(image: np.ndarray) -> np.ndarray:
    """(row, column) centre of mass of the lit pixels."""
    rows, cols = np.nonzero(image)
    return np.array([rows.mean(), cols.mean()])


def test_full_grid_is_the_dsprites_grid():
    values = factor_values()
    assert factor_sizes() == (3, 6, 40, 32, 32)
    assert list(values["shape"]) == ["square", "ellipse", "heart"]
    np.testing.assert_array_equal(values["scale"], np.linspace(0.5, 1.0, 6))
    assert values["orientation"][0] == 0.0 and values["orientation"][-1] == 2 * np.pi
    np.testing.assert_array_equal(values["pos_x"], np.linspace(0.0, 1.0, 32))
    np.testing.assert_array_equal(values["pos_y"], np.linspace(0.0, 1.0, 32))


def test_subgrid_selects_evenly_spaced_values():
    subgrid = {"scale": 3, "orientation": 8, "pos_x": 8, "pos_y": 1}
    indices = procedural.subgrid_indices(subgrid)
    np.testing.assert_array_equal(indices["shape"], [0, 1, 2])
    np.testing.assert_array_equal(indices["scale"], [0, 2, 5])  # round(linspace(0, 5, 3))
    np.testing.assert_array_equal(indices["orientation"], [0, 6, 11, 17, 22, 28, 33, 39])
    np.testing.assert_array_equal(indices["pos_x"], [0, 4, 9, 13, 18, 22, 27, 31])
    np.testing.assert_array_equal(indices["pos_y"], [0])
    values = factor_values(subgrid)
    np.testing.assert_allclose(values["scale"], [0.5, 0.7, 1.0])
    assert factor_sizes(subgrid) == (3, 3, 8, 8, 1)
    # every count from 1 to the full size gives distinct values
    for count in range(1, 41):
        assert (
            len(np.unique(procedural.subgrid_indices({"orientation": count})["orientation"]))
            == count
        )


@pytest.mark.parametrize(
    ("subgrid", "message"),
    [
        ({"rotation": 4}, "unknown factor name.*'rotation'"),
        ({"scale": 0}, r"subgrid\['scale'\] = 0 is outside 1..6"),
        ({"pos_x": 33}, r"subgrid\['pos_x'\] = 33 is outside 1..32"),
        ({"scale": 2.5}, r"subgrid\['scale'\] must be an integer"),
    ],
)
def test_subgrid_validation(subgrid, message):
    with pytest.raises(ValueError, match=message):
        procedural.subgrid_indices(subgrid)


def test_images_are_binary_and_foreground_is_configurable():
    ones = render(SHAPE_IDS, 1.0, 0.3, 0.5, 0.5)
    assert ones.shape == (3, 64, 64) and ones.dtype == np.uint8
    assert set(np.unique(ones)) == {0, 1}
    np.testing.assert_array_equal(render(SHAPE_IDS, 1.0, 0.3, 0.5, 0.5, foreground=255), ones * 255)


def test_area_grows_with_scale():
    values = factor_values()
    shape, orientation, pos_x, pos_y, scale = np.meshgrid(
        SHAPE_IDS,
        ORIENTATIONS[::3],
        values["pos_x"][::10],
        values["pos_y"][::15],
        values["scale"],
        indexing="ij",
    )
    images = render(shape.ravel(), scale.ravel(), orientation.ravel(), pos_x.ravel(), pos_y.ravel())
    areas = images.sum(axis=(1, 2), dtype=np.int64).reshape(scale.shape)
    assert np.all(np.diff(areas, axis=-1) > 0)  # every scale step changes every image


def test_orientation_two_pi_is_orientation_zero():
    zero = render(SHAPE_IDS, 0.8, 0.0, 0.3, 0.7)
    two_pi = render(SHAPE_IDS, 0.8, ORIENTATIONS[-1], 0.3, 0.7)
    np.testing.assert_array_equal(zero, two_pi)
    # while an intermediate orientation does change the (non-circular) shapes
    assert np.all((render(SHAPE_IDS, 0.8, np.pi / 5, 0.3, 0.7) != zero).any(axis=(1, 2)))


def test_positions_move_the_centroid_along_their_axis():
    positions = np.linspace(0.0, 1.0, 32)
    for shape in SHAPE_IDS:
        along_x = np.array([centroid(im) for im in render(shape, 0.7, 0.4, positions, 0.5)])
        along_y = np.array([centroid(im) for im in render(shape, 0.7, 0.4, 0.5, positions)])
        assert np.all(np.diff(along_x[:, 1]) > 0)  # pos_x: columns, left to right
        assert np.ptp(along_x[:, 0]) < 0.5  # rows stay put (up to pixel sampling)
        assert np.all(np.diff(along_y[:, 0]) > 0)  # pos_y: rows, top to bottom
        assert np.ptp(along_y[:, 1]) < 0.5
        # pos (0.5, 0.5) is the canvas centre; the travel covers most of the canvas
        assert np.ptp(along_x[:, 1]) > 30


def test_heart_is_not_symmetric_under_half_turn_and_rotates_about_its_centre():
    heart = SHAPES.index("heart")
    upright, flipped = render(heart, 1.0, [0.0, np.pi], 0.5, 0.5)
    half_turned = np.rot90(upright, 2)  # about the canvas centre = the shape centre at pos 0.5
    assert np.sum(upright != half_turned) > 0.2 * upright.sum()
    # rendering at θ + π is the half-turned image (up to pixels on the boundary)
    assert np.sum(flipped != half_turned) <= 0.02 * upright.sum()


def test_shapes_stay_inside_the_canvas():
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    shape, orientation, corner = np.meshgrid(SHAPE_IDS, ORIENTATIONS, np.arange(4), indexing="ij")
    pos = corners[corner.ravel()]
    images = render(shape.ravel(), 1.0, orientation.ravel(), pos[:, 0], pos[:, 1])
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1
    )
    assert not border.any()
    assert np.all(images.sum(axis=(1, 2)) > 50)
    # the shapes do come close to the border: one blank pixel of margin
    assert images[:, 1].any() and images[:, -2].any()


def test_render_grid_is_canonical_deterministic_and_chunk_independent():
    subgrid = {"scale": 2, "orientation": 3, "pos_x": 3, "pos_y": 2}
    sizes = factor_sizes(subgrid)
    grid = render_grid(subgrid, chunk=5)
    assert grid.shape == (int(np.prod(sizes)), 64, 64)
    np.testing.assert_array_equal(grid, render_grid(subgrid, chunk=1000, threads=1))
    values = factor_values(subgrid)
    index = 29
    classes = np.unravel_index(index, sizes)
    one = render(
        classes[0],
        *(
            values[name][c]
            for name, c in zip(procedural.FACTOR_NAMES[1:], classes[1:], strict=True)
        ),
    )
    np.testing.assert_array_equal(grid[index], one[0])


def test_render_grid_fills_a_given_array_and_restores_threads():
    subgrid = {"scale": 1, "orientation": 2, "pos_x": 2, "pos_y": 2}
    out = np.full((24, 64, 64), 7, dtype=np.uint8)
    threads = torch.get_num_threads()
    assert render_grid(subgrid, out=out, threads=1, foreground=255) is out
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(out, render_grid(subgrid) * 255)
    with pytest.raises(ValueError, match=r"out must be uint8 \(24, 64, 64\)"):
        render_grid(subgrid, out=np.zeros((23, 64, 64), np.uint8))


def test_render_rejects_values_outside_the_grid_range():
    with pytest.raises(ValueError, match="shape must be integer indices"):
        render(3, 1.0, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="scale must lie in"):
        render(0, 1.5, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="pos_y must lie in"):
        render(0, 1.0, 0.0, 0.5, 1.2)
