"""Integration tests: the real Snakemake workflow on tiny configurations."""

from __future__ import annotations

import pandas as pd
import pytest
from workflow_runner import REPO, TINY_LINEAR, snakemake, write_config

pytestmark = pytest.mark.slow

LINEAR_OUTPUTS = [
    "results/tables/linear_metrics.csv",
    "results/tables/linear_summary.csv",
    *(
        f"results/figures/{name}.{ext}"
        for name in (
            "fig2_linear_beta_sweep",
            "fig3_linear_lambda_heatmaps",
            "fig_linear_contraction",
        )
        for ext in ("pdf", "png")
    ),
]


@pytest.mark.xdist_group("tiny_linear")
def test_linear_study_end_to_end_and_reproducible(finished_tiny_linear, tmp_path):
    finished, config = finished_tiny_linear
    for output in LINEAR_OUTPUTS:
        assert (finished / output).stat().st_size > 0, output
    table = pd.read_csv(finished / "results/tables/linear_metrics.csv")
    assert len(table) == 2 * 2 * 2 * 2  # methods × β × λ × restarts
    expected = {
        "n",
        "method",
        "beta",
        "lambda",
        "restart",
        "nll",
        "kl",
        "l2",
        "sap",
        "im",
        "b_norm",
        "iterations",
        "converged",
        "residual",
    }
    assert expected <= set(table.columns)
    assert (finished / "logs/linear/n12_m3_s2/adamw.log").stat().st_size > 0

    rerun = snakemake(finished, "--cores", "2", config=config)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr

    # from scratch, elsewhere: the same numbers, to the bit
    first = (finished / "results/tables/linear_metrics.csv").read_text()
    again = write_config(tmp_path, TINY_LINEAR)
    snakemake(tmp_path, "--cores", "2", "results/tables/linear_metrics.csv", config=again)
    assert (tmp_path / "results/tables/linear_metrics.csv").read_text() == first


def test_paper_config_plans_the_whole_grid(tmp_path):
    """The default config plans every job of the paper (3 datasets × 8 β × 10 seeds × 5 λ)."""
    result = snakemake(tmp_path, "-n", "--quiet", "rules", config=REPO / "config" / "config.yaml")
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["stabilize"] == 3 * 8 * 10
    assert counts["finetune"] == 3 * 8 * 10 * 5
    assert counts["evaluate"] == 3 * 8 * 10 * 6
    assert counts["linear_fixed_point"] == 2 and counts["linear_adamw"] == 2
    assert counts["fetch_dataset"] == 3 and counts["prepare_dataset"] == 3


def test_one_figure_is_rendered_from_existing_tables_alone(tmp_path):
    """`--allowed-rules` redraws Fig 5 from a summary table without running anything upstream."""
    config = {
        "datasets": {"toy": {"format": "procedural", "subgrid": {"pos_x": 4, "pos_y": 4}}},
        "deep": {
            "datasets": ["toy"],
            "betas": [1, 8],
            "lambdas": [0, 4],
            "seeds": [0],
            "evaluate": {"num_train": 40, "num_test": 10},
        },
    }
    rows = [
        {"dataset": "toy", "phase": phase, "beta": beta, "lambda": lam, "n_seeds": 1,
         "recon_nll_mean": 100 + beta - lam, "train_bce_mean": 101 + beta - lam,
         "sap_mean": 0.1, "mig_mean": 0.05 * (1 + lam)}
        for phase in ("stabilize", "finetune") for beta in (1, 8) for lam in (0, 4)
        if phase == "finetune" or lam == 0
    ]  # fmt: skip
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tables / "deep_summary.csv", index=False)
    target = "results/figures/fig5_lambda_heatmaps.pdf"
    snakemake(tmp_path, target, "--cores", "1", "--allowed-rules", "fig5_lambda_heatmaps",
              config=write_config(tmp_path, config))  # fmt: skip
    assert (tmp_path / target).stat().st_size > 0
    assert (tmp_path / "results/figures/fig5_lambda_heatmaps.png").stat().st_size > 0
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results/runs").exists()
