"""The uniform on-disk dataset format, and uint8 images on the training device.

Every dataset, whatever its upstream format, is prepared into one directory::

    images.npy    uint8, N × H × W × C, values 0..255 (binary images use {0, 255})
    factors.npy   int16, N × K, factor class indices
    meta.json     {"name", "factor_names", "factor_sizes", "num_images", "image_shape", ...}

Rows are in canonical grid order (C order, last factor fastest), so the row of an image with
factor classes ``c`` is ``ravel_multi_index(c, factor_sizes)``. ``images.npy`` is a plain ``.npy``
file, so it memory-maps: loading a 12 GB dataset costs no RAM until pages are touched, and
concurrent jobs on one node share the page cache. Images are never expanded to float in
memory; ``DeviceImages.batch`` converts one batch at a time.

Every reader checks a prepared dataset before use (``load_prepared``), cheaply:

- ``images.npy``'s header is read and the file's size compared with the size it announces, so a
  truncated file is reported as such (numpy's own error would be "mmap length is greater than
  file size"), and its shape with meta.json's;
- when meta.json holds a ``digest`` (written by ``prepare`` since this check exists), the sha256 of
  ``DIGEST_BLOCKS`` blocks of ``DIGEST_BLOCK_BYTES`` bytes of ``images.npy``, evenly spaced from
  its first byte (the .npy header) to its last, at offsets that depend on the file's size only
  (the whole file when it is no larger than that sample), and the sha256 of all of
  ``factors.npy``, are compared with the recorded ones.

What the sampled digest detects: truncation and extension; a file re-rendered (another
renderer, sub-grid or upstream version), swapped for another dataset's or replaced wholesale;
and any overwritten run of bytes at least as long as the spacing of the blocks
(``size / (DIGEST_BLOCKS - 1)``: 0.74 MB, about 180 images, for dSprites' 3.0 GB; 3.1 MB, about
250 images, for MPI3D's 12.7 GB). What it does not guarantee: a single altered image or a
flipped bit of a large dataset is detected only when it overlaps a sampled block (for one whole
image, a chance of (image + block bytes) / spacing: 1.1 % for dSprites, 0.5 % for MPI3D; less
for a few pixels). Datasets of at most 16 MiB (every test's) are
hashed whole, so there any change is detected. The cost is 4,096 positioned 4 KiB reads and
hashing 16 MiB plus factors.npy (7 MB for dSprites, 15 MB for MPI3D), whatever the size of the
images. Measured on a full-grid dSprites-sized dataset (3.0 GB, a 2-core VM): 0.05 s with its
files in the page cache, 0.4 s from a cold disk (4,096 reads of 0.1 ms), where a full sha256
takes 10 s; MPI3D (12.7 GB) costs the same but for 8 ms more of factors (a full sha256: 40 s).

A dataset prepared before the digest existed is accepted with a logged warning. A dataset that
fails a check is moved aside (``images.npy`` → ``images.npy.corrupt``, see
``lambdabeta.io.corrupt_file``): ``images.npy`` is an output of the ``prepare_dataset`` rule, so
the next ``snakemake`` run prepares the dataset again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io import CORRUPT_SUFFIX, corrupt_file, read_json, read_npy_header
from .plan.datasets import PREPARED_FILES

log = logging.getLogger(__name__)

IMAGES_FILE, FACTORS_FILE, META_FILE = (PREPARED_FILES[k] for k in ("images", "factors", "meta"))

DIGEST_KEY = "digest"
"""The key of meta.json holding the digest that ``prepare`` writes (``dataset_digest``)."""
DIGEST_BLOCKS = 4096
DIGEST_BLOCK_BYTES = 4096
"""The images digest hashes ``DIGEST_BLOCKS`` blocks of ``DIGEST_BLOCK_BYTES`` (16 MiB in all):
few enough that the check costs a fraction of a second even from a cold disk, whatever the
size of the dataset, and dense enough that any altered run of bytes longer than 0.74 MB
(dSprites) or 3.1 MB (MPI3D) is detected. Blocks of one page (4 KiB) cost one read each. The
values used are recorded with each digest, so changing them does not invalidate older digests."""


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset: uint8 images (usually memory-mapped) and their factor classes."""

    name: str
    images: np.ndarray
    factors: np.ndarray
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_channels(self) -> int:
        return int(self.images.shape[-1])

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def index_of(self, classes: np.ndarray) -> np.ndarray:
        """Row index of each factor-class vector: ``ravel_multi_index(classes, sizes)``."""
        classes = np.asarray(classes)
        return np.ravel_multi_index(tuple(classes.T), self.factor_sizes)

    def images_for(self, classes: np.ndarray) -> np.ndarray:
        """uint8 images (… × H × W × C) for the given factor classes (… × K)."""
        return self.images[self.index_of(classes)]


def load_prepared(directory: str | os.PathLike, mmap: bool = True) -> PreparedDataset:
    """Open a prepared dataset directory; images are memory-mapped unless ``mmap=False``.

    The dataset is checked first (see the module docstring); a file that fails is moved aside
    and ``CorruptFileError`` raised, naming it, what is wrong and what recomputes it.
    """
    directory = Path(directory)
    _require_files(directory)
    meta = _read_meta(directory / META_FILE)
    images_path, factors_path = directory / IMAGES_FILE, directory / FACTORS_FILE
    shape = _check_images_file(images_path, meta)
    factors_bytes = factors_path.read_bytes()
    _check_digest(directory, meta, factors_bytes)
    factors = _parse_factors(factors_path, factors_bytes, shape[0], len(meta["factor_sizes"]))
    # copy-on-write: the map is writable for torch.from_numpy, yet never written back to disk
    images = np.load(images_path, mmap_mode="c" if mmap else None)
    return PreparedDataset(
        name=meta["name"],
        images=images,
        factors=factors,
        factor_names=tuple(meta["factor_names"]),
        factor_sizes=tuple(int(s) for s in meta["factor_sizes"]),
    )


def _require_files(directory: Path) -> None:
    """Raise ``FileNotFoundError`` naming the first file of the dataset that is missing, and the
    corrupt copy beside it if a reader moved it aside."""
    for name in (IMAGES_FILE, FACTORS_FILE, META_FILE):
        if (directory / name).is_file():
            continue
        corrupt = directory / (name + CORRUPT_SUFFIX)
        why = f" ({corrupt} was moved aside as corrupt)" if corrupt.exists() else ""
        raise FileNotFoundError(
            f"{directory} is not a prepared dataset: {name} is missing{why}; the next "
            f"`snakemake` run prepares it (the pipeline's prepare_dataset rule)"
        )


def _read_meta(path: Path) -> dict[str, Any]:
    """meta.json, checked to be a JSON object with the keys every reader uses."""
    try:
        meta = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise corrupt_file(path, f"not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise corrupt_file(path, f"holds a JSON {type(meta).__name__}, expected an object")
    missing = [key for key in ("name", "factor_names", "factor_sizes") if key not in meta]
    if missing:
        raise corrupt_file(path, f"lacks key(s) {missing} (it has {sorted(meta)})")
    return meta


def _check_images_file(path: Path, meta: dict[str, Any]) -> tuple[int, ...]:
    """The shape of images.npy, after checking its header, its size against the size the header
    announces (truncation) and its shape against meta.json."""
    with open(path, "rb") as stream:
        try:
            shape, fortran_order, dtype = read_npy_header(stream)
        except ValueError as error:
            raise corrupt_file(path, f"not a readable .npy file ({error})") from None
        data_start = stream.tell()
        size = os.fstat(stream.fileno()).st_size
    if dtype != np.uint8 or len(shape) != 4 or fortran_order:
        order = ", Fortran order" if fortran_order else ""
        raise corrupt_file(path, f"expected uint8 N×H×W×C, got {dtype} {shape}{order}")
    expected = data_start + math.prod(shape)
    if size != expected:
        what = "truncated" if size < expected else "longer than its header announces"
        raise corrupt_file(
            path,
            f"{path.name} is {size:,} bytes, expected {expected:,} (a {data_start}-byte header "
            f"and {' × '.join(map(str, shape))} uint8 images): {what}",
        )
    announced = (
        meta.get("num_images", math.prod(meta["factor_sizes"])),
        *meta.get("image_shape", shape[1:]),
    )
    if shape != tuple(announced) or math.prod(meta["factor_sizes"]) != shape[0]:
        raise corrupt_file(
            path,
            f"holds {' × '.join(map(str, shape))} images, but meta.json announces "
            f"{' × '.join(map(str, announced))} on the grid {meta['factor_sizes']}: "
            "these are not this dataset's images",
        )
    return shape


def _sample_spans(size: int, blocks: int, block_bytes: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of the blocks the images digest reads, which depend on ``size``
    only: ``blocks`` blocks of ``block_bytes`` evenly spaced from the first byte (the .npy
    header) to the last, or the whole file when it is no larger than that.

    All but the last block start at a multiple of ``block_bytes``, so that a block of one page
    costs one page read (unaligned, each would straddle two); the last one ends at the end of
    the file. Changing this changes every digest.
    """
    if size <= blocks * block_bytes:
        return [(0, size)]
    last = size - block_bytes
    aligned = [k * last // (blocks - 1) // block_bytes * block_bytes for k in range(blocks - 1)]
    return [(offset, block_bytes) for offset in [*aligned, last]]


def _sample_description(size: int, blocks: int, block_bytes: int) -> str:
    """What ``_sample_spans`` reads of a file of ``size`` bytes, in words."""
    if size <= blocks * block_bytes:
        return "the whole file"
    return f"{blocks:,} evenly spaced blocks of {block_bytes:,} bytes"


def sampled_sha256(path: str | os.PathLike, blocks: int, block_bytes: int) -> str:
    """sha256 of the blocks of ``path`` that ``_sample_spans`` picks, read in file order."""
    if blocks < 2 or block_bytes < 1:
        raise ValueError(f"a digest needs ≥ 2 blocks of ≥ 1 byte, got {blocks} × {block_bytes}")
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as stream:
        fd = stream.fileno()
        if hasattr(os, "posix_fadvise"):
            # no readahead for this descriptor: each 4 KiB read would pull in 128 KiB or more
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for offset, length in _sample_spans(os.fstat(fd).st_size, blocks, block_bytes):
            while length > 0:
                data = os.pread(fd, min(length, 1 << 24), offset)
                if not data:
                    raise ValueError(f"{path}: shorter than its size while reading it")
                digest.update(data)
                offset, length = offset + len(data), length - len(data)
    return digest.hexdigest()


def dataset_digest(directory: str | os.PathLike) -> dict[str, Any]:
    """The digest ``prepare`` records in meta.json: the size and a sampled sha256 of
    images.npy (with the sampling used) and the sha256 of factors.npy."""
    directory = Path(directory)
    images, factors = directory / IMAGES_FILE, directory / FACTORS_FILE
    return {
        "algorithm": "sha256",
        "images_bytes": images.stat().st_size,
        "images_blocks": DIGEST_BLOCKS,
        "images_block_bytes": DIGEST_BLOCK_BYTES,
        "images_sample_sha256": sampled_sha256(images, DIGEST_BLOCKS, DIGEST_BLOCK_BYTES),
        "factors_sha256": hashlib.sha256(factors.read_bytes()).hexdigest(),
    }


_DIGEST_FIELDS = {
    "algorithm": str,
    "images_bytes": int,
    "images_blocks": int,
    "images_block_bytes": int,
    "images_sample_sha256": str,
    "factors_sha256": str,
}


def _check_digest(directory: Path, meta: dict[str, Any], factors_bytes: bytes) -> None:
    """Compare images.npy and factors.npy with the digest in meta.json; warn when there is none
    (a dataset prepared by an older version)."""
    meta_path = directory / META_FILE
    digest = meta.get(DIGEST_KEY)
    if digest is None:
        log.warning(
            "%s has no digest (prepared by an older version): its images cannot be checked "
            "for corruption. Move %s aside to prepare it again with one at the next "
            "`snakemake` run.",
            meta_path,
            directory / IMAGES_FILE,
        )
        return
    if (
        not isinstance(digest, dict)
        or any(not isinstance(digest.get(key), kind) for key, kind in _DIGEST_FIELDS.items())
        or digest["images_blocks"] < 2
        or digest["images_block_bytes"] < 1
    ):
        raise corrupt_file(meta_path, f"malformed {DIGEST_KEY!r} entry {digest!r}")
    if digest["algorithm"] != "sha256":
        raise corrupt_file(meta_path, f"unknown digest algorithm {digest['algorithm']!r}")
    images_path = directory / IMAGES_FILE
    size = images_path.stat().st_size
    if size != digest["images_bytes"]:
        raise corrupt_file(
            images_path,
            f"{IMAGES_FILE} is {size:,} bytes, meta.json records {digest['images_bytes']:,}: "
            "replaced after it was prepared",
        )
    blocks, block_bytes = digest["images_blocks"], digest["images_block_bytes"]
    found = sampled_sha256(images_path, blocks, block_bytes)
    if found != digest["images_sample_sha256"]:
        raise corrupt_file(
            images_path,
            f"its content differs from the digest meta.json recorded when it was prepared "
            f"(sha256 of {_sample_description(size, blocks, block_bytes)}: {found[:16]}…, "
            f"recorded {digest['images_sample_sha256'][:16]}…): altered, re-rendered or "
            "replaced since",
        )
    found = hashlib.sha256(factors_bytes).hexdigest()
    if found != digest["factors_sha256"]:
        raise corrupt_file(
            directory / FACTORS_FILE,
            f"its sha256 {found[:16]}… differs from the {digest['factors_sha256'][:16]}… "
            "meta.json recorded when it was prepared: altered or replaced since",
        )


def _parse_factors(path: Path, data: bytes, num_images: int, num_factors: int) -> np.ndarray:
    """factors.npy from its bytes, checked to be integer ``num_images × num_factors``."""
    try:
        factors = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise corrupt_file(path, f"not a readable .npy file ({error})") from None
    if not isinstance(factors, np.ndarray):  # np.load opens an .npz archive too
        raise corrupt_file(path, "an .npz archive, expected a .npy array")
    if factors.shape != (num_images, num_factors) or not np.issubdtype(factors.dtype, np.integer):
        raise corrupt_file(
            path,
            f"{factors.dtype} of shape {factors.shape} does not match {num_images} images × "
            f"{num_factors} factors (integer classes)",
        )
    return factors


class DeviceImages:
    """uint8 images held on one device; float batches are made by indexing, one batch at a time.

    The images stay N × H × W × C uint8 (a quarter of float32's memory, and no host↔device copy
    per step). ``batch`` returns B × C × H × W floats in [0, 1]; with ``channels_last=True`` the
    result keeps the NHWC memory layout that convolutions prefer, otherwise it is made contiguous.
    On the CPU, writable (e.g. copy-on-write memory-mapped) images are used in place, so jobs on
    one node share the page cache instead of each holding its own copy.
    """

    def __init__(
        self,
        images: np.ndarray,
        device: torch.device | str = "cpu",
        channels_last: bool = False,
        chunk: int = 32768,
    ):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 N×H×W×C images, got {images.dtype} {images.shape}")
        self.device = torch.device(device)
        self.channels_last = channels_last
        if self.device.type == "cpu" and images.flags.writeable and images.flags.c_contiguous:
            self.data = torch.from_numpy(images)
            return
        self.data = torch.empty(images.shape, dtype=torch.uint8, device=self.device)
        # copy in chunks so a memory-mapped file is never materialised twice in host RAM
        for start in range(0, images.shape[0], chunk):
            block = torch.from_numpy(np.array(images[start : start + chunk]))  # a writable copy
            self.data[start : start + chunk].copy_(block)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_channels(self) -> int:
        return int(self.data.shape[-1])

    def batch(self, indices: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images ``indices`` as a B × C × H × W tensor of ``dtype`` in [0, 1]."""
        x = self.data.index_select(0, indices.to(self.device)).permute(0, 3, 1, 2)
        x = x.to(dtype).div_(255.0)
        return x if self.channels_last else x.contiguous()
