"""Plan-time logic (lambdabeta.plan), tested without running Snakemake: the training rules and
packs, finished runs, GPU discovery, the claims rule's inputs, the checks and the targets."""

from __future__ import annotations

import json
import os
import subprocess
from types import SimpleNamespace

import pytest

from lambdabeta import grid
from lambdabeta.claims.tables import TABLES
from lambdabeta.plan import claims, datasets, resources, targets, training
from lambdabeta.settings import DeepSettings


def deep_section(pack_size=1, **grid_values):
    return {
        "datasets": ["toy"],
        "betas": [1, 8],
        "lambdas": [0, 4],
        "seeds": [0, 1],
        "latent_dim": 3,
        "train": {
            "batch_size": 4, "lr": 1e-3, "adam_betas": [0.9, 0.999], "adam_eps": 1e-8,
            "log_every": 2, "precision": "fp32", "tf32": True, "stabilize_steps": 4,
            "finetune_steps": 2, "checkpoint_every": 2, "device": "cpu", "compile": False,
            "channels_last": True, "cuda_graphs": False, "pack_size": pack_size,
        },
        "evaluate": {"batch_size": 10},
    } | grid_values  # fmt: skip


def config(**changes):
    values = {
        "linear": {"dims": [{"n": 12, "m": 3, "s": 2}, {"n": 8, "m": 3, "s": 2}]},
        "datasets": {"toy": {"format": "procedural"}},
        "deep": deep_section(),
        "figures": {"seed": 0, "mi_heatmaps": [[1, 0], [8, 4]], "reconstructions": [[1, 0]]},
        "claims": {"min_seeds": 2},
        "selection": {"rho": 1e-3},
    }
    return values | changes


# ---- training rules ----------------------------------------------------------------------


def test_without_packs_there_are_the_two_one_run_rules():
    rules = training.training_rules(DeepSettings(deep_section()), lambda run: False)
    assert [(r.name, r.packed) for r in rules] == [("stabilize", False), ("finetune", False)]
    stabilize, finetune = rules
    assert stabilize.images == "resources/datasets/{dataset}/images.npy"
    assert stabilize.init is None and finetune.init == f"{grid.STABILIZED_DIR}/model.pt"
    wildcards = SimpleNamespace(dataset="toy", beta="8", seed="1", lam="4")
    (member,) = finetune.members(wildcards, None)
    assert member["run"] == "toy/beta8/seed1/lambda4"
    assert member["progress_dir"] == "results/runs/toy/beta8/seed1/lambda4/.progress-finetune"
    assert member["init"] == "results/runs/toy/beta8/seed1/model.pt"


def test_packs_hold_the_unfinished_runs_of_each_block():
    finished = {grid.Run("toy", 8, 1)}
    rules = training.training_rules(DeepSettings(deep_section(pack_size=2)), finished.__contains__)
    packs = {r.name: r for r in rules if r.packed}
    # β = 8 has one seed left to stabilize: it trains alone; λ packs of every stabilized model
    assert sorted(packs) == [
        "finetune_pack_toy_beta1_seed0_lambda0",
        "finetune_pack_toy_beta1_seed1_lambda0",
        "finetune_pack_toy_beta8_seed0_lambda0",
        "finetune_pack_toy_beta8_seed1_lambda0",
        "stabilize_pack_toy_beta1_seed0",
    ]
    pack = packs["finetune_pack_toy_beta8_seed1_lambda0"]
    assert pack.init == "results/runs/toy/beta8/seed1/model.pt"
    assert pack.output["model_1"] == "results/runs/toy/beta8/seed1/lambda4/model.pt"
    assert [m["run"] for m in pack.members(None, None)] == [
        "toy/beta8/seed1/lambda0",
        "toy/beta8/seed1/lambda4",
    ]


def write_run(run, science, mtime=None):
    files = training.train_outputs(run.path)
    for path in files.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as stream:
            json.dump({"settings": science}, stream)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


def test_a_run_is_finished_when_its_files_record_todays_science(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    deep = DeepSettings(deep_section())
    stabilized, finetuned = grid.Run("toy", 8, 0), grid.Run("toy", 8, 0, 4)
    assert not training.Finished(deep)(stabilized)  # no files
    write_run(stabilized, deep.train_science(stabilized), mtime=1000)
    write_run(finetuned, deep.train_science(finetuned), mtime=2000)
    assert training.Finished(deep)(stabilized) and training.Finished(deep)(finetuned)
    # another learning rate: not today's science
    other = DeepSettings(deep_section() | {"train": deep_section()["train"] | {"lr": 1e-2}})
    assert not training.Finished(other)(stabilized)
    # a stabilized model newer than its finetune: the finetune must be redone
    os.utime(training.train_outputs(stabilized.path)["model"], (3000, 3000))
    assert not training.Finished(deep)(finetuned)


# ---- resources -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visible", "listed", "count"),
    [("0", 0, 1), ("0,1", 0, 2), ("GPU-0a1b,MIG-2c3d", 0, 2), ("", 2, 0), ("-1", 2, 0),
     ("0,-1,1", 0, 1), (None, 2, 2), (None, 0, 0)],
)  # fmt: skip
def test_visible_gpus_reads_cuda_visible_devices_as_cuda_does(visible, listed, count):
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    listing = "".join(f"GPU {k}: NVIDIA H100 (UUID: GPU-{k})\n" for k in range(listed))

    def nvidia_smi(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, stdout=listing)

    assert resources.visible_gpus(environ, run=nvidia_smi) == count


def test_no_nvidia_smi_means_no_gpu():
    def missing(command, **kwargs):
        raise FileNotFoundError(command[0])

    assert resources.visible_gpus({}, run=missing) == 0
    assert resources.local_gpu_limit(0, 2) is None and resources.local_gpu_limit(2, 3) == 6
    assert resources.runtime(30)(None, 2) == 60


# ---- claims, checks, targets ------------------------------------------------------------


def test_the_claims_rule_reads_every_table_of_the_studies_run():
    inputs = claims.claim_inputs(config())
    names = {key for table in TABLES.values() for key in table.keys}
    # the config scores the encoder mean alone: no sampled MI matrices
    assert set(inputs) == {name for name in names if not name.endswith("_sampled")}
    sampled = claims.claim_inputs(
        config(deep=deep_section() | {"evaluate": {"representations": ["mean", "sampled"]}})
    )
    assert set(sampled) == names
    assert sampled["mi_reference_sampled"][0].endswith("lambda0/mi_matrix_sampled.csv")
    assert inputs["traces"] == [
        "results/linear/n12_m3_s2/contraction.csv",
        "results/linear/n8_m3_s2/contraction.csv",
    ]
    assert inputs["mi_reference"] == [
        "results/runs/toy/beta1/seed0/lambda0/mi_matrix.csv",
        "results/runs/toy/beta1/seed1/lambda0/mi_matrix.csv",
    ]
    assert inputs["mi_concentrated"][0] == "results/runs/toy/beta8/seed0/lambda4/mi_matrix.csv"
    linear_only = claims.claim_inputs(config(deep={"datasets": []}))
    # the linear study's tables: the grid, the contraction traces and the phase job's three
    assert set(linear_only) == {"linear", "traces", "rays", "phase", "linear_adaptive"}
    deep_only = claims.claim_inputs(config(linear=None))
    assert "linear" not in deep_only and "metrics" in deep_only
    one_pair = config(figures={"seed": 0, "mi_heatmaps": [[1, 0]]})
    assert claims.claim_inputs(one_pair)["mi_reference"] == []


def test_claim_settings_hold_what_changes_a_verdict():
    mpi3d = config(datasets={"toy": {"format": "mpi3d_npz"}})
    assert claims.mpi3d_dataset(mpi3d) == "toy" and claims.mpi3d_dataset(config()) is None
    settings = claims.claim_settings(config())
    assert settings == {"claims": {"min_seeds": 2}, "reconstruction": "train_bce", "rho": 1e-3,
                        "mpi3d_dataset": None, "figure_seed": 0}  # fmt: skip


def test_targets_follow_the_studies_of_the_config():
    everything = targets.all_targets(config())
    assert "results/figures/fig8_mi_heatmaps.png" in everything
    assert "results/tables/linear_metrics.csv" in everything
    assert "results/datasets/toy_samples.png" in everything
    linear_only = targets.all_targets(config(deep={"datasets": []}))
    assert not any("fig4" in t or "deep_" in t for t in linear_only)
    assert "results/tables/claims.csv" in targets.all_targets({"deep": {"datasets": []}})
    assert datasets.upstream_file({"d": {"file": "x.npz"}}, "d") == "resources/downloads/d/x.npz"
    assert datasets.prepared_files("d")["meta"] == "resources/datasets/d/meta.json"
