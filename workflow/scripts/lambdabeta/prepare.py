"""Conversion of upstream dataset files into the uniform on-disk format of ``loader``.

Supported formats (the ``format`` key of a ``datasets:`` entry in the config):

- ``dsprites_npz``  dSprites .npz: ``imgs`` N × 64 × 64 in {0, 1}, ``latents_classes`` N × 6
  (colour first, dropped here), ``latents_values``;
- ``shapes3d_h5``   3dshapes.h5: ``images`` N × 64 × 64 × 3 and ``labels`` N × 6 factor VALUES,
  turned into classes by rank;
- ``mpi3d_npz``     mpi3d_real.npz: ``images`` N × 64 × 64 × 3 only; the factors are the published
  grid order;
- ``procedural``    the offline dSprites of ``procedural``, rendered here.

Everything streams: upstream images are read ``chunk`` at a time (``.npy`` members of an .npz
are parsed from their header and read through ``zipfile``, never loaded whole) and written into
a memory-mapped ``images.npy``, so a 12 GB dataset never has two copies in memory. Rows are
placed at their canonical index ``ravel_multi_index(classes, sizes)`` whatever the upstream
order, after checking that every class combination occurs exactly once. Outputs are written
under temporary names and renamed into place at the end: images, factors, then ``meta.json``
last, so a directory with ``meta.json`` is always complete. meta.json records a digest of the
images and factors (``loader.dataset_digest``) that every reader checks (``loader.load_prepared``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm.auto import tqdm

from . import procedural
from .io import atomic_path, read_npy_header, write_json
from .loader import DIGEST_KEY, FACTORS_FILE, IMAGES_FILE, META_FILE, dataset_digest

log = logging.getLogger(__name__)

FORMATS = ("dsprites_npz", "shapes3d_h5", "mpi3d_npz", "procedural")
# Published factor grids (C order, last factor fastest).
DSPRITES_FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
DSPRITES_SIZES = (3, 6, 40, 32, 32)
SHAPES3D_FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_SIZES = (10, 10, 10, 8, 4, 15)
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
IMAGE_SIDE = 64
# Images per read/write: 4096 RGB 64 × 64 images are 50 MB.
DEFAULT_CHUNK = 4096


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


# ---- streaming reads ------------------------------------------------------------------------


@dataclass
class NpyStream:
    """A ``.npy`` array read from a binary stream chunk by chunk, after its header."""

    stream: io.BufferedIOBase
    shape: tuple[int, ...]
    dtype: np.dtype
    origin: str  # "<file>[key]", for error messages

    def chunks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, block)`` with ``block = array[start:start + rows]``, in order."""
        row_shape = self.shape[1:]
        row_bytes = math.prod(row_shape) * self.dtype.itemsize
        for start in range(0, self.shape[0], rows):
            count = min(rows, self.shape[0] - start)
            block = np.empty((count, *row_shape), dtype=self.dtype)
            buffer = memoryview(block.reshape(-1).view(np.uint8))
            filled = 0
            while filled < len(buffer):
                try:
                    read = self.stream.readinto(buffer[filled:])
                except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                    raise PreparationError(f"{self.origin}: corrupt data ({error})") from None
                if not read:
                    raise PreparationError(
                        f"{self.origin}: truncated; the header announces {self.shape[0]} rows "
                        f"but the data ends within row {start + filled // row_bytes}"
                    )
                filled += read
            yield start, block


@contextlib.contextmanager
def open_npz_array(path: str | os.PathLike, key: str) -> Iterator[NpyStream]:
    """Open array ``key`` of an .npz archive (stored or deflated) for streaming reads."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise PreparationError(f"{path}: not a readable .npz archive ({error})") from None
    with archive:
        member = f"{key}.npy"
        if member not in archive.namelist():
            found = sorted(name.removesuffix(".npy") for name in archive.namelist())
            raise PreparationError(f"{path}: missing key {key!r} (found {found})")
        with archive.open(member) as stream:
            origin = f"{path}[{key!r}]"
            try:
                shape, fortran_order, dtype = read_npy_header(stream)
            except ValueError as error:
                raise PreparationError(f"{origin}: unreadable .npy header ({error})") from None
            if fortran_order and len(shape) > 1:
                raise PreparationError(
                    f"{origin}: stored in Fortran order; rows cannot be streamed"
                )
            yield NpyStream(stream, tuple(shape), np.dtype(dtype), origin)


def _load_small_npz_arrays(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Load the (small) arrays ``keys`` of an .npz, without unpickling anything."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise PreparationError(f"{path}: not a readable .npz archive ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise PreparationError(f"{path}: a single .npy array, expected an .npz archive")
    with archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise PreparationError(
                f"{path}: missing key(s) {missing} (found {sorted(archive.files)})"
            )
        return {key: archive[key] for key in keys}


def _check_images(
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


# ---- grid checks ------------------------------------------------------------------------------


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


def _check_sizes(
    origin: str, found: tuple[int, ...], expected: Sequence[int] | None, published: tuple[int, ...]
) -> None:
    """Compare the grid found in a file with the requested one; note a non-published grid."""
    if expected is not None and tuple(expected) != found:
        raise PreparationError(f"{origin}: factor sizes {found}, expected {tuple(expected)}")
    if found != published:
        log.warning(
            "%s: factor sizes %s differ from the published grid %s", origin, found, published
        )


def _classes_by_rank(values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class index of each value = rank of the value among the column's distinct values."""
    classes = np.empty(values.shape, dtype=np.int64)
    uniques = []
    for column in range(values.shape[1]):
        unique, classes[:, column] = np.unique(values[:, column], return_inverse=True)
        uniques.append(unique)
    return classes, uniques


def _place(images: np.ndarray, rows: np.ndarray, block: np.ndarray) -> None:
    """``images[rows] = block``; one slice copy when the rows are consecutive (in-order files)."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1):
        images[rows[0] : rows[-1] + 1] = block
    else:
        images[rows] = block


def _progress(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, mininterval=5.0)


def _open_images(path: Path, grid: Grid) -> np.memmap:
    return np.lib.format.open_memmap(
        path, mode="w+", dtype=np.uint8, shape=(grid.num_images, *grid.image_shape)
    )


# ---- formats ----------------------------------------------------------------------------------


def _prepare_dsprites(
    src: Path, images_path: Path, *, chunk: int, factor_sizes: Sequence[int] | None
) -> Grid:
    """dSprites: drop colour, {0, 1} → {0, 255}, classes from ``latents_classes``."""
    arrays = _load_small_npz_arrays(src, ("latents_classes", "latents_values"))
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
    _check_sizes(str(src), sizes, factor_sizes, DSPRITES_SIZES)
    rows = canonical_rows(classes, sizes, str(src))
    factor_values = {}
    for column, name in enumerate(DSPRITES_FACTORS):
        _, first_row = np.unique(classes[:, column], return_index=True)
        factor_values[name] = latents_values[first_row, column + 1].tolist()
    grid = Grid(DSPRITES_FACTORS, sizes, (IMAGE_SIDE, IMAGE_SIDE, 1), factor_values)

    with open_npz_array(src, "imgs") as upstream:
        num_images = _check_images(
            upstream.origin, upstream.shape, upstream.dtype, (IMAGE_SIDE, IMAGE_SIDE)
        )
        if num_images != len(classes):
            raise PreparationError(
                f"{upstream.origin}: {num_images} images but {len(classes)} rows of latents_classes"
            )
        images = _open_images(images_path, grid)
        with _progress(num_images, "dsprites") as bar:
            for start, block in upstream.chunks(chunk):
                if block.max(initial=0) > 1:
                    raise PreparationError(
                        f"{upstream.origin}: pixel value "
                        f"{block.max()} in rows {start}.., expected 0 or 1"
                    )
                _place(images, rows[start : start + len(block)], block[..., None] * np.uint8(255))
                bar.update(len(block))
        images.flush()
    return grid


def _prepare_shapes3d(
    src: Path, images_path: Path, *, chunk: int, factor_sizes: Sequence[int] | None
) -> Grid:
    """3dshapes: classes = rank of each label value in its column; rows reordered canonically."""
    try:
        h5 = h5py.File(src, "r")
    except OSError as error:
        raise PreparationError(f"{src}: not a readable HDF5 file ({error})") from None
    with h5:
        missing = [key for key in ("images", "labels") if key not in h5]
        if missing:
            raise PreparationError(f"{src}: missing dataset(s) {missing} (found {sorted(h5)})")
        upstream, labels = h5["images"], h5["labels"][()]
        num_images = _check_images(
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
        classes, uniques = _classes_by_rank(labels)
        sizes = tuple(len(unique) for unique in uniques)
        _check_sizes(str(src), sizes, factor_sizes, SHAPES3D_SIZES)
        rows = canonical_rows(classes, sizes, str(src))
        grid = Grid(
            SHAPES3D_FACTORS,
            sizes,
            (IMAGE_SIDE, IMAGE_SIDE, 3),
            {name: unique.tolist() for name, unique in zip(SHAPES3D_FACTORS, uniques, strict=True)},
        )
        images = _open_images(images_path, grid)
        with _progress(num_images, "shapes3d") as bar:
            for start in range(0, num_images, chunk):
                stop = min(start + chunk, num_images)
                _place(images, rows[start:stop], upstream[start:stop])
                bar.update(stop - start)
        images.flush()
    return grid


def _prepare_mpi3d(
    src: Path, images_path: Path, *, chunk: int, factor_sizes: Sequence[int] | None
) -> Grid:
    """MPI3D: images already in grid order; the factors are the grid order (no labels)."""
    sizes = tuple(int(s) for s in (factor_sizes if factor_sizes is not None else MPI3D_SIZES))
    if len(sizes) != len(MPI3D_FACTORS):
        raise ValueError(
            f"factor_sizes {sizes}: MPI3D has {len(MPI3D_FACTORS)} factors {MPI3D_FACTORS}"
        )
    # the documented values describe the published grid only
    values = MPI3D_VALUES if sizes == MPI3D_SIZES else None
    grid = Grid(MPI3D_FACTORS, sizes, (IMAGE_SIDE, IMAGE_SIDE, 3), values)
    with open_npz_array(src, "images") as upstream:
        num_images = _check_images(
            upstream.origin, upstream.shape, upstream.dtype, (IMAGE_SIDE, IMAGE_SIDE, 3)
        )
        if num_images != grid.num_images:
            raise PreparationError(
                f"{upstream.origin}: {num_images} images, but the factor grid "
                f"{sizes} has {grid.num_images}"
            )
        images = _open_images(images_path, grid)
        with _progress(num_images, "mpi3d") as bar:
            for start, block in upstream.chunks(chunk):
                images[start : start + len(block)] = block
                bar.update(len(block))
        images.flush()
    return grid


def _prepare_procedural(
    images_path: Path, *, chunk: int, subgrid: Mapping[str, int] | None, threads: int | None
) -> Grid:
    """Render the procedural dSprites (sub-)grid straight into the memory-mapped output."""
    values = procedural.factor_values(subgrid)
    grid = Grid(
        procedural.FACTOR_NAMES,
        procedural.factor_sizes(subgrid),
        (procedural.CANVAS, procedural.CANVAS, 1),
        {name: value.tolist() for name, value in values.items()},
    )
    images = _open_images(images_path, grid)
    procedural.render_grid(
        subgrid, out=images[..., 0], chunk=chunk, threads=threads, foreground=255, progress=True
    )
    images.flush()
    return grid


# ---- outputs ----------------------------------------------------------------------------------


def _write_grid_factors(path: Path, sizes: tuple[int, ...], chunk: int) -> None:
    """factors.npy: row i holds ``unravel_index(i, sizes)`` as int16."""
    if max(sizes) > np.iinfo(np.int16).max + 1:
        raise ValueError(f"factor sizes {sizes} do not fit int16 class indices")
    num_images = math.prod(sizes)
    factors = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.int16, shape=(num_images, len(sizes))
    )
    for start in range(0, num_images, chunk):
        stop = min(start + chunk, num_images)
        factors[start:stop] = np.stack(np.unravel_index(np.arange(start, stop), sizes), axis=1)
    factors.flush()


def _check_round_trip(path: Path, sizes: tuple[int, ...], chunk: int) -> None:
    """Re-read factors.npy and check ``ravel_multi_index(factors.T, sizes) == arange(N)``."""
    factors = np.load(path, mmap_mode="r")
    for start in range(0, len(factors), chunk):
        block = np.asarray(factors[start : start + chunk], dtype=np.int64)
        index = np.ravel_multi_index(tuple(block.T), sizes)
        if not np.array_equal(index, np.arange(start, start + len(block))):
            raise PreparationError(
                f"{path}: factor classes of rows {start}.. do not map back to their row index"
            )


def prepare(
    fmt: str,
    src: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    name: str,
    subgrid: Mapping[str, int] | None = None,
    factor_sizes: Sequence[int] | None = None,
    chunk: int = DEFAULT_CHUNK,
    threads: int | None = None,
    checksum: str | None = None,
) -> Path:
    """Convert the upstream file ``src`` (format ``fmt``) into a prepared dataset in ``out_dir``.

    Args:
        fmt: one of ``FORMATS``.
        src: the upstream file; None for ``"procedural"``.
        out_dir: directory that receives images.npy, factors.npy and meta.json.
        name: dataset name recorded in meta.json.
        subgrid: procedural only: counts per factor (see ``procedural.subgrid_indices``).
        factor_sizes: dSprites, Shapes3D: the grid the file must hold (default: whatever
            complete grid it holds); MPI3D: the grid of the file (default: the published one).
        chunk: images read, rendered and written at a time.
        threads: rendering threads for the procedural dataset.
        checksum: checksum of ``src``, recorded in meta.json.

    Returns ``out_dir``; its meta.json holds the digest readers check (``DIGEST_KEY``). Raises
    ``PreparationError`` naming the file when its content is not as expected, and
    ``FileExistsError`` rather than overwrite a prepared dataset.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; known: {list(FORMATS)}")
    if fmt == "procedural" and src is not None:
        raise ValueError(f"the procedural format renders its images; got upstream file {src}")
    if fmt != "procedural" and src is None:
        raise ValueError(f"format {fmt!r} needs an upstream file")
    if subgrid and fmt != "procedural":
        raise ValueError(f"subgrid is only supported by the procedural format, not {fmt!r}")
    if chunk < 1:
        raise ValueError(f"chunk = {chunk} must be positive")
    out_dir = Path(out_dir)
    existing = [f for f in (IMAGES_FILE, FACTORS_FILE, META_FILE) if (out_dir / f).exists()]
    if existing:
        raise FileExistsError(f"{out_dir} already holds {existing}; remove them to prepare again")
    if src is not None:
        src = Path(src)
        if not src.is_file():
            raise FileNotFoundError(f"upstream file {src} does not exist")

    log.info("preparing %s (%s) from %s into %s", name, fmt, src, out_dir)
    with (
        atomic_path(out_dir / FACTORS_FILE) as factors_tmp,
        atomic_path(out_dir / IMAGES_FILE) as images_tmp,
    ):
        if fmt == "procedural":
            grid = _prepare_procedural(images_tmp, chunk=chunk, subgrid=subgrid, threads=threads)
        else:
            reader = {
                "dsprites_npz": _prepare_dsprites,
                "shapes3d_h5": _prepare_shapes3d,
                "mpi3d_npz": _prepare_mpi3d,
            }[fmt]
            grid = reader(src, images_tmp, chunk=chunk, factor_sizes=factor_sizes)
        _write_grid_factors(factors_tmp, grid.factor_sizes, chunk)
        _check_round_trip(factors_tmp, grid.factor_sizes, chunk)
    # leaving the block renamed images.npy, then factors.npy; meta.json marks completion
    meta: dict[str, Any] = {
        "name": name,
        "factor_names": list(grid.factor_names),
        "factor_sizes": list(grid.factor_sizes),
        "num_images": grid.num_images,
        "image_shape": list(grid.image_shape),
    }
    if grid.factor_values is not None:
        meta["factor_values"] = grid.factor_values
    meta["source"] = {
        "format": fmt,
        "file": src.name if src is not None else None,
        "checksum": checksum,
    }
    if fmt == "procedural":
        meta["source"]["subgrid"] = dict(subgrid or {})
    # what readers check the files against: a sample of the images, all of the factors
    meta[DIGEST_KEY] = dataset_digest(out_dir)
    write_json(out_dir / META_FILE, meta)
    log.info(
        "prepared %s: %d images %s, factors %s",
        name,
        grid.num_images,
        list(grid.image_shape),
        dict(zip(grid.factor_names, grid.factor_sizes, strict=True)),
    )
    return out_dir


def prepare_source(
    source: Mapping[str, Any],
    src_path: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    name: str,
    threads: int | None = None,
) -> Path:
    """``prepare`` one ``datasets:`` entry of the config (keys ``format``, ``checksum``, and
    optionally ``subgrid`` and ``factor_sizes``) from its fetched upstream file ``src_path``."""
    if "format" not in source:
        raise ValueError(f"dataset source for {name!r} has no 'format': {dict(source)}")
    return prepare(
        source["format"],
        src_path,
        out_dir,
        name=name,
        subgrid=source.get("subgrid"),
        factor_sizes=source.get("factor_sizes"),
        threads=threads,
        checksum=source.get("checksum"),
    )
