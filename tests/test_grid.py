"""The experiment grid: run identity ↔ folder, the runs a config asks for, figure runs."""

import re
from types import SimpleNamespace

import pytest

from lambdabeta import grid
from lambdabeta.grid import Run

DEEP = {"datasets": ["toy", "mpi3d_real"], "betas": [1, 8, 64], "lambdas": [0, 0.5, 16],
        "seeds": [0, 3]}  # fmt: skip


@pytest.mark.parametrize(
    ("run", "name"),
    [
        (Run("toy", 8, 0), "toy/beta8/seed0"),
        (Run("toy", 8.0, 3, 4.0), "toy/beta8/seed3/lambda4"),
        (Run("mpi3d_real", 0.5, 12, 1e-5), "mpi3d_real/beta0.5/seed12/lambda1e-05"),
        (Run("toy", 256, 0, 0), "toy/beta256/seed0/lambda0"),
    ],
)
def test_run_name_round_trips(run, name):
    assert run.name == name
    assert run.path == f"results/runs/{name}"
    assert Run.from_name(name) == run
    assert re.fullmatch(grid.RUN_NAME, name)


def test_phase_and_record():
    stabilized, finetuned = Run("toy", 4, 1), Run("toy", 4, 1, 16)
    assert (stabilized.phase, finetuned.phase) == ("stabilize", "finetune")
    assert finetuned.stabilized == stabilized
    assert stabilized.record() == {"dataset": "toy", "phase": "stabilize", "beta": 4.0,
                                   "lambda": 0.0, "seed": 1}  # fmt: skip
    assert finetuned.record()["lambda"] == 16.0
    assert tuple(finetuned.record()) == grid.RUN_KEYS


@pytest.mark.parametrize(
    "name", ["toy/beta8", "toy/beta8/seedx", "to-y/beta8/seed0", "toy/b8/seed0"]
)
def test_malformed_run_names_are_rejected(name):
    with pytest.raises(ValueError, match="not a run folder"):
        Run.from_name(name)


def test_from_wildcards_matches_the_snakemake_patterns():
    wildcards = SimpleNamespace(dataset="toy", beta="8", seed="2", lam="0.5")
    assert Run.from_wildcards(wildcards, "finetune") == Run("toy", 8, 2, 0.5)
    assert Run.from_wildcards(wildcards, "stabilize") == Run("toy", 8, 2)
    filled = grid.FINETUNED_DIR.format(dataset="toy", beta="8", seed="2", lam="0.5")
    assert filled == Run("toy", 8, 2, 0.5).path
    assert grid.RUN_DIR.format(run="toy/beta8/seed2") == Run("toy", 8, 2).path
    with pytest.raises(ValueError, match="phase"):
        Run.from_wildcards(wildcards, "pretrain")


def test_runs_cover_the_grid_once_in_order():
    stabilized = grid.runs(DEEP, "stabilize")
    finetuned = grid.runs(DEEP, "finetune")
    assert len(stabilized) == 2 * 3 * 2 and len(finetuned) == 2 * 3 * 2 * 3
    assert len({run.path for run in stabilized + finetuned}) == len(stabilized) + len(finetuned)
    assert stabilized[0] == Run("toy", 1, 0) and stabilized[1] == Run("toy", 1, 3)
    assert [run.lam for run in finetuned[:3]] == [0.0, 0.5, 16.0]
    assert {run.stabilized for run in finetuned} == set(stabilized)


def test_nearest_setting_exact_and_log_scale():
    available = [(b, lam) for b in (1, 4, 8, 16) for lam in (0, 8, 32)]
    assert grid.nearest_setting((8, 32), available) == (8, 32)
    assert grid.nearest_setting((12, 30), available) == (16, 32)  # log2: 12 is nearer 16
    assert grid.nearest_setting((256, 0), available) == (16, 0)
    assert grid.nearest_setting((0.5, 100), available) == (1, 32)


def test_nearest_setting_beta_first_then_lambda_and_ties():
    assert grid.nearest_setting((4, 32), [(2, 0), (16, 32)]) == (2, 0)
    assert grid.nearest_setting((2, 2), [(4, 0), (1, 4), (1, 0)]) == (1, 0)  # ties: smaller
    with pytest.raises(ValueError, match="positive"):
        grid.nearest_setting((0, 0), [(1, 0)])
    with pytest.raises(ValueError, match="no settings"):
        grid.nearest_setting((1, 0), [])


def test_figure_runs_pick_the_nearest_grid_point_per_dataset():
    chosen = grid.figure_runs(DEEP, [(8, 32), (256, 0)], seed=3)
    assert [figure.run for figure in chosen] == [
        Run("toy", 8, 3, 16), Run("toy", 64, 3, 0),
        Run("mpi3d_real", 8, 3, 16), Run("mpi3d_real", 64, 3, 0),
    ]  # fmt: skip
    record = chosen[0].record()
    assert record["requested_beta"] == 8 and record["requested_lambda"] == 32
    assert record["run"] == "results/runs/toy/beta8/seed3/lambda16"
    with pytest.raises(ValueError, match="seed 5"):
        grid.figure_runs(DEEP, [(8, 32)], seed=5)


def test_format_number():
    assert [grid.format_number(v) for v in (8, 8.0, 0.5, 1e-5, 100000.0)] == [
        "8", "8", "0.5", "1e-05", "100000",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="finite"):
        grid.format_number(float("inf"))
