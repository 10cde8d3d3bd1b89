"""Verified, resumable downloads of the upstream dataset files.

``fetch`` streams a file from the first mirror that delivers it whole and verified:

- bytes go to ``<dest>.part`` next to ``dest``; when that partial file exists (a dropped
  connection, or a job killed earlier) the request asks for the rest with ``Range: bytes=N-``
  and appends, or starts over if the server answers 200 (whole file) instead of 206;
- a dropped connection is retried on the same URL (each retry resumes), then the next mirror
  is tried; an HTTP error status moves on to the next mirror at once;
- the size (when known) and the checksum (``"md5:<hex>"`` or ``"sha256:<hex>"``) are verified
  before ``<dest>.part`` is renamed to ``dest``; a mismatch deletes the partial file.

Nothing ever appears at ``dest`` unless it verified. Only the standard library speaks HTTP.
``use_local_file`` accepts a copy the user already has instead, after the same checks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .io import atomic_path

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
# Expected hex-digest length of each supported checksum algorithm.
DIGEST_LENGTHS = {"md5": 32, "sha256": 64}


class DownloadError(RuntimeError):
    """No mirror delivered a verified file."""


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


class _TransferInterrupted(ConnectionError):
    """The connection ended before the announced number of bytes arrived."""


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range`` header; None where it says nothing."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if match is None:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _transfer(url: str, part: Path, *, chunk_size: int, timeout: float, progress: bool) -> None:
    """One request: bring ``part`` up to the end of the file at ``url``, resuming if it exists.

    Raises ``urllib.error.HTTPError`` for an error status and ``OSError`` /
    ``http.client.HTTPException`` when the connection fails or ends early; bytes already
    received stay in ``part`` so that the next attempt resumes after them.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # range not satisfiable: the partial file is already complete, or longer than the file
        _, total = _content_range(error.headers.get("Content-Range"))
        error.close()
        if total == offset:
            return
        part.unlink()
        raise _TransferInterrupted(
            f"partial file has {offset} bytes but the file has "
            f"{total if total is not None else 'fewer'}; starting over"
        ) from None
    with response:
        first, total = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and first != offset:
            part.unlink()
            raise _TransferInterrupted(
                f"asked for bytes from {offset}, got a range from {first}; starting over"
            )
        if response.status != 206:  # the server ignored the range and sends the whole file
            offset = 0
        length = response.headers.get("Content-Length")
        expected_end = offset + int(length) if length is not None else None
        received = offset
        with (
            open(part, "ab" if offset else "wb") as stream,
            tqdm(
                total=total if total is not None else expected_end,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(PART_SUFFIX),
                file=sys.stderr,
                disable=not progress,
                mininterval=1.0,
            ) as bar,
        ):
            while block := response.read(chunk_size):
                stream.write(block)
                received += len(block)
                bar.update(len(block))
            stream.flush()
            os.fsync(stream.fileno())
    # http.client's read(n) returns b"" when the peer closes early instead of raising
    if expected_end is not None and received < expected_end:
        raise _TransferInterrupted(f"connection closed after {received} of {expected_end} bytes")


def _describe(error: BaseException) -> str:
    """A one-line reason for the error report: HTTP status, or the connection error."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"connection error: {error.reason}"
    return f"connection error: {type(error).__name__}: {error}"


def _fetch_from(
    url: str,
    part: Path,
    dest: Path,
    checksum: Checksum,
    size: int | None,
    *,
    chunk_size: int,
    timeout: float,
    attempts: int,
    retry_wait: float,
    progress: bool,
) -> str | None:
    """Try one mirror; None when ``dest`` now holds the verified file, else the reason it failed."""
    for attempt in range(1, attempts + 1):
        try:
            _transfer(url, part, chunk_size=chunk_size, timeout=timeout, progress=progress)
            break
        except urllib.error.HTTPError as error:
            error.close()
            return _describe(error)
        except (OSError, HTTPException) as error:
            reason = _describe(error)
            log.warning("%s: attempt %d of %d failed (%s)", url, attempt, attempts, reason)
            if attempt == attempts:
                return f"{reason} (after {attempts} attempts)"
            time.sleep(retry_wait * attempt)
    try:
        verify_file(part, checksum, size)
    except IntegrityError as error:
        part.unlink()
        return str(error)
    os.replace(part, dest)
    return None


def fetch(
    urls: Sequence[str],
    dest: str | os.PathLike,
    checksum: str,
    *,
    size: int | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
    attempts_per_url: int = 3,
    retry_wait: float = 1.0,
    progress: bool = True,
) -> Path:
    """Download ``dest`` from the first of ``urls`` (mirrors, in order) that delivers it verified.

    Args:
        urls: http(s) mirrors of one file, tried in order.
        dest: final path; a verified file is renamed there from ``<dest>.part``.
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"``.
        size: expected size in bytes, checked before the checksum (optional).
        chunk_size: bytes read and written at a time.
        timeout: seconds without data after which a connection counts as dropped.
        attempts_per_url: connection attempts per mirror; each one resumes the partial file.
        retry_wait: seconds before the second attempt; the wait grows linearly with attempts.
        progress: show a progress bar on stderr.

    Returns ``dest``. Raises ``DownloadError`` naming every URL tried, why it failed, and the
    expected checksum. If ``dest`` already exists it is verified and returned, never replaced.
    """
    expected = Checksum.parse(checksum)
    urls = list(urls)
    if not urls:
        raise ValueError(f"no URL to download {dest} from")
    for url in urls:
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ValueError(
                f"{url!r} is not an http(s) URL; a file you already have goes in "
                "the dataset's local_path instead"
            )
    if attempts_per_url < 1:
        raise ValueError(f"attempts_per_url = {attempts_per_url} must be at least 1")
    dest = Path(dest)
    if dest.exists():
        try:
            verify_file(dest, expected, size)
        except IntegrityError as error:
            raise FileExistsError(
                f"{dest} already exists and fails verification ({error}); "
                "remove it to download it again"
            ) from None
        log.info("%s already present and verified", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    failures = []
    for url in urls:
        log.info("downloading %s -> %s", url, dest)
        reason = _fetch_from(
            url,
            part,
            dest,
            expected,
            size,
            chunk_size=chunk_size,
            timeout=timeout,
            attempts=attempts_per_url,
            retry_wait=retry_wait,
            progress=progress,
        )
        if reason is None:
            log.info("%s verified (%s)", dest, expected)
            return dest
        log.warning("%s failed: %s", url, reason)
        failures.append(f"  {url}: {reason}")
    kept = (
        f"\n{part.stat().st_size} bytes are kept in {part}; running again resumes there."
        if part.exists()
        else ""
    )
    raise DownloadError(
        f"could not download {dest.name} (expected {expected}) from any of "
        f"{len(urls)} URL(s):\n" + "\n".join(failures) + kept
    )


def use_local_file(
    local_path: str | os.PathLike,
    dest: str | os.PathLike,
    checksum: str,
    *,
    size: int | None = None,
) -> Path:
    """Verify a file the user already has and make ``dest`` a symlink to its absolute path.

    Raises ``FileNotFoundError`` if it is missing and ``IntegrityError`` (naming the file and
    both checksums) if it does not verify; ``dest`` is then left untouched.
    """
    expected = Checksum.parse(checksum)
    local = Path(local_path).expanduser().resolve()
    if not local.is_file():
        raise FileNotFoundError(f"local_path {local} does not exist or is not a file")
    try:
        verify_file(local, expected, size)
    except IntegrityError as error:
        raise IntegrityError(f"local_path {local}: {error}") from None
    dest = Path(dest)
    if dest.is_symlink() or dest.exists():
        if dest.resolve() == local:
            return dest
        raise FileExistsError(f"{dest} already exists and is not a link to {local}; remove it")
    with atomic_path(dest) as tmp:
        tmp.unlink()
        tmp.symlink_to(local)
    log.info("%s -> %s (verified %s)", dest, local, expected)
    return dest


def local_path_hint(dataset: str | None, file: str) -> str:
    """The advice a failed download ends with: the config key that uses a copy the user has."""
    key = f"datasets.{dataset or '<name>'}.local_path"
    return (
        f"If you already have {file}, set {key} in the config to its path: the file is then "
        "verified against the same checksum and linked instead of downloaded."
    )


def fetch_source(
    source: Mapping[str, Any],
    dest: str | os.PathLike,
    *,
    dataset: str | None = None,
    **fetch_options: Any,
) -> Path:
    """Obtain the upstream file of one ``datasets:`` entry of the config at ``dest``.

    ``source`` has keys ``format, file, urls, checksum`` and optionally ``size`` and
    ``local_path``; a set ``local_path`` is verified and linked, otherwise ``urls`` are fetched
    (``fetch_options`` go to ``fetch``). ``dataset`` is the entry's name under ``datasets:``,
    which a failed download names in its ``datasets.<dataset>.local_path`` advice.
    """
    if source.get("format") == "procedural":
        raise ValueError("the procedural dataset is rendered locally; there is nothing to fetch")
    missing = [key for key in ("format", "file", "checksum") if key not in source]
    if missing:
        raise ValueError(f"dataset source is missing key(s) {missing}: {dict(source)}")
    size = source.get("size")
    if source.get("local_path"):
        return use_local_file(source["local_path"], dest, source["checksum"], size=size)
    if not source.get("urls"):
        raise ValueError(f"dataset source for {source['file']} has neither urls nor local_path")
    try:
        return fetch(source["urls"], dest, source["checksum"], size=size, **fetch_options)
    except DownloadError as error:
        raise DownloadError(f"{error}\n{local_path_hint(dataset, source['file'])}") from None
