"""Checksums of the upstream files: the expected digest as the config writes it, a file's
digest, and the verification of a file's size and checksum."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

# Expected hex-digest length of each supported checksum algorithm.
DIGEST_LENGTHS = {"md5": 32, "sha256": 64}


class IntegrityError(ValueError):
    """A file does not have its expected size or checksum."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest, written ``"<algorithm>:<hex>"`` in the config."""

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, spec: str) -> Checksum:
        """Parse and validate ``"md5:<32 hex>"`` or ``"sha256:<64 hex>"`` (case-insensitive)."""
        if not isinstance(spec, str) or ":" not in spec:
            raise ValueError(f"checksum {spec!r} must look like 'md5:<hex>' or 'sha256:<hex>'")
        algorithm, hexdigest = (part.strip().lower() for part in spec.split(":", 1))
        if algorithm not in DIGEST_LENGTHS:
            raise ValueError(
                f"checksum {spec!r}: unsupported algorithm {algorithm!r}; "
                f"use one of {sorted(DIGEST_LENGTHS)}"
            )
        length = DIGEST_LENGTHS[algorithm]
        if not re.fullmatch(f"[0-9a-f]{{{length}}}", hexdigest):
            raise ValueError(f"checksum {spec!r}: a {algorithm} digest is {length} hex digits")
        return cls(algorithm, hexdigest)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


def file_checksum(path: str | os.PathLike, algorithm: str, *, chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read ``chunk_size`` bytes at a time."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        while block := stream.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, checksum: Checksum, size: int | None = None) -> None:
    """Raise ``IntegrityError`` unless the file has ``size`` bytes (if given) and ``checksum``.

    The size is compared first: it costs nothing and catches truncated files before hashing.
    """
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != size:
        raise IntegrityError(f"size mismatch: expected {size} bytes, got {actual_size}")
    actual = file_checksum(path, checksum.algorithm)
    if actual != checksum.hexdigest:
        raise IntegrityError(
            f"checksum mismatch: expected {checksum}, got {checksum.algorithm}:{actual}"
        )
