"""Preparation of each upstream format into the uniform format, on tiny files."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
from upstream_files import (
    DSPRITES_TEST_SIZES,
    MPI3D_TEST_SIZES,
    SHAPES3D_TEST_SIZES,
    decode_index,
    dsprites_arrays,
    grid_classes,
    mpi3d_arrays,
    shapes3d_arrays,
    write_h5,
    write_npz,
)

from lambdabeta import procedural
from lambdabeta.formats.dsprites import DSPRITES_FACTORS, DSPRITES_SIZES
from lambdabeta.formats.mpi3d import MPI3D_FACTORS, MPI3D_SIZES, MPI3D_VALUES
from lambdabeta.formats.shapes3d import SHAPES3D_FACTORS, SHAPES3D_SIZES
from lambdabeta.io import read_json
from lambdabeta.loader import load_prepared
from lambdabeta.prepare import PreparationError, prepare, prepare_source

# an odd chunk size, so that chunks straddle grid boundaries and the last chunk is partial
CHUNK = 7


def check_grid(out_dir, names, sizes, channels):
    """The prepared dataset is the canonical grid and every image sits at its own row."""
    dataset = load_prepared(out_dir)
    num_images = math.prod(sizes)
    assert dataset.factor_names == tuple(names)
    assert dataset.factor_sizes == tuple(sizes)
    assert dataset.images.shape == (num_images, 64, 64, channels)
    assert dataset.factors.dtype == np.int16
    np.testing.assert_array_equal(dataset.factors, grid_classes(sizes))
    np.testing.assert_array_equal(decode_index(np.asarray(dataset.images)), np.arange(num_images))
    # known indices: the last image, and one in the middle, looked up by their classes
    last = np.array(sizes) - 1
    np.testing.assert_array_equal(dataset.factors[num_images - 1], last)
    assert decode_index(dataset.images_for(last[None]))[0] == num_images - 1
    middle = np.array(np.unravel_index(num_images // 2 + 1, sizes))
    assert decode_index(dataset.images_for(middle[None]))[0] == num_images // 2 + 1
    meta = read_json(out_dir / "meta.json")
    assert meta["num_images"] == num_images
    assert meta["image_shape"] == [64, 64, channels]
    return dataset, meta


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("shuffled", [False, True])
def test_dsprites(tmp_path, compressed, shuffled):
    num_images = math.prod(DSPRITES_TEST_SIZES)
    permutation = np.random.default_rng(1).permutation(num_images) if shuffled else None
    arrays = dsprites_arrays(permutation=permutation)
    src = write_npz(tmp_path / "dsprites.npz", arrays, compressed=compressed)
    out = prepare(
        "dsprites_npz",
        src,
        tmp_path / "out",
        name="dsprites",
        chunk=CHUNK,
        checksum="md5:" + "0" * 32,
    )
    dataset, meta = check_grid(out, DSPRITES_FACTORS, DSPRITES_TEST_SIZES, channels=1)
    assert set(np.unique(dataset.images)) == {0, 255}
    # the sprite block (1 upstream) is 255 everywhere
    assert np.all(dataset.images[:, 32:40, 32:40, 0] == 255)
    assert meta["factor_values"]["scale"] == [0.5, 1.0]
    assert meta["factor_values"]["orientation"] == pytest.approx([0.0, 2 * np.pi])
    assert meta["factor_values"]["shape"] == [1.0, 2.0, 3.0]
    assert meta["source"] == {
        "format": "dsprites_npz",
        "file": "dsprites.npz",
        "checksum": "md5:" + "0" * 32,
    }
    assert sorted(p.name for p in out.iterdir()) == ["factors.npy", "images.npy", "meta.json"]


def test_shapes3d_shuffled_rows_land_canonically(tmp_path):
    arrays = shapes3d_arrays(seed=3)
    src = write_h5(tmp_path / "3dshapes.h5", arrays)
    out = prepare("shapes3d_h5", src, tmp_path / "out", name="shapes3d", chunk=CHUNK)
    dataset, meta = check_grid(out, SHAPES3D_FACTORS, SHAPES3D_TEST_SIZES, channels=3)
    assert np.all(dataset.images[..., 1] == 100)
    # classes are ranks of the label values: the largest orientation value is the last class
    assert meta["factor_values"]["orientation"] == [-30.0, 30.0]
    assert meta["factor_values"]["scale"] == [0.75, 1.0, 1.25]
    # an upstream row's labels give the classes of the row where its image landed
    upstream_row = 5
    index = decode_index(arrays["images"][upstream_row : upstream_row + 1])[0]
    label_ranks = [
        meta["factor_values"][name].index(value)
        for name, value in zip(SHAPES3D_FACTORS, arrays["labels"][upstream_row], strict=True)
    ]
    np.testing.assert_array_equal(dataset.factors[index], label_ranks)


@pytest.mark.parametrize("compressed", [True, False])
def test_mpi3d(tmp_path, compressed):
    src = write_npz(tmp_path / "mpi3d_real.npz", mpi3d_arrays(), compressed=compressed)
    out = prepare(
        "mpi3d_npz",
        src,
        tmp_path / "out",
        name="mpi3d_real",
        chunk=CHUNK,
        factor_sizes=MPI3D_TEST_SIZES,
    )
    dataset, meta = check_grid(out, MPI3D_FACTORS, MPI3D_TEST_SIZES, channels=3)
    assert np.all(dataset.images[..., 2] == 50)
    assert "factor_values" not in meta


def test_procedural_subgrid(tmp_path):
    subgrid = {"scale": 2, "orientation": 3, "pos_x": 4, "pos_y": 3}
    source = {"format": "procedural", "subgrid": subgrid}
    out = prepare_source(source, None, tmp_path / "out", name="demo", threads=1)
    dataset = load_prepared(out)
    sizes = procedural.factor_sizes(subgrid)
    assert dataset.factor_sizes == sizes == (3, 2, 3, 4, 3)
    np.testing.assert_array_equal(dataset.factors, grid_classes(sizes))
    expected = procedural.render_grid(subgrid) * np.uint8(255)
    np.testing.assert_array_equal(dataset.images[..., 0], expected)
    meta = read_json(out / "meta.json")
    assert meta["factor_values"]["shape"] == ["square", "ellipse", "heart"]
    assert meta["factor_values"]["scale"] == [0.5, 1.0]
    assert meta["source"]["subgrid"] == subgrid


def test_prepare_source_passes_format_and_checksum(tmp_path):
    src = write_npz(tmp_path / "d.npz", dsprites_arrays())
    source = {
        "format": "dsprites_npz",
        "file": "d.npz",
        "urls": [],
        "checksum": "md5:" + "a" * 32,
        "local_path": None,
    }
    out = prepare_source(source, src, tmp_path / "out", name="dsprites")
    assert read_json(out / "meta.json")["source"]["checksum"] == "md5:" + "a" * 32


def assert_nothing_written(out_dir):
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_missing_key(tmp_path):
    arrays = dsprites_arrays()
    del arrays["latents_classes"]
    src = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(PreparationError, match=r"bad\.npz.*missing key.*latents_classes"):
        prepare("dsprites_npz", src, tmp_path / "out", name="d")
    assert_nothing_written(tmp_path / "out")


def test_wrong_image_dtype(tmp_path):
    arrays = dsprites_arrays()
    arrays["imgs"] = arrays["imgs"].astype(np.float32)
    src = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(PreparationError, match=r"bad\.npz.*imgs.*dtype float32, expected uint8"):
        prepare("dsprites_npz", src, tmp_path / "out", name="d")
    assert_nothing_written(tmp_path / "out")


def test_dsprites_pixel_out_of_range(tmp_path):
    arrays = dsprites_arrays()
    arrays["imgs"][-1, 5, 5] = 2  # the last chunk: the error comes after writing has started
    src = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(PreparationError, match=r"bad\.npz.*pixel value 2.*expected 0 or 1"):
        prepare("dsprites_npz", src, tmp_path / "out", name="d", chunk=CHUNK)
    assert_nothing_written(tmp_path / "out")


def test_shapes3d_incomplete_grid(tmp_path):
    arrays = shapes3d_arrays()
    arrays["labels"][0] = arrays["labels"][1]  # one combination twice, another one missing
    src = write_h5(tmp_path / "bad.h5", arrays)
    with pytest.raises(
        PreparationError,
        match=r"bad\.h5.*incomplete factor grid.*1 class "
        r"combination\(s\) missing.*1 repeated",
    ):
        prepare("shapes3d_h5", src, tmp_path / "out", name="s")
    assert_nothing_written(tmp_path / "out")


def test_shapes3d_missing_row(tmp_path):
    arrays = {key: value[1:] for key, value in shapes3d_arrays().items()}
    src = write_h5(tmp_path / "bad.h5", arrays)
    with pytest.raises(PreparationError, match=r"bad\.h5: 95 rows, but the factor grid"):
        prepare("shapes3d_h5", src, tmp_path / "out", name="s")


def test_shapes3d_wrong_image_shape_and_missing_labels(tmp_path):
    arrays = shapes3d_arrays()
    src = write_h5(
        tmp_path / "gray.h5", {"images": arrays["images"][..., 0], "labels": arrays["labels"]}
    )
    with pytest.raises(PreparationError, match=r"gray\.h5\['images'\]: shape .*expected N × 64"):
        prepare("shapes3d_h5", src, tmp_path / "out", name="s")
    src = write_h5(tmp_path / "nolabels.h5", {"images": arrays["images"]})
    with pytest.raises(PreparationError, match=r"nolabels\.h5: missing dataset.*labels"):
        prepare("shapes3d_h5", src, tmp_path / "out", name="s")


def test_expected_sizes_are_checked(tmp_path):
    src = write_h5(tmp_path / "3dshapes.h5", shapes3d_arrays())
    with pytest.raises(
        PreparationError,
        match=r"factor sizes \(2, 2, 2, 3, 2, 2\), expected "
        r"\(10, 10, 10, 8, 4, 15\)",
    ):
        prepare("shapes3d_h5", src, tmp_path / "out", name="s", factor_sizes=(10, 10, 10, 8, 4, 15))


def test_mpi3d_count_mismatch(tmp_path):
    src = write_npz(tmp_path / "mpi3d_real.npz", mpi3d_arrays())
    with pytest.raises(
        PreparationError,
        match=r"mpi3d_real\.npz.*24 images, but the factor grid "
        r"\(6, 6, 2, 3, 3, 40, 40\) has 1036800",
    ):
        prepare("mpi3d_npz", src, tmp_path / "out", name="m")
    assert_nothing_written(tmp_path / "out")


def test_not_an_archive(tmp_path):
    src = tmp_path / "mpi3d_real.npz"
    src.write_bytes(b"<html>not found</html>")
    with pytest.raises(PreparationError, match=r"mpi3d_real\.npz: not a readable \.npz"):
        prepare("mpi3d_npz", src, tmp_path / "out", name="m")
    with pytest.raises(PreparationError, match=r"mpi3d_real\.npz: not a readable HDF5"):
        prepare("shapes3d_h5", src, tmp_path / "out", name="m")


def test_truncated_npz_member(tmp_path):
    # an images.npy member whose header announces one row more than its data holds
    images = mpi3d_arrays()["images"]
    src = tmp_path / "mpi3d_real.npz"
    with zipfile.ZipFile(src, "w") as archive, archive.open("images.npy", "w") as member:
        header = {"descr": "|u1", "fortran_order": False, "shape": (len(images) + 1, 64, 64, 3)}
        np.lib.format.write_array_header_1_0(member, header)
        member.write(images.tobytes())
    with pytest.raises(PreparationError, match=r"mpi3d_real\.npz\['images'\]: truncated"):
        prepare("mpi3d_npz", src, tmp_path / "out", name="m", factor_sizes=(5, 5, 1, 1, 1, 1, 1))
    assert_nothing_written(tmp_path / "out")


def test_refuses_to_overwrite(tmp_path):
    src = write_npz(tmp_path / "d.npz", dsprites_arrays())
    out = prepare("dsprites_npz", src, tmp_path / "out", name="d")
    before = (out / "meta.json").read_text()
    with pytest.raises(FileExistsError, match="already holds"):
        prepare("dsprites_npz", src, out, name="other")
    assert (out / "meta.json").read_text() == before


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'png'"):
        prepare("png", tmp_path / "x", tmp_path / "out", name="x")
    with pytest.raises(ValueError, match="needs an upstream file"):
        prepare("mpi3d_npz", None, tmp_path / "out", name="x")
    with pytest.raises(ValueError, match="only supported by the procedural format"):
        prepare("mpi3d_npz", tmp_path / "x", tmp_path / "out", name="x", subgrid={"scale": 2})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare("mpi3d_npz", tmp_path / "x", tmp_path / "out", name="x")


def test_corrupt_compressed_member(tmp_path):
    src = write_npz(tmp_path / "mpi3d_real.npz", mpi3d_arrays(), compressed=True)
    data = bytearray(src.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the deflated images.npy stream
    src.write_bytes(bytes(data))
    with pytest.raises(PreparationError, match=r"mpi3d_real\.npz\['images'\]: corrupt data"):
        prepare("mpi3d_npz", src, tmp_path / "out", name="m", factor_sizes=MPI3D_TEST_SIZES)
    assert_nothing_written(tmp_path / "out")


def test_published_grids():
    assert math.prod(DSPRITES_SIZES) == 737_280
    assert math.prod(SHAPES3D_SIZES) == 480_000
    assert math.prod(MPI3D_SIZES) == 1_036_800
    assert tuple(len(MPI3D_VALUES[name]) for name in MPI3D_FACTORS) == MPI3D_SIZES
    assert procedural.FULL_FACTOR_SIZES == DSPRITES_SIZES
