"""The record of every job: benchmark paths, the job cost table, and resources suggested from it."""

from __future__ import annotations

import csv
import io
import json
import math
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runner import REPO, snakemake

from lambdabeta.costs import collect, read_benchmark
from lambdabeta.plan import costs, resources, sizing
from lambdabeta.plan.checks import ConfigError

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_benchmark(workdir: Path, log: str, seconds: float, rss: float | str) -> None:
    """A benchmark record as Snakemake writes it, for the job whose log is ``log``."""
    path = workdir / costs.benchmark_file(log)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t900\t100\t120\t1.5\t2.5\t80\t{seconds}\n")


def write_record(workdir: Path, run: str, name: str, record: dict) -> None:
    folder = workdir / "results/runs" / run
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(record))


def training_record(run: str, pack: list[str], log: str, speed: float) -> dict:
    return {
        "run_name": run,
        "steps": 100,
        "resumed_from_step": 20,
        "device": "cpu",
        "settings": {"batch_size": 16},
        "steps_per_second": speed,
        "pack": {"runs": pack, "mode": "loop", "log": log, "peak_gpu_mb": None},
    }


@pytest.mark.parametrize(
    ("log", "kind"),
    [
        ("logs/datasets/toy/fetch_toy.npz.log", "fetch"),
        ("logs/datasets/toy/prepare.log", "prepare"),
        ("logs/linear/n12_m3_s2/instance.log", "linear"),
        ("logs/linear/n12_m3_s2/fixed_point.log", "linear"),
        ("logs/linear/n12_m3_s2/adamw.log", "linear_adamw"),
        ("logs/linear/tables.log", "linear"),
        ("logs/train/toy/beta4/seed0/stabilize.log", "stabilize"),
        ("logs/train/toy/beta4/seed0/lambda8/finetune.log", "finetune"),
        ("logs/train/toy/beta4/seed0/adaptive/finetune.log", "finetune"),
        ("logs/train/packs/stabilize_pack_toy_beta4_seed0.log", "stabilize"),
        ("logs/train/packs/finetune_pack_toy_beta4_seed0_lambda0p5.log", "finetune"),
        ("logs/evaluate/toy/beta4/seed0/lambda8.log", "evaluate"),
        ("logs/tables/claims.log", "table"),
        ("logs/figures/fig4_beta_sweep.log", "figure"),
    ],
)
def test_every_log_layout_has_a_benchmark_and_a_kind(log, kind):
    benchmark = costs.benchmark_file(log)
    assert benchmark.startswith("results/benchmarks/") and benchmark.endswith(".tsv")
    assert costs.log_file(benchmark) == log
    assert costs.job_kind(log) == kind


def test_paths_outside_the_layout_are_refused():
    with pytest.raises(ValueError, match="below logs/"):
        costs.benchmark_file("results/tables/claims.csv")
    with pytest.raises(ValueError, match="no job kind"):
        costs.job_kind("logs/somewhere/else.log")


def test_the_cost_table_joins_each_job_to_its_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a one-run stabilization, a pack of two finetunes (β shared, λ not), an evaluation, a figure
    stabilize = "logs/train/toy/beta4/seed0/stabilize.log"
    write_benchmark(tmp_path, stabilize, 10.0, 500)
    alone = "toy/beta4/seed0"
    write_record(tmp_path, alone, "run.json", training_record(alone, [alone], stabilize, 10.0))
    pack = "logs/train/packs/finetune_pack_toy_beta4_seed0_lambda0.log"
    write_benchmark(tmp_path, pack, 30.0, 700)
    members = ["toy/beta4/seed0/lambda0", "toy/beta4/seed0/lambda8"]
    for run, speed in zip(members, (4.0, 6.0), strict=True):
        write_record(tmp_path, run, "run.json", training_record(run, members, pack, speed))
    write_benchmark(tmp_path, "logs/evaluate/toy/beta4/seed0/lambda8.log", 3.0, 400)
    metrics = {"device": "cpu", "num_train": 30, "num_test": 10, "peak_gpu_mb": None}
    write_record(tmp_path, "toy/beta4/seed0/lambda8", "metrics.json", metrics)
    # a job too short for Snakemake to sample its memory writes "-"
    write_benchmark(tmp_path, "logs/figures/fig4_beta_sweep.log", 1.0, "-")

    table = collect("results/benchmarks").set_index("job")
    assert list(table["kind"]) == ["stabilize", "finetune", "evaluate", "figure"]  # pipeline order
    one = table.loc["train/toy/beta4/seed0/stabilize"]
    assert (one["dataset"], one["beta"], one["lambda"], one["seed"]) == ("toy", 4.0, 0.0, 0)
    assert (one["pack_size"], one["device"], one["steps"], one["batch_size"]) == (1, "cpu", 80, 16)
    assert (one["seconds"], one["max_rss_mb"], one["steps_per_second"]) == (10.0, 500.0, 10.0)
    packed = table.loc["train/packs/finetune_pack_toy_beta4_seed0_lambda0"]
    assert packed["pack_size"] == 2 and packed["runs"] == ";".join(members)
    assert packed["beta"] == 4.0 and pd.isna(packed["lambda"])  # λ differs between its runs
    assert packed["steps_per_second"] == 5.0 and packed["seconds"] == 30.0
    scored = table.loc["evaluate/toy/beta4/seed0/lambda8"]
    assert (scored["images"], scored["lambda"], scored["cpu_seconds"]) == (40, 8.0, 3.0)
    figure = table.loc["figures/fig4_beta_sweep"]
    assert math.isnan(figure["max_rss_mb"]) and pd.isna(figure["dataset"])
    assert (figure["io_in_mb"], figure["io_out_mb"]) == (1.5, 2.5)


def test_a_file_that_is_no_benchmark_is_named(tmp_path):
    path = tmp_path / "broken.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match=r"broken\.tsv: not a Snakemake benchmark"):
        read_benchmark(path)


def paper_config() -> dict:
    return sizing.load_config([str(REPO / "config/config.yaml")])


def pilot_rows() -> list[dict[str, str]]:
    """A pilot's job_costs.csv rows: a stabilization at 10 steps/s of batch 32 (320 images/s)
    and a pack of two at 4 steps/s each of batch 32 (256 images/s, the slowest; 5 s outside its
    80 steps), two evaluations of 40 images, a linear job."""
    training = {"kind": "stabilize", "device": "cpu", "steps": "80", "batch_size": "32",
                "images": ""}  # fmt: skip
    others = {"device": "", "steps": "", "batch_size": "", "pack_size": "", "steps_per_second": ""}
    return [
        training | {"pack_size": "1", "steps_per_second": "10", "seconds": "9",
                    "max_rss_mb": "800"},
        training | {"pack_size": "2", "steps_per_second": "4", "seconds": "25",
                    "max_rss_mb": "600"},
        others | {"kind": "evaluate", "seconds": "4", "images": "40", "max_rss_mb": "900"},
        others | {"kind": "evaluate", "seconds": "2", "images": "40", "max_rss_mb": "1000"},
        others | {"kind": "linear", "seconds": "100", "images": "", "max_rss_mb": "-"},
    ]  # fmt: skip


def test_resources_are_scaled_from_the_pilot_to_the_config():
    config = paper_config()
    suggested = sizing.suggest_resources(pilot_rows(), config)
    assert set(suggested) == {"stabilize", "evaluate", "linear"}  # what the pilot ran
    train = config["deep"]["train"]
    images = train["stabilize_steps"] * train["batch_size"] * train["pack_size"]
    # the images at the slowest throughput, plus the most time outside steps, × 2, rounded up
    expected = math.ceil((images / 256 + 5) * 2 / 60 / 10) * 10
    assert suggested["stabilize"]["runtime"] == expected
    assert "256 images/s (slowest)" in suggested["stabilize"]["source"]
    images = config["deep"]["evaluate"]["num_train"] + config["deep"]["evaluate"]["num_test"]
    assert suggested["evaluate"]["runtime"] == math.ceil(0.1 * images * 2 / 60 / 10) * 10
    # memory: the measured peak × 1.5, but never below what the config's batches need
    needs = resources.memory_needs(config)
    assert suggested["evaluate"]["mem_mb"] == math.ceil(max(1500, needs["evaluate"]) / 1000) * 1000
    assert suggested["stabilize"]["mem_mb"] >= needs["stabilize"]
    # a kind it cannot scale: as measured, and marked so
    source = "1 pilot job(s): at most 100 s at the pilot's sizes (not scaled); max RSS not measured"
    assert suggested["linear"] == {"mem_mb": 1000, "runtime": 10, "source": source, "scaled": False}


def test_the_helper_prints_resources_a_config_can_take(tmp_path):
    table = tmp_path / "job_costs.csv"
    rows = pilot_rows()
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    printed = io.StringIO()
    with redirect_stdout(printed):
        sizing.main([str(table), "--configfile", str(REPO / "config/config.yaml")])
    entries = yaml.safe_load(printed.getvalue())["resources"]
    assert set(entries) == {"stabilize", "evaluate"}  # the linear job's entry is a comment
    assert "  # linear: {" in printed.getvalue()
    config = paper_config()
    for stage, entry in entries.items():
        # the config's own threads and GPUs, the suggested memory and runtime
        assert entry.keys() == config["resources"][stage].keys()
        assert entry["threads"] == config["resources"][stage]["threads"]
    assert "256 images/s" in printed.getvalue()


def test_the_helper_names_a_bad_config_value_by_its_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("deep:\n  train:\n    batch_size: -4\n")
    with pytest.raises(ConfigError, match=r"deep\.train\.batch_size"):
        sizing.load_config([str(REPO / "config/config.yaml"), str(bad)])


@pytest.mark.slow
def test_every_job_that_computes_has_a_benchmark(tmp_path):
    """In the demo's plan, each job but the target `all` and the cost table itself has a
    benchmark record at the path of its log, and a kind."""
    result = snakemake(tmp_path, "-n", config=REPO / "config/demo.yaml")
    jobs = result.stdout.split("\nrule ")[1:] + result.stdout.split("\nlocalrule ")[1:]
    checked = set()
    for job in jobs:
        rule = job.split(":")[0]
        fields = dict(line.strip().split(": ", 1) for line in job.splitlines()[1:] if ": " in line)
        if rule in ("all", "job_costs"):
            assert "benchmark" not in fields
            continue
        assert fields.get("benchmark") == costs.benchmark_file(fields["log"]), rule
        assert costs.job_kind(fields["log"]) in costs.KINDS
        checked.add(rule)
    assert {"prepare_dataset", "stabilize", "finetune", "adapt", "evaluate", "claims"} <= checked
    assert {"linear_instance", "linear_adamw", "fig4_beta_sweep", "deep_tables"} <= checked
