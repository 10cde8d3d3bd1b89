"""Caching is correctness: after a finished run, settings that cannot change a result plan no
job, and a science change plans exactly the jobs it affects (real Snakemake, tiny deep grid)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import yaml
from upstream_files import dsprites_arrays, write_npz
from workflow_runner import snakemake, with_setting, write_config

pytestmark = pytest.mark.slow

# the selection table needs every stage: fetch, prepare, train (both phases), evaluate, tables
TARGETS = ("results/tables/selection.csv",)


def tiny_deep_config(upstream) -> dict:
    checksum = "md5:" + hashlib.md5(upstream.read_bytes()).hexdigest()
    return {
        "datasets": {
            "toy": {
                "format": "dsprites_npz",
                "file": "toy.npz",
                # never contacted: the local copy is used
                "urls": ["http://127.0.0.1:9/toy.npz"],
                "checksum": checksum,
                "local_path": str(upstream),
            }
        },
        "deep": {
            "datasets": ["toy"],
            "betas": [1, 4],
            "lambdas": [0, 8],
            "seeds": [0],
            "latent_dim": 2,
            "train": {
                "batch_size": 8,
                "lr": 1.0e-3,
                "stabilize_steps": 6,
                "finetune_steps": 4,
                "checkpoint_every": 3,
                "log_every": 2,
                "device": "cpu",
            },
            "evaluate": {
                "num_train": 30,
                "num_test": 10,
                "batch_size": 10,
                "bce_window": 2,
                "reconstruction_images": 2,
            },
        },
        "resources": {
            stage: {"threads": 1, "gpu": 0, "mem_mb": 1000, "runtime": 10}
            for stage in ("prepare", "stabilize", "finetune", "evaluate")
        },
    }


def planned(workdir, config: dict) -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans for TARGETS under ``config``."""
    path = write_config(workdir, config, name="changed.yaml")
    result = snakemake(workdir, *TARGETS, "-n", "--quiet", "rules", config=path)
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


LOGISTICS = [
    ("resources.stabilize.threads", 2),
    ("resources.evaluate.threads", 2),
    ("resources.finetune.mem_mb", 3000),
    ("resources.stabilize.runtime", 99),
    ("resources.jobs_per_gpu", 3),
    ("deep.train.checkpoint_every", 2),
    ("deep.train.device", "auto"),
    ("deep.train.channels_last", False),
    ("deep.train.cuda_graphs", True),
    ("deep.evaluate.batch_size", 5),
    ("datasets.toy.urls", ["http://127.0.0.1:9/toy.npz", "http://127.0.0.2:9/toy.npz"]),
]


def test_only_science_reruns_jobs(tmp_path):
    (tmp_path / "upstream").mkdir()
    upstream = write_npz(tmp_path / "upstream" / "toy.npz", dsprites_arrays())
    config = tiny_deep_config(upstream)
    snakemake(tmp_path, "--cores", "2", *TARGETS, config=write_config(tmp_path, config))
    assert planned(tmp_path, config) == {}

    # all logistics changed at once plan nothing, hence neither does any one of them (a job
    # reruns when any of its params differs); on failure, name the keys that plan jobs
    everything = config
    for key, value in LOGISTICS:
        everything = with_setting(everything, key, value)
    if planned(tmp_path, everything):
        culprits = {
            key: planned(tmp_path, with_setting(config, key, value)) for key, value in LOGISTICS
        }
        pytest.fail(f"logistics keys rerun jobs: { {k: v for k, v in culprits.items() if v} }")

    # the learning rate changes every training, hence everything downstream of it
    assert planned(tmp_path, with_setting(config, "deep.train.lr", 2.0e-3)) == {
        "stabilize": 2, "finetune": 4, "evaluate": 6, "deep_tables": 1,
        "select_hyperparameters": 1,
    }  # fmt: skip
    # the finetune's step count only the finetunes
    assert planned(tmp_path, with_setting(config, "deep.train.finetune_steps", 5)) == {
        "finetune": 4, "evaluate": 4, "deep_tables": 1, "select_hyperparameters": 1,
    }  # fmt: skip
    # one more β trains only its own runs
    assert planned(tmp_path, with_setting(config, "deep.betas", [1, 4, 16])) == {
        "stabilize": 1, "finetune": 2, "evaluate": 3, "deep_tables": 1,
        "select_hyperparameters": 1,
    }  # fmt: skip
    # adaptive finetunes are runs of their own: adding them retrains no static run
    adaptive = {"enabled": True, "target": 2.0}
    assert planned(tmp_path, with_setting(config, "deep.adaptive", adaptive)) == {
        "adapt": 2, "evaluate": 2, "deep_tables": 1, "select_hyperparameters": 1,
    }  # fmt: skip
    # an evaluation setting re-evaluates every model and retrains none
    assert planned(tmp_path, with_setting(config, "deep.evaluate.num_bins", 10)) == {
        "evaluate": 6, "deep_tables": 1, "select_hyperparameters": 1,
    }  # fmt: skip
    # an adaptive λ whose set point is the β = 1 model's rate: trained for real, then it reruns
    # for what sets that rate (the reference β, the window of steps), and for nothing else
    by_reference = with_setting(config, "deep.adaptive", {"enabled": True, "target": None,
                                                          "reference_beta": 1})  # fmt: skip
    snakemake(tmp_path, "--cores", "2", *TARGETS, config=write_config(tmp_path, by_reference))
    assert planned(tmp_path, by_reference) == {}
    assert planned(tmp_path, with_setting(by_reference, "deep.adaptive.reference_beta", 4)) == {
        "adapt": 2, "evaluate": 2, "deep_tables": 1, "select_hyperparameters": 1,
    }  # fmt: skip
    assert planned(tmp_path, with_setting(by_reference, "deep.evaluate.bce_window", 3)) == {
        "adapt": 2, "evaluate": 8, "deep_tables": 1, "select_hyperparameters": 1,
    }  # fmt: skip
    # the config file on disk is untouched by all of this
    assert yaml.safe_load((tmp_path / "test.yaml").read_text()) == by_reference

    # nothing computed is lost to a missing or corrupt intermediate: a deleted metrics.json is
    # evaluated again by the ordinary rerun (the default target), and the tables after it
    (tmp_path / "results/runs/toy/beta4/seed0/lambda8/metrics.json").unlink()
    lost = snakemake(
        tmp_path, "-n", "--quiet", "rules", config=write_config(tmp_path, by_reference)
    )
    assert "evaluate" in lost.stdout and "deep_tables" in lost.stdout
    snakemake(tmp_path, "--cores", "2", config=write_config(tmp_path, by_reference))
    assert (tmp_path / "results/runs/toy/beta4/seed0/lambda8/metrics.json").exists()
    # the default target ends with what every job cost: each job's benchmark record, and for the
    # deep jobs the device and speed their runs recorded
    costs = pd.read_csv(tmp_path / "results/tables/job_costs.csv")
    kinds = costs["kind"].value_counts().to_dict()
    assert kinds["stabilize"] == 2 and kinds["finetune"] == 4 + 2  # static and adaptive λ
    assert kinds["evaluate"] == 8 and {"prepare", "table", "figure"} <= set(kinds)
    assert costs["seconds"].notna().all() and (costs["seconds"] >= 0).all()
    deep = costs[costs["kind"].isin(["stabilize", "finetune"])]
    assert (deep["device"] == "cpu").all() and (deep["steps_per_second"] > 0).all()
    assert (deep["pack_size"] == 1).all() and deep["peak_gpu_mb"].isna().all()
    assert set(costs.loc[costs["kind"] == "evaluate", "images"]) == {40}
    # a stabilized model of random bytes is named with its path when a finetune reads it (no
    # library advice), moved aside, and trained again by the next ordinary run
    model = tmp_path / "results/runs/toy/beta4/seed0/model.pt"
    model.write_bytes(bytes(range(256)) * 20)
    failed = snakemake(
        tmp_path, "--cores", "1", *TARGETS, config=write_config(tmp_path, by_reference),
        check=False,
    )  # fmt: skip
    log = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert failed.returncode != 0 and "weights_only" not in log + failed.stderr
    assert str(model.relative_to(tmp_path)) in log and model.with_name("model.pt.corrupt").exists()
    snakemake(tmp_path, "--cores", "2", config=write_config(tmp_path, by_reference))
    assert model.exists() and planned(tmp_path, by_reference) == {}
