"""Reading arrays of an .npz archive without loading it whole: a large ``.npy`` member is parsed
from its header and streamed through ``zipfile`` chunk by chunk (stored or deflated), and the
small ones are loaded without unpickling anything."""

from __future__ import annotations

import contextlib
import io
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import read_npy_header
from .common import PreparationError


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


def load_small_npz_arrays(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
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
