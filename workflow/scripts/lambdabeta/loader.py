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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import read_json
from .plan.datasets import PREPARED_FILES

IMAGES_FILE, FACTORS_FILE, META_FILE = (PREPARED_FILES[k] for k in ("images", "factors", "meta"))


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
    """Open a prepared dataset directory; images are memory-mapped unless ``mmap=False``."""
    directory = Path(directory)
    for name in (IMAGES_FILE, FACTORS_FILE, META_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory} is not a prepared dataset: {name} is missing "
                "(run the pipeline's prepare step for this dataset)"
            )
    meta = read_json(directory / META_FILE)
    # copy-on-write: the map is writable for torch.from_numpy, yet never written back to disk
    images = np.load(directory / IMAGES_FILE, mmap_mode="c" if mmap else None)
    factors = np.load(directory / FACTORS_FILE)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            f"{directory / IMAGES_FILE}: expected uint8 N×H×W×C, got {images.dtype} {images.shape}"
        )
    if factors.shape != (images.shape[0], len(meta["factor_sizes"])):
        raise ValueError(
            f"{directory / FACTORS_FILE}: shape {factors.shape} does not match "
            f"{images.shape[0]} images × {len(meta['factor_sizes'])} factors"
        )
    return PreparedDataset(
        name=meta["name"],
        images=images,
        factors=factors,
        factor_names=tuple(meta["factor_names"]),
        factor_sizes=tuple(int(s) for s in meta["factor_sizes"]),
    )


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
