"""The mirror loop: ``fetch`` asks the mirrors of one file in turn, resuming the partial file
across them, until one delivers it whole and it verifies; a failure names every mirror and why.

How a mirror is asked again, passed over or used for a download from the first byte is
described in ``lambdabeta.download``; one request is ``transfer.transfer``.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

from .checksums import Checksum, IntegrityError, verify_file
from .transfer import (
    MIN_RATE_BYTES,
    MIN_RATE_SECONDS,
    CannotResume,
    DownloadJob,
    IncompleteTransfer,
    NotTheFile,
    StalledTransfer,
    file_size,
    keep_longer,
    transfer,
)

log = logging.getLogger(__name__)

# client errors worth asking again in a later pass; any other 4xx means "not on this mirror"
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})


class DownloadError(RuntimeError):
    """No mirror delivered a verified file."""


def _describe(error: BaseException) -> str:
    """A one-line reason for the error report: HTTP status, or the connection error."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, IncompleteTransfer):
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
    url: str, job: DownloadJob, report: _Report, *, restart: bool, attempts: int, retry_wait: float
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
        before = file_size(job.part)
        report.attempts[url] = report.attempts.get(url, 0) + 1
        try:
            completed = transfer(url, job, restart=restart)
        except urllib.error.HTTPError as error:
            error.close()
            report.note(url, "http", _describe(error))
            log.warning("%s: %s", url, _describe(error))
            permanent = 400 <= error.code < 500 and error.code not in RETRYABLE_CLIENT_ERRORS
            return ("skip" if permanent else "failed"), progressed
        except NotTheFile as error:
            report.note(url, "not the file", str(error))
            log.warning("%s: %s; not used for %s", url, error, job.dest)
            return "skip", progressed
        except CannotResume as error:
            reason = f"cannot resume {job.part}: {error}"
            report.note(url, "cannot resume", reason)
            log.warning("%s: %s", url, reason)
            return "cannot_resume", progressed
        except (OSError, HTTPException) as error:
            reason = _describe(error)
            report.note(url, type(error).__name__, reason)
            kept = file_size(job.part)
            log.warning("%s: %s; %d bytes kept in %s", url, reason, kept, job.part)
            if kept > before and not isinstance(error, StalledTransfer):
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
        stale = completed == job.part and 0 < before == file_size(completed)
        problem = _finish(job, completed)
        if problem is None:
            return "done", True
        report.note(url, "integrity", problem)
        log.warning("%s: %s", url, problem)
        if stale:  # the bad bytes were not this mirror's: ask it for the file afresh
            continue
        return "skip", False


def _finish(job: DownloadJob, completed: Path) -> str | None:
    """Verify a whole download and rename it to ``dest``; else delete it and say why."""
    try:
        verify_file(completed, job.checksum, job.size)
    except IntegrityError as error:
        size = file_size(completed)
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
    job = DownloadJob(
        dest, expected, size, chunk_size, timeout, min_rate_bytes, min_rate_seconds, progress
    )
    part = job.part
    keep_longer(job)  # a restart from the first byte that a killed job left behind
    if size is not None and file_size(part) > size:
        log.warning("%s has more than the %d bytes expected; deleting it", part, size)
        part.unlink()
    report = _Report(urls)
    retry = {"attempts": attempts_per_url, "retry_wait": retry_wait}
    active = list(urls)
    while active:
        progressed = False
        cannot_resume = []
        for url in list(active):
            log.info("downloading %s -> %s (%d bytes so far)", url, dest, file_size(part))
            outcome, grew = _try_mirror(url, job, report, restart=False, **retry)
            if outcome == "done":
                log.info("%s verified (%s)", dest, expected)
                return dest
            progressed |= grew
            if outcome == "skip":
                active.remove(url)
            elif outcome == "cannot_resume":
                cannot_resume.append(url)
        if not progressed and file_size(part):
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
    if part.exists() and not file_size(part):
        part.unlink()
    kept = (
        f"\n{file_size(part)} bytes are kept in {part}; running again resumes there."
        if part.exists()
        else ""
    )
    raise DownloadError(
        f"could not download {dest} (expected {expected}) from any of {len(urls)} URL(s):\n"
        + "\n".join(report.lines())
        + kept
    )
