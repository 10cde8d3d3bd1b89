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

Modules, one concern each:

- ``checksums``  the expected checksum, a file's digest, and the size and checksum verification
- ``transfer``   one HTTP request: resuming the partial file, the checks of the answer, stalls
- ``mirrors``    the mirror loop ``fetch`` and the report of why each mirror failed
- ``sources``    one ``datasets:`` entry: ``fetch_source``, ``use_local_file``,
                 ``local_path_hint``

The package re-exports their public names.
"""

from .checksums import Checksum, IntegrityError, file_checksum, verify_file
from .mirrors import DownloadError, fetch
from .sources import fetch_source, local_path_hint, use_local_file

__all__ = [
    "Checksum",
    "DownloadError",
    "IntegrityError",
    "fetch",
    "fetch_source",
    "file_checksum",
    "local_path_hint",
    "use_local_file",
    "verify_file",
]
