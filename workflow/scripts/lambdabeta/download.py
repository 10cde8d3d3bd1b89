"""Verified, resumable downloads of the upstream dataset files.

``fetch`` brings a file from its mirrors, resuming across them, and keeps it only verified:

- bytes go to ``<dest>.part`` next to ``dest``; when that partial file exists (a dropped or
  stalled connection, or a job killed earlier) the request asks for the rest with
  ``Range: bytes=N-``, and only a ``206`` whose ``Content-Range`` starts at ``N`` (and whose
  total is the expected size, when known) is appended. An HTML page, a file of another size or
  a ``200`` answer to a range request never touches the partial file;
- a mirror is asked again at once after an attempt that gained bytes, and passes over the
  mirrors repeat while any of them gains bytes; ``attempts_per_url`` attempts in a row that gain
  nothing move on to the next mirror, and an HTTP error status moves on at once;
- a transfer slower than ``min_rate_bytes`` per ``min_rate_seconds`` is abandoned as stalled;
  a body that ends before its ``Content-Length`` or the expected size is incomplete: in both
  cases its bytes are kept and resumed;
- when no mirror can continue the partial file, one that only serves it whole downloads it from
  the first byte into ``<dest>.part.restart``, which replaces the partial file only once longer;
- the size (when known) and the checksum (``"md5:<hex>"`` or ``"sha256:<hex>"``) are verified
  before the download is renamed to ``dest``; a whole file that fails them is deleted.

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
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .io import atomic_path

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
# a download from the first byte, made while a partial file exists, until it is the longer one
RESTART_SUFFIX = ".restart"
# a transfer that receives fewer than MIN_RATE_BYTES in MIN_RATE_SECONDS counts as stalled
MIN_RATE_BYTES = 64 * 1024
MIN_RATE_SECONDS = 60.0
# client errors worth asking again in a later pass; any other 4xx means "not on this mirror"
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
# what an error or login page is served as; a dataset file never is
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
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


class _Incomplete(ConnectionError):
    """The body ended, or was abandoned, before the whole file arrived; what came is kept."""


class _Stalled(_Incomplete):
    """Fewer than the minimum number of bytes arrived within the rate window."""


class _CannotResume(Exception):
    """The mirror answered, but not with the continuation of the partial file."""


class _NotTheFile(Exception):
    """The mirror serves something other than the file: an HTML page, a file of another size."""


@dataclass
class _Job:
    """One file to download and how."""

    dest: Path
    checksum: Checksum
    size: int | None
    chunk_size: int
    timeout: float
    min_rate_bytes: int
    min_rate_seconds: float
    progress: bool

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + PART_SUFFIX)

    @property
    def restart(self) -> Path:
        return self.part.with_name(self.part.name + RESTART_SUFFIX)

    @property
    def html_expected(self) -> bool:
        return self.dest.suffix.lower() in {".html", ".htm"}


def _size(path: Path) -> int:
    """Size of ``path`` in bytes; 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _keep_longer(job: _Job) -> None:
    """Keep the longer of the partial file and a from-scratch download as the partial file."""
    if not job.restart.exists():
        return
    if _size(job.restart) > _size(job.part):
        os.replace(job.restart, job.part)
    else:
        job.restart.unlink()


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range`` header; None where it says nothing."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if match is None:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _content_length(header: str | None) -> int | None:
    try:
        return int(header) if header is not None else None
    except ValueError:
        return None


def _looks_like_html(block: bytes) -> bool:
    return block[:64].lstrip().lower().startswith((b"<!doctype html", b"<html"))


def _transfer(url: str, job: _Job, *, restart: bool) -> Path:
    """One request: continue the partial file from ``url`` or, with ``restart``, download the
    file from its first byte into ``<part>.restart``; return the file that now holds it whole.

    Raises ``urllib.error.HTTPError`` (an error status), ``_NotTheFile`` or ``_CannotResume``
    before writing anything; ``_Incomplete``, ``OSError`` or ``http.client.HTTPException`` when
    the body ends early or stalls. Bytes received stay in the partial file; those of a restart
    replace it only where they are more (``_keep_longer``).
    """
    offset = 0 if restart else _size(job.part)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=job.timeout
        )
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # range not satisfiable: the partial file is already whole, or the file differs
        _, total = _content_range(error.headers.get("Content-Range"))
        error.close()
        if job.size is not None and total is not None and total != job.size:
            raise _NotTheFile(
                f"size mismatch: expected {job.size} bytes, the server has {total}"
            ) from None
        if total == offset:
            return job.part
        raise _CannotResume(
            f"HTTP 416 to a request for bytes from {offset} (the file has "
            f"{total if total is not None else 'fewer'} bytes)"
        ) from None
    out = job.restart if restart else job.part
    try:
        with response:
            return _receive(response, job, out, offset)
    except BaseException:
        if restart:
            _keep_longer(job)
        raise


def _receive(response: Any, job: _Job, out: Path, offset: int) -> Path:
    """Check that ``response`` continues ``out`` at ``offset``, then append its body there."""
    status = response.status
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type in HTML_TYPES and not job.html_expected:
        raise _NotTheFile(
            f"answered HTTP {status} with an HTML page ({content_type}), not the file"
        )
    first, total = _content_range(response.headers.get("Content-Range"))
    length = _content_length(response.headers.get("Content-Length"))
    if status == 206:
        start = first
    else:  # the whole file, from its first byte
        start, total = 0, length
    if start != offset:
        if status != 206:
            problem = (
                f"answered HTTP {status} (the whole file) to a request for bytes from {offset}"
            )
        elif start is None:
            problem = "answered HTTP 206 without a usable Content-Range"
        else:
            problem = f"asked for bytes from {offset}, got a range from {start}"
        raise _CannotResume(problem)
    if job.size is not None:
        if total is not None and total != job.size:
            raise _NotTheFile(
                f"size mismatch: expected {job.size} bytes, got {total} from the server"
            )
        total = job.size
    end = start + length if length is not None else total  # where this body should end
    if total is not None and (end is None or end > total):
        end = total  # never write past the end of the file

    def read() -> bytes:
        # read1: at most one system call, so that a trickle cannot hold a read for long
        want = job.chunk_size if end is None else min(job.chunk_size, end - received)
        return response.read1(want) if want > 0 else b""

    received = start
    block = read()
    if start == 0 and not job.html_expected and _looks_like_html(block):
        raise _NotTheFile(f"answered HTTP {status} with an HTML page, not the file")
    window_start, window_bytes = time.monotonic(), 0
    with (
        open(out, "ab" if start else "wb") as stream,
        tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=job.dest.name,
            file=sys.stderr,
            disable=not job.progress,
            mininterval=1.0,
        ) as bar,
    ):
        try:
            while block:
                stream.write(block)
                received += len(block)
                bar.update(len(block))
                window_bytes += len(block)
                now = time.monotonic()
                if now - window_start >= job.min_rate_seconds:
                    if window_bytes < job.min_rate_bytes:
                        raise _Stalled(
                            f"incomplete, resumable: stalled at {received} bytes, "
                            f"{window_bytes} bytes in {now - window_start:.1f} s (the minimum is "
                            f"{job.min_rate_bytes} bytes in {job.min_rate_seconds:g} s)"
                        )
                    window_start, window_bytes = now, 0
                block = read()
        finally:
            stream.flush()
            os.fsync(stream.fileno())
    # http.client's read returns b"" when the peer closes early instead of raising
    if end is not None and received < end:
        raise _Incomplete(
            f"incomplete, resumable: the connection closed after {received} of {end} bytes"
        )
    if total is not None and received < total:  # the server chose to send a shorter range
        raise _Incomplete(f"incomplete, resumable: the server sent {received} of {total} bytes")
    return out


def _describe(error: BaseException) -> str:
    """A one-line reason for the error report: HTTP status, or the connection error."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, _Incomplete):
        return str(error)
    if isinstance(error, urllib.error.URLError):
        return f"connection error: {error.reason}"
    return f"connection error: {type(error).__name__}: {error}"


@dataclass
class _Report:
    """Why each mirror failed (the latest reason of each kind) and how often it was asked."""

    urls: list[str]
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)

    def note(self, url: str, kind: str, reason: str) -> None:
        reasons = self.reasons.setdefault(url, {})
        reasons.pop(kind, None)  # the latest reason of a kind goes last
        reasons[kind] = reason

    def lines(self) -> list[str]:
        lines = []
        for url in self.urls:
            reasons = "; ".join(self.reasons.get(url, {}).values()) or "not tried"
            count = self.attempts.get(url, 0)
            lines.append(f"  {url}: {reasons} (after {count} attempt{'' if count == 1 else 's'})")
        return lines


def _try_mirror(
    url: str, job: _Job, report: _Report, *, restart: bool, attempts: int, retry_wait: float
) -> tuple[str, bool]:
    """Ask one mirror until it delivers the file, stops gaining bytes, or cannot help.

    Returns ``(outcome, progressed)``: ``outcome`` is ``"done"`` (``dest`` holds the verified
    file), ``"skip"`` (the mirror cannot help in this run: 404, another file, a bad checksum),
    ``"cannot_resume"`` (it does not continue the partial file) or ``"failed"`` (ask again in
    a later pass); ``progressed`` says whether the partial file grew. An attempt that gains
    bytes (without stalling) is followed by another at once; ``attempts`` that gain nothing in
    a row give up. A restart returns after the first attempt that overtakes the partial file,
    so that every mirror can resume from there.
    """
    failures = 0
    progressed = False
    while True:
        before = _size(job.part)
        report.attempts[url] = report.attempts.get(url, 0) + 1
        try:
            completed = _transfer(url, job, restart=restart)
        except urllib.error.HTTPError as error:
            error.close()
            report.note(url, "http", _describe(error))
            log.warning("%s: %s", url, _describe(error))
            permanent = 400 <= error.code < 500 and error.code not in RETRYABLE_CLIENT_ERRORS
            return ("skip" if permanent else "failed"), progressed
        except _NotTheFile as error:
            report.note(url, "not the file", str(error))
            log.warning("%s: %s; not used for %s", url, error, job.dest)
            return "skip", progressed
        except _CannotResume as error:
            reason = f"cannot resume {job.part}: {error}"
            report.note(url, "cannot resume", reason)
            log.warning("%s: %s", url, reason)
            return "cannot_resume", progressed
        except (OSError, HTTPException) as error:
            reason = _describe(error)
            report.note(url, type(error).__name__, reason)
            kept = _size(job.part)
            log.warning("%s: %s; %d bytes kept in %s", url, reason, kept, job.part)
            if kept > before and not isinstance(error, _Stalled):
                progressed, failures = True, 0
                if restart:
                    return "failed", True
                continue
            failures += 1
            if failures >= attempts:
                return "failed", progressed
            time.sleep(retry_wait * failures)
            continue
        # a partial file from before this request that was already whole (HTTP 416)
        stale = completed == job.part and 0 < before == _size(completed)
        problem = _finish(job, completed)
        if problem is None:
            return "done", True
        report.note(url, "integrity", problem)
        log.warning("%s: %s", url, problem)
        if stale:  # the bad bytes were not this mirror's: ask it for the file afresh
            continue
        return "skip", False


def _finish(job: _Job, completed: Path) -> str | None:
    """Verify a whole download and rename it to ``dest``; else delete it and say why."""
    try:
        verify_file(completed, job.checksum, job.size)
    except IntegrityError as error:
        size = _size(completed)
        completed.unlink()
        return f"{error}; deleted the {size} bytes of {completed}"
    os.replace(completed, job.dest)
    if completed != job.part:
        job.part.unlink(missing_ok=True)
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
    min_rate_bytes: int = MIN_RATE_BYTES,
    min_rate_seconds: float = MIN_RATE_SECONDS,
    progress: bool = True,
) -> Path:
    """Download ``dest`` from ``urls`` (mirrors of one file), resuming across them until verified.

    Args:
        urls: http(s) mirrors of one file, tried in order.
        dest: final path; a verified file is renamed there from ``<dest>.part``.
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"``.
        size: expected size in bytes: mirrors announcing another size are skipped, and a body
            that ends before it is incomplete (resumed), not a checksum error (optional).
        chunk_size: bytes read and written at a time.
        timeout: seconds to connect, and seconds without any data after which a connection
            counts as dropped.
        attempts_per_url: attempts in a row on one mirror that gain no bytes before the next
            mirror is asked; an attempt that gains bytes is followed by another at once.
        retry_wait: seconds before the second attempt; the wait grows linearly with attempts.
        min_rate_bytes, min_rate_seconds: a transfer that receives fewer than
            ``min_rate_bytes`` in ``min_rate_seconds`` is abandoned as stalled (its bytes are
            kept) and counts as an attempt that gained nothing.
        progress: show a progress bar on stderr.

    Passes over the mirrors are repeated while one of them makes the partial file grow; a pass
    in which none does ends the run. Returns ``dest``. Raises ``DownloadError`` naming ``dest``,
    every URL and why it failed, the expected checksum and the bytes kept for the next run. If
    ``dest`` already exists it is verified and returned, never replaced.
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
    if min_rate_seconds <= 0:
        raise ValueError(f"min_rate_seconds = {min_rate_seconds} must be positive")
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
    job = _Job(
        dest, expected, size, chunk_size, timeout, min_rate_bytes, min_rate_seconds, progress
    )
    part = job.part
    _keep_longer(job)  # a restart from the first byte that a killed job left behind
    if size is not None and _size(part) > size:
        log.warning("%s has more than the %d bytes expected; deleting it", part, size)
        part.unlink()
    report = _Report(urls)
    retry = {"attempts": attempts_per_url, "retry_wait": retry_wait}
    active = list(urls)
    while active:
        progressed = False
        cannot_resume = []
        for url in list(active):
            log.info("downloading %s -> %s (%d bytes so far)", url, dest, _size(part))
            outcome, grew = _try_mirror(url, job, report, restart=False, **retry)
            if outcome == "done":
                log.info("%s verified (%s)", dest, expected)
                return dest
            progressed |= grew
            if outcome == "skip":
                active.remove(url)
            elif outcome == "cannot_resume":
                cannot_resume.append(url)
        if not progressed and _size(part):
            # no mirror continues the partial file: download from the first byte from one that
            # serves it whole, keeping the partial file until the new download overtakes it
            for url in cannot_resume:
                log.info("downloading %s -> %s from the first byte", url, dest)
                outcome, grew = _try_mirror(url, job, report, restart=True, **retry)
                if outcome == "done":
                    log.info("%s verified (%s)", dest, expected)
                    return dest
                if outcome == "skip":
                    active.remove(url)
                if grew:
                    progressed = True
                    break
        if not progressed:
            break
    if part.exists() and not _size(part):
        part.unlink()
    kept = (
        f"\n{_size(part)} bytes are kept in {part}; running again resumes there."
        if part.exists()
        else ""
    )
    raise DownloadError(
        f"could not download {dest} (expected {expected}) from any of {len(urls)} URL(s):\n"
        + "\n".join(report.lines())
        + kept
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
