"""Tidy tables over deep runs: hand-made metrics.json files give hand-computed summaries."""

from __future__ import annotations

import json
import logging
import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lambdabeta.aggregate import (
    SUMMARY_METRICS,
    changes_vs_baseline,
    collect_metrics,
    summarize,
    summary_latex,
    summary_markdown,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def write_record(root: Path, phase: str, beta: float, lam: float | None, seed: int, **metrics):
    """A complete metrics.json as the evaluation stage writes it, in the pipeline's layout."""
    record = {
        "dataset": metrics.pop("dataset", "toy_set"),
        "phase": phase,
        "beta": beta,
        "lambda": lam,
        "seed": seed,
        "mig": 0.1,
        "sap": 0.2,
        "im": 1.0,
        "recon_nll": 50.0,
        "train_bce": 51.0,
        "kl_per_latent": [1.0, 0.0],
        "kl_total": 1.0,
        "active_latents": 1,
        "factor_entropies": [0.69],
        "factor_names": ["shape"],
        "num_train": 10,
        "num_test": 5,
        "num_bins": 20,
        "eval_seconds": 0.5,
    }
    record.update(metrics)
    folder = root / record["dataset"] / f"beta{beta:g}" / f"seed{seed}"
    if phase == "finetune":
        folder = folder / f"lambda{lam:g}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Stabilization at β ∈ {1, 4} and finetuning at (1, 0), (1, 8), (4, 0); two seeds each,
    except (4, 0) finetuned with one seed."""
    return [
        # stabilization records carry a null λ: they were trained at λ = 0
        write_record(tmp_path, "stabilize", 1, None, 0, recon_nll=10.0, mig=0.1),
        write_record(tmp_path, "stabilize", 1, None, 1, recon_nll=14.0, mig=0.3),
        write_record(tmp_path, "stabilize", 4, None, 0, recon_nll=20.0, mig=0.4),
        write_record(tmp_path, "stabilize", 4, None, 1, recon_nll=30.0, mig=0.6),
        write_record(tmp_path, "finetune", 1, 0, 1, recon_nll=12.0, mig=0.2),
        write_record(tmp_path, "finetune", 1, 0, 0, recon_nll=8.0, mig=0.2),
        write_record(tmp_path, "finetune", 1, 8, 0, recon_nll=7.0, mig=0.25),
        write_record(tmp_path, "finetune", 1, 8, 1, recon_nll=9.0, mig=0.35),
        write_record(tmp_path, "finetune", 4, 0, 0, recon_nll=25.0, mig=0.5),
    ]


def test_collect_metrics_one_sorted_row_per_model(runs):
    table = collect_metrics(reversed(runs))
    assert len(table) == len(runs)
    for column in ("dataset", "phase", "beta", "lambda", "seed", *SUMMARY_METRICS):
        assert column in table
    # stabilization first (protocol order), then β, λ, seed
    keys = list(zip(table["phase"], table["beta"], table["lambda"], table["seed"], strict=True))
    assert keys == [
        ("stabilize", 1, 0, 0), ("stabilize", 1, 0, 1), ("stabilize", 4, 0, 0),
        ("stabilize", 4, 0, 1), ("finetune", 1, 0, 0), ("finetune", 1, 0, 1),
        ("finetune", 1, 8, 0), ("finetune", 1, 8, 1), ("finetune", 4, 0, 0),
    ]  # fmt: skip
    assert table["recon_nll"].tolist()[:2] == [10.0, 14.0]
    assert table["num_train"].eq(10).all()


def test_collect_metrics_names_the_file_missing_keys(tmp_path):
    path = write_record(tmp_path, "finetune", 1, 0, 0)
    record = json.loads(path.read_text())
    del record["mig"], record["kl_total"]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"metrics\.json.*\['mig', 'kl_total'\]"):
        collect_metrics([path])


def test_collect_metrics_rejects_duplicate_runs_and_unknown_phases(tmp_path):
    first = write_record(tmp_path / "a", "finetune", 1, 0, 0)
    second = write_record(tmp_path / "b", "finetune", 1, 0, 0)
    with pytest.raises(ValueError, match="both hold the run"):
        collect_metrics([first, second])
    odd = write_record(tmp_path / "c", "pretrain", 1, 0, 0)
    with pytest.raises(ValueError, match="phase is 'pretrain'"):
        collect_metrics([odd])
    with pytest.raises(ValueError, match="no metrics files"):
        collect_metrics([])


def test_summarize_means_and_sample_sds(runs):
    summary = summarize(collect_metrics(runs))
    assert len(summary) == 5
    row = summary[(summary["phase"] == "stabilize") & (summary["beta"] == 4)].iloc[0]
    assert row["n_seeds"] == 2
    assert row["recon_nll_mean"] == pytest.approx(25.0)
    # (20, 30): squared deviations 25 + 25 over n − 1 = 1
    assert row["recon_nll_sd"] == pytest.approx(math.sqrt(50.0))
    assert row["mig_mean"] == pytest.approx(0.5)
    assert row["mig_sd"] == pytest.approx(math.sqrt(0.02))
    finetuned = summary[summary["phase"] == "finetune"].set_index(["beta", "lambda"])
    assert finetuned.loc[(1, 8), "recon_nll_mean"] == pytest.approx(8.0)
    assert finetuned.loc[(1, 8), "recon_nll_sd"] == pytest.approx(math.sqrt(2.0))


def test_summarize_single_seed_has_zero_sd_and_says_so(runs):
    summary = summarize(collect_metrics(runs))
    row = summary[(summary["phase"] == "finetune") & (summary["beta"] == 4)].iloc[0]
    assert row["n_seeds"] == 1
    assert row["recon_nll_mean"] == 25.0
    assert row["recon_nll_sd"] == 0.0
    assert not summary.drop(columns=["dataset", "phase"]).isna().any().any()


def test_summarize_a_nan_seed_blanks_its_group(tmp_path, caplog):
    paths = [
        write_record(tmp_path, "finetune", 1, 0, 0, recon_nll=float("nan")),
        write_record(tmp_path, "finetune", 1, 0, 1, recon_nll=3.0),
    ]
    with caplog.at_level(logging.WARNING, logger="lambdabeta"):
        metrics = collect_metrics(paths)
    assert "recon_nll is nan" in caplog.text
    summary = summarize(metrics)
    assert np.isnan(summary.loc[0, "recon_nll_mean"]) and np.isnan(summary.loc[0, "recon_nll_sd"])
    assert summary.loc[0, "mig_sd"] == 0.0  # the other metrics are unaffected


def test_changes_against_the_baseline_of_each_phase(runs):
    summary = changes_vs_baseline(summarize(collect_metrics(runs)))
    stabilized = summary[summary["phase"] == "stabilize"].set_index("beta")
    # stabilize β=4 against stabilize β=1: 25 − 12
    assert stabilized.loc[4, "recon_nll_change"] == pytest.approx(13.0)
    assert stabilized.loc[1, "recon_nll_change"] == 0.0
    finetuned = summary[summary["phase"] == "finetune"].set_index(["beta", "lambda"])
    # finetuned rows against the finetuned (1, 0) row: means 10 and 0.2
    assert finetuned.loc[(1, 8), "recon_nll_change"] == pytest.approx(-2.0)
    assert finetuned.loc[(1, 8), "mig_change"] == pytest.approx(0.1)
    assert finetuned.loc[(4, 0), "recon_nll_change"] == pytest.approx(15.0)
    assert (summary["baseline_beta"] == 1).all() and (summary["baseline_lambda"] == 0).all()


def test_changes_fall_back_to_the_smallest_beta_and_name_it(tmp_path):
    paths = [
        write_record(tmp_path, "finetune", 4, 2, 0, recon_nll=5.0),
        write_record(tmp_path, "finetune", 4, 8, 0, recon_nll=7.0),
        write_record(tmp_path, "finetune", 16, 2, 0, recon_nll=11.0),
    ]
    summary = changes_vs_baseline(summarize(collect_metrics(paths)))
    assert (summary["baseline_beta"] == 4).all() and (summary["baseline_lambda"] == 2).all()
    assert summary["recon_nll_change"].tolist() == [0.0, 2.0, 6.0]
    assert "baseline β = 4, λ = 2" in summary_markdown(summary)


def test_summary_markdown_blocks_and_cells(runs):
    text = summary_markdown(changes_vs_baseline(summarize(collect_metrics(runs))))
    assert text.count("## toy_set") == 2
    assert text.index("stabilization") < text.index("finetuning")
    # stabilize β=4: recon NLL 25 ± 7.07, change +13
    assert "25.0 ± 7.1 (+13.0)" in text
    # finetune (1, 8): 8 ± 1.41, change −2; MIG 0.300 ± 0.071, change +0.100
    assert "8.0 ± 1.4 (-2.0)" in text
    assert "0.300 ± 0.071 (+0.100)" in text
    lines = [line for line in text.splitlines() if line.startswith("|")]
    # two tables: header + rule + 2 stabilization rows, header + rule + 3 finetune rows
    assert len(lines) == 9
    assert len({line.count("|") for line in lines}) == 1  # every row has every column
    assert "nan" not in text.lower()


def test_summary_latex_is_escaped_booktabs(runs):
    text = summary_latex(changes_vs_baseline(summarize(collect_metrics(runs))))
    assert text.count("\\begin{tabular}") == 2 and text.count("\\bottomrule") == 2
    assert "toy\\_set" in text and "toy_set" not in text.replace("toy\\_set", "")
    assert "$25.0 \\pm 7.1$ ($+13.0$)" in text
    assert "$\\beta$ & $\\lambda$ & seeds" in text


def test_entry_point_writes_the_four_tables(runs, tmp_path, monkeypatch, fake_snakemake):
    tables = tmp_path / "tables"
    snakemake = fake_snakemake(
        input={"metrics": [str(p) for p in runs]},
        output={
            "metrics": tables / "deep_metrics.csv",
            "summary": tables / "deep_summary.csv",
            "markdown": tables / "deep_summary.md",
            "latex": tables / "deep_summary.tex",
        },
        log=[str(tmp_path / "aggregate.log")],
    )
    outputs = snakemake.output
    # the entry point sends stdout, stderr and the package logger to its log file: undo that after
    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    monkeypatch.setattr(logging.getLogger("lambdabeta"), "handlers", [])
    runpy.run_path(str(SCRIPTS / "aggregate_deep.py"), init_globals={"snakemake": snakemake})
    assert len(pd.read_csv(outputs.metrics)) == len(runs)
    summary = pd.read_csv(outputs.summary)
    assert {"recon_nll_mean", "recon_nll_sd", "n_seeds", "recon_nll_change"} <= set(summary)
    assert outputs.markdown.read_text().startswith("# Deep models")
    assert "\\toprule" in outputs.latex.read_text()
