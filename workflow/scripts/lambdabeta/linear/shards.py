"""Batched AdamW over several CPU processes, one core each.

The entries of a batched AdamW run are independent (Adam is elementwise and every gradient is
per entry), so they can be split into contiguous shards, each stepped by its own process. The
shards are made of whole blocks of ``GRADIENT_BLOCK`` entries, so that every block holds the
entries it holds in a single process: the result is bit for bit that of one process (tested),
and the number of processes is logistics (a job's threads), never science.

Each shard runs in a fresh interpreter (``python -m lambdabeta.linear.shards TASK RESULT PID``),
not in a ``multiprocessing`` child: a spawned child re-runs the calling script's top level (a
Snakemake script has no ``__main__`` guard), and forking a process whose BLAS or OpenMP threads
have started is unsafe. A shard whose parent PID is gone stops by itself.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from .adamw import GRADIENT_BLOCK, AdamWResult, run_adamw
from .instance import Instance
from .lapack import use_threads
from .objective import Params

# lines of a failed shard's standard error quoted in the error
_ERROR_TAIL_LINES = 30
# how often a shard's process checks that the process that started it is still there, and
# how often that process checks on its shards
_PARENT_CHECK_SECONDS = 5.0
_POLL_SECONDS = 0.5


def shard_slices(entries: int, workers: int) -> list[slice]:
    """At most ``workers`` contiguous slices of ``range(entries)``, each a whole number of
    ``GRADIENT_BLOCK`` blocks (the last may be shorter), as even as that allows."""
    blocks = -(-entries // GRADIENT_BLOCK)
    size = -(-blocks // max(1, workers)) * GRADIENT_BLOCK
    return [slice(start, min(start + size, entries)) for start in range(0, entries, size)]


def run_adamw_in_processes(
    instance: Instance,
    init: Params,
    beta: torch.Tensor,
    lam: torch.Tensor,
    workers: int,
    **settings,
) -> AdamWResult:
    """``run_adamw(instance, init, beta, lam, **settings)`` on the CPU, its entries split over
    at most ``workers`` processes (``shard_slices``); one process runs it here."""
    shards = shard_slices(len(beta), workers)
    if len(shards) <= 1:
        return run_adamw(instance, init, beta, lam, **settings)
    with tempfile.TemporaryDirectory(prefix="adamw-shards-") as folder:
        tasks = []
        for index, part in enumerate(shards):
            task = _ShardFiles(Path(folder), index)
            payload = {"instance": instance, "init": init.select(part), "settings": settings}
            torch.save(payload | {"beta": beta[part], "lam": lam[part]}, task.task)
            tasks.append(task)
        return _concatenate(_run_all(tasks))


class _ShardFiles:
    """The files one shard's process reads and writes."""

    def __init__(self, folder: Path, index: int):
        self.index = index
        self.task = folder / f"task{index}.pt"
        self.result = folder / f"result{index}.pt"
        self.errors = folder / f"stderr{index}.txt"


def _run_all(tasks: list[_ShardFiles]) -> list[AdamWResult]:
    """Start one process per shard and wait for all; the first to fail stops the others and is
    raised at once, with the end of its standard error."""
    processes = []
    try:
        for task in tasks:
            with task.errors.open("w") as errors:
                files = [str(task.task), str(task.result)]
                command = [sys.executable, "-m", __name__, *files, str(os.getpid())]
                processes.append(
                    subprocess.Popen(command, env=_worker_environment(), stderr=errors)
                )
        running = dict(zip(processes, tasks, strict=True))
        while running:
            for process, task in list(running.items()):
                if process.poll() is None:
                    continue
                if process.returncode != 0:
                    tail = task.errors.read_text().splitlines()[-_ERROR_TAIL_LINES:]
                    raise RuntimeError(
                        f"AdamW shard {task.index} of {len(tasks)} failed (exit status "
                        f"{process.returncode}):\n" + "\n".join(tail)
                    )
                del running[process]
            time.sleep(_POLL_SECONDS if running else 0.0)
        return [torch.load(task.result, weights_only=False) for task in tasks]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _worker_environment() -> dict[str, str]:
    """The environment of a shard's process: this package importable, one thread per process."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return os.environ | threads | {"PYTHONPATH": os.pathsep.join(paths)}


def _concatenate(results: list[AdamWResult]) -> AdamWResult:
    """The shards' results as one, in entry order."""

    def joined(values) -> torch.Tensor:
        return torch.cat(list(values), dim=0)

    params = Params(
        *(joined(getattr(r.params, f.name) for r in results) for f in dataclasses.fields(Params))
    )
    return AdamWResult(
        params,
        *(joined(getattr(r, f.name) for r in results) for f in dataclasses.fields(AdamWResult)[1:]),
    )


def _exit_with_parent(parent: int, interval: float = _PARENT_CHECK_SECONDS) -> None:
    """Stop this process once its parent ``parent`` is gone (killed before it could stop its
    shards), so that no orphaned shard goes on stepping for hours."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_shard(task: str, result: str, parent: str) -> None:
    _exit_with_parent(int(parent))
    use_threads(1)
    payload = torch.load(task, weights_only=False)
    arguments = (payload["instance"], payload["init"], payload["beta"], payload["lam"])
    torch.save(run_adamw(*arguments, **payload["settings"]), result)


if __name__ == "__main__":
    _run_shard(*sys.argv[1:])
