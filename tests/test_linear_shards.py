"""AdamW over several processes gives one process's numbers, and names a failing shard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from linear_helpers import small_instance
from threadpoolctl import threadpool_limits

from lambdabeta import linear as L
from lambdabeta.linear.shards import run_adamw_in_processes, shard_slices

pytestmark = pytest.mark.trains

SETTINGS = {
    "lr": 1e-3,
    "weight_decay": 0.01,
    "grad_clip": (2.0, 3.0),
    "report": "best",
    "parameterization": L.ProjectedCholesky(5.0e-5),
}


@pytest.mark.parametrize(("entries", "workers"), [(1, 4), (16, 4), (40, 2), (40, 3), (100, 8)])
def test_shards_are_whole_blocks_covering_every_entry_once(entries, workers):
    shards = shard_slices(entries, workers)
    assert len(shards) <= workers
    assert [i for part in shards for i in range(entries)[part]] == list(range(entries))
    assert all(part.start % L.GRADIENT_BLOCK == 0 for part in shards)


def one_and_three_processes(instance, grid, **settings):
    """The result of one process (on one core, as each shard's process) and of three shards."""
    with threadpool_limits(1, user_api="blas"):
        one = L.run_adamw(instance, grid.init, grid.beta, grid.lam, **settings)
    split = run_adamw_in_processes(instance, grid.init, grid.beta, grid.lam, workers=3, **settings)
    return one, split


def test_adamw_over_processes_equals_one_process_bit_for_bit():
    """Three shards of 40 entries (blocks of 16): every field identical."""
    instance = small_instance()
    grid = L.grid_entries(
        instance, 4, [1.0, 16.0], [0.0, 2.0], restarts=10, seed=3, init="authors", method="adamw"
    )
    one, split = one_and_three_processes(instance, grid, steps=60, **SETTINGS)
    for field in ("a", "b", "sigma_z", "sigma_w"):
        assert torch.equal(getattr(split.params, field), getattr(one.params, field)), field
    for field in ("iterations", "converged", "reported_iteration"):
        assert torch.equal(getattr(split, field), getattr(one, field)), field


def test_entries_stop_in_their_shard_as_in_one_process():
    """With the loss-change rule some entries stop early, at the same step as in one process."""
    instance = L.random_instance(n=10, s=2, noise_var=0.05, factor_var_range=(0.1, 1.0), seed=11)
    grid = L.grid_entries(instance, 3, [1.0, 4.0], [0.0, 4.0], restarts=10, seed=12)
    settings = {"lr": 1e-2, "weight_decay": 0.0, "grad_clip": None, "tol": 1e-4, "check_every": 100}
    one, split = one_and_three_processes(instance, grid, steps=1000, **settings)
    assert 0 < one.converged.sum() < len(grid.beta)
    for field in ("iterations", "converged", "reported_iteration"):
        assert torch.equal(getattr(split, field), getattr(one, field)), field
    for field in ("a", "b", "sigma_z", "sigma_w"):
        torch.testing.assert_close(
            getattr(split.params, field), getattr(one.params, field), rtol=1e-12, atol=1e-14
        )


def test_a_failing_shard_is_named_with_its_error_at_once():
    """A start whose Σ_Z has no Cholesky factor fails in its shard's process; the error comes
    while the other shard still has most of its steps to go (it is then stopped)."""
    instance = small_instance()
    grid = L.grid_entries(
        instance, 4, [1.0], [0.0], restarts=20, seed=3, init="authors", method="adamw"
    )
    grid.init.sigma_z[19] = -torch.eye(grid.init.sigma_z.shape[-1], dtype=torch.float64)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"(?s)AdamW shard 1 of 2 failed.*positive-definite"):
        run_adamw_in_processes(
            instance, grid.init, grid.beta, grid.lam, workers=2, steps=50_000, **SETTINGS
        )
    assert time.monotonic() - started < 30.0


def processes_started_by(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_shards_stop_when_the_process_that_started_them_is_killed(tmp_path):
    """A job killed outright (SIGKILL: no clean-up runs) leaves no shard stepping on."""
    parent_script = tmp_path / "parent.py"
    parent_script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from linear_helpers import small_instance
            from lambdabeta import linear as L
            from lambdabeta.linear.shards import run_adamw_in_processes
            instance = small_instance()
            grid = L.grid_entries(instance, 4, [1.0], [0.0], restarts=40, seed=3,
                                  init="authors", method="adamw")
            run_adamw_in_processes(instance, grid.init, grid.beta, grid.lam, workers=2,
                                   steps=10**8, lr=1e-3, weight_decay=0.0, grad_clip=None)
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(parent_script)])
    try:
        deadline = time.monotonic() + 120
        while len(shards := processes_started_by(parent.pid)) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "no shards started"
            time.sleep(0.2)
        time.sleep(1.0)  # the shards are past their start-up
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in shards) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(running(pid) for pid in shards)
