"""File helpers shared by every stage: atomic writes, JSON, corrupt files, and script logging."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a failure (or a kill) leaves whatever was at
    ``path`` before untouched. The temporary name keeps ``suffix`` so that libraries which pick a
    format from the extension (``np.save``, ``savefig``) still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


CORRUPT_SUFFIX = ".corrupt"
"""What a corrupt file's name gets when it is moved aside (``move_aside``)."""


class CorruptFileError(ValueError):
    """A file the pipeline made earlier is damaged or not what its name says.

    Raised by the readers of prepared datasets, model files, checkpoints and training curves,
    after the file has been moved aside (``corrupt_file``), so that Snakemake sees the output
    missing and the next run recomputes it. ``path`` is the file, ``moved_to`` where it went
    (None when it could not be moved or another job moved it first).
    """

    def __init__(self, message: str, path: Path, moved_to: Path | None):
        super().__init__(message)
        self.path = path
        self.moved_to = moved_to


def move_aside(path: str | os.PathLike) -> Path | None:
    """Rename ``path`` to ``<name>.corrupt`` (``.corrupt2``, ``.corrupt3``… when taken) and return
    the new path; None when ``path`` is already gone (another job moved it first).

    Nothing is deleted or overwritten: the file stays available for inspection.
    """
    path = Path(path)
    for attempt in itertools.count(1):
        target = path.with_name(path.name + CORRUPT_SUFFIX + (str(attempt) if attempt > 1 else ""))
        if target.exists() or target.is_symlink():
            continue
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        return target
    raise AssertionError("unreachable")


def rerun_command(target: str | os.PathLike) -> str:
    """The command that recomputes the output ``target``, relative to the working directory
    (Snakemake's) when it lies below it."""
    target = Path(target)
    with contextlib.suppress(ValueError):
        target = Path(os.path.abspath(target)).relative_to(Path.cwd())
    return f"`snakemake --cores all {target}`"


def corrupt_file(
    path: str | os.PathLike,
    problem: str,
    *,
    recompute: str | None = None,
    action: str = "recomputes it",
) -> CorruptFileError:
    """Move the corrupt file ``path`` aside and return the error to raise.

    The message names the file, says what is wrong (``problem``), where the file went and what
    recomputes it: ``recompute`` (a phrase), by default "the next ``snakemake`` run ``action``",
    because the file is a workflow output and is now missing, "or now: ``rerun_command(path)``".
    """
    path = Path(path)
    if recompute is None:
        recompute = f"the next `snakemake` run {action} (or now: {rerun_command(path)})"
    try:
        moved = move_aside(path)
    except OSError as error:
        # a read-only or shared directory: say so, and leave the file to the user
        message = (
            f"{path}: {problem}. It could not be moved aside ({error}); once it is renamed or "
            f"deleted, {recompute}."
        )
        return CorruptFileError(message, path, None)
    if moved is None:
        where = "Another job has already moved it aside"
    else:
        where = f"Moved it to {moved} (delete that once you no longer need it)"
    return CorruptFileError(f"{path}: {problem}. {where}; {recompute}.", path, moved)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, Paths: what our records contain besides plain Python types
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_job_log: str | None = None


def job_log() -> str | None:
    """The log file ``log_to_file`` sent this process's output to (the job's ``log:``, as the
    rule names it), or None. Records written by a job name it, so that its benchmark record
    (``lambdabeta.plan.costs``) can be found from them."""
    return _job_log


def log_to_file(log_path: str | os.PathLike | None) -> logging.Logger:
    """Send this process's stdout, stderr and the ``lambdabeta`` logger to ``log_path``.

    Snakemake's ``log:`` files are not redirected for ``script:`` rules; every entry point calls
    this first so that progress bars, warnings and tracebacks land in the rule's log.
    """
    global _job_log
    logger = logging.getLogger("lambdabeta")
    logger.setLevel(logging.INFO)
    _job_log = None if log_path is None else os.fspath(log_path)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1)  # noqa: SIM115 (lives as long as the process)
        sys.stdout = sys.stderr = stream
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.handlers[:] = [handler]
    return logger


def read_npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype of the .npy file open in ``stream``, left at its data."""
    version = np.lib.format.read_magic(stream)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, fortran_order, dtype = read_header(stream)
    return tuple(int(n) for n in shape), bool(fortran_order), np.dtype(dtype)
