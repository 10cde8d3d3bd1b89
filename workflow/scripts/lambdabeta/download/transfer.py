"""One HTTP request of a download: continue the partial file ``<dest>.part`` with a ``Range``
request (or download the file from its first byte into ``<dest>.part.restart``), checking that
the answer is the continuation of the file and abandoning a stalled transfer.

Only the standard library speaks HTTP. Bytes received are always kept; the mirror loop
(``download.mirrors``) decides what to ask next from the exceptions raised here.
"""

from __future__ import annotations

import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .checksums import Checksum

PART_SUFFIX = ".part"
# a download from the first byte, made while a partial file exists, until it is the longer one
RESTART_SUFFIX = ".restart"
# a transfer that receives fewer than MIN_RATE_BYTES in MIN_RATE_SECONDS counts as stalled
MIN_RATE_BYTES = 64 * 1024
MIN_RATE_SECONDS = 60.0
# what an error or login page is served as; a dataset file never is
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class IncompleteTransfer(ConnectionError):
    """The body ended, or was abandoned, before the whole file arrived; what came is kept."""


class StalledTransfer(IncompleteTransfer):
    """Fewer than the minimum number of bytes arrived within the rate window."""


class CannotResume(Exception):
    """The mirror answered, but not with the continuation of the partial file."""


class NotTheFile(Exception):
    """The mirror serves something other than the file: an HTML page, a file of another size."""


@dataclass
class DownloadJob:
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


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes; 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def keep_longer(job: DownloadJob) -> None:
    """Keep the longer of the partial file and a from-scratch download as the partial file."""
    if not job.restart.exists():
        return
    if file_size(job.restart) > file_size(job.part):
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


def transfer(url: str, job: DownloadJob, *, restart: bool) -> Path:
    """One request: continue the partial file from ``url`` or, with ``restart``, download the
    file from its first byte into ``<part>.restart``; return the file that now holds it whole.

    Raises ``urllib.error.HTTPError`` (an error status), ``NotTheFile`` or ``CannotResume``
    before writing anything; ``IncompleteTransfer``, ``OSError`` or
    ``http.client.HTTPException`` when the body ends early or stalls. Bytes received stay in
    the partial file; those of a restart replace it only where they are more (``keep_longer``).
    """
    offset = 0 if restart else file_size(job.part)
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
            raise NotTheFile(
                f"size mismatch: expected {job.size} bytes, the server has {total}"
            ) from None
        if total == offset:
            return job.part
        raise CannotResume(
            f"HTTP 416 to a request for bytes from {offset} (the file has "
            f"{total if total is not None else 'fewer'} bytes)"
        ) from None
    out = job.restart if restart else job.part
    try:
        with response:
            return _receive(response, job, out, offset)
    except BaseException:
        if restart:
            keep_longer(job)
        raise


def _receive(response: Any, job: DownloadJob, out: Path, offset: int) -> Path:
    """Check that ``response`` continues ``out`` at ``offset``, then append its body there."""
    status = response.status
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type in HTML_TYPES and not job.html_expected:
        raise NotTheFile(f"answered HTTP {status} with an HTML page ({content_type}), not the file")
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
        raise CannotResume(problem)
    if job.size is not None:
        if total is not None and total != job.size:
            raise NotTheFile(
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
        raise NotTheFile(f"answered HTTP {status} with an HTML page, not the file")
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
                        raise StalledTransfer(
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
        raise IncompleteTransfer(
            f"incomplete, resumable: the connection closed after {received} of {end} bytes"
        )
    if total is not None and received < total:  # the server chose to send a shorter range
        raise IncompleteTransfer(
            f"incomplete, resumable: the server sent {received} of {total} bytes"
        )
    return out
