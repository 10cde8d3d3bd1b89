"""Conversion of upstream dataset files into the uniform on-disk format of ``loader``.

``prepare`` writes images.npy through the reader of the file's format (``lambdabeta.formats``,
one module per format: ``FORMATS`` lists them), then factors.npy and meta.json.

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

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .formats import FORMATS, READERS
from .formats.common import PreparationError, ReadRequest
from .io import atomic_path, write_json
from .loader import DIGEST_KEY, FACTORS_FILE, IMAGES_FILE, META_FILE, dataset_digest

log = logging.getLogger(__name__)

# Images per read/write: 4096 RGB 64 × 64 images are 50 MB.
DEFAULT_CHUNK = 4096

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
    reader = READERS[fmt]
    if reader.renders and src is not None:
        raise ValueError(f"the {fmt} format renders its images; got upstream file {src}")
    if not reader.renders and src is None:
        raise ValueError(f"format {fmt!r} needs an upstream file")
    if subgrid and not reader.renders:
        rendered = " or ".join(name for name, other in READERS.items() if other.renders)
        raise ValueError(f"subgrid is only supported by the {rendered} format, not {fmt!r}")
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
        request = ReadRequest(
            src=src,
            images_path=images_tmp,
            chunk=chunk,
            factor_sizes=factor_sizes,
            subgrid=subgrid,
            threads=threads,
        )
        grid = reader.read(request)
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
    if reader.renders:
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
