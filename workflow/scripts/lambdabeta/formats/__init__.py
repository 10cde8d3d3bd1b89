"""The upstream dataset formats that ``lambdabeta.prepare`` converts, behind one mapping.

Supported formats (the ``format`` key of a ``datasets:`` entry in the config):

- ``dsprites_npz``  dSprites .npz: ``imgs`` N × 64 × 64 in {0, 1}, ``latents_classes`` N × 6
  (colour first, dropped here), ``latents_values``;
- ``shapes3d_h5``   3dshapes.h5: ``images`` N × 64 × 64 × 3 and ``labels`` N × 6 factor VALUES,
  turned into classes by rank;
- ``mpi3d_npz``     mpi3d_real.npz: ``images`` N × 64 × 64 × 3 only; the factors are the published
  grid order;
- ``procedural``    the offline dSprites of ``lambdabeta.procedural``, rendered here.

Modules, one concern each:

- ``common``      the request a reader answers, the grid it returns, ``PreparationError``, the
                  checks of an upstream grid and the memory-mapped images.npy
- ``npz``         streaming reads of the arrays of an .npz archive
- ``dsprites``, ``shapes3d``, ``mpi3d``, ``procedural``  one reader each, with its published grid

``READERS`` maps each format name to its reader; ``FORMATS`` are its keys. The config schema's
formats are the same (tests/test_formats.py).
"""

from __future__ import annotations

from . import dsprites, mpi3d, procedural, shapes3d
from .common import Reader

READERS: dict[str, Reader] = {
    "dsprites_npz": Reader(dsprites.read),
    "shapes3d_h5": Reader(shapes3d.read),
    "mpi3d_npz": Reader(mpi3d.read),
    "procedural": Reader(procedural.render, renders=True),
}
"""Format name (the ``format`` of a ``datasets:`` entry) → how its images.npy is written."""

FORMATS = tuple(READERS)
"""The names of the supported formats."""

__all__ = ["FORMATS", "READERS"]
