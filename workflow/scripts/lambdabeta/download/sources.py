"""The upstream file of one ``datasets:`` entry of the config: a copy the user already has
(``local_path``), verified and linked, or else a download from its mirrors (``fetch``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..io import atomic_path
from .checksums import Checksum, IntegrityError, verify_file
from .mirrors import DownloadError, fetch

log = logging.getLogger(__name__)


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
