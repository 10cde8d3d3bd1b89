"""After a finished linear study, each setting reruns exactly the jobs whose results it changes
(real Snakemake on a tiny linear-only config)."""

from __future__ import annotations

import re

import pytest
from workflow_runner import TINY_LINEAR, snakemake, with_setting, write_config

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tiny_linear")]

DIMS = "results/linear/n12_m3_s2"
TABLES_AND_FIGURES = {
    "linear_tables": {"results/tables/linear_metrics.csv", "results/tables/linear_summary.csv"},
    "fig2_linear_beta_sweep": {
        f"results/figures/fig2_linear_beta_sweep.{e}" for e in ("pdf", "png")
    },
    "fig3_linear_lambda_heatmaps": {
        f"results/figures/fig3_linear_lambda_heatmaps.{e}" for e in ("pdf", "png")
    },
    # the phase figure marks the study's grid points (linear_summary.csv)
    "fig_linear_phase": {f"results/figures/fig_linear_phase.{e}" for e in ("pdf", "png")},
}
PHASE = {
    "linear_phase": {f"{DIMS}/{name}.csv" for name in ("phase", "phase_map", "rays", "adaptive")},
    "linear_phase_tables": {
        f"results/tables/linear_{name}.csv" for name in ("phase", "rays", "adaptive")
    },
    "fig_linear_phase": {f"results/figures/fig_linear_phase.{e}" for e in ("pdf", "png")},
}
CONTRACTION = {
    "linear_contraction": {f"{DIMS}/contraction.csv"},
    "fig_linear_contraction": {
        f"results/figures/fig_linear_contraction.{e}" for e in ("pdf", "png")
    },
}


@pytest.fixture(scope="module")
def finished(finished_tiny_linear):
    """The finished run, checked once to be up to date under its own config."""
    workdir, _ = finished_tiny_linear
    assert planned(workdir, TINY_LINEAR) == {}, "the finished run must be up to date"
    return workdir


def planned(workdir, config: dict) -> dict[str, set[str]]:
    """The outputs of each job `snakemake -n` plans under ``config``, by rule (without `all`)."""
    result = snakemake(workdir, "-n", config=write_config(workdir, config, name="changed.yaml"))
    jobs: dict[str, set[str]] = {}
    rule = None
    for line in result.stdout.splitlines():
        if match := re.fullmatch(r"(?:local)?rule (\w+):", line.strip()):
            rule = match[1]
        elif rule and (match := re.fullmatch(r"output: (.*)", line.strip())):
            jobs.setdefault(rule, set()).update(match[1].split(", "))
    jobs.pop("all", None)
    return jobs


def changed(path: str, value) -> dict:
    """TINY_LINEAR with the dotted key ``path`` set to ``value``."""
    return with_setting(TINY_LINEAR, path, value)


def study(method: str) -> dict[str, set[str]]:
    return {f"linear_{method}": {f"{DIMS}/{method}.csv"}}


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("resources.linear.threads", 2, {}),
        ("resources.linear_adamw", {"threads": 3, "mem_mb": 900, "runtime": 9}, {}),
        ("linear.adamw.check_every", 7, {}),  # tol = 0: never checked
        ("linear.adamw.device", "cpu", {}),  # logistics (the finished run planned `auto`)
        ("linear.contraction.iterations", 12, CONTRACTION),
        ("linear.phase.resolution", 2.0e-2, PHASE),
        ("linear.adamw.lr", 2.0e-2, study("adamw") | TABLES_AND_FIGURES),
        ("linear.fixed_point.tol", 1.0e-8, study("fixed_point") | TABLES_AND_FIGURES),
        (
            "linear.betas",
            [1, 8, 16],
            study("adamw") | study("fixed_point") | TABLES_AND_FIGURES,
        ),
    ],
    ids=[
        "threads",
        "adamw_resources",
        "check_every",
        "device",
        "contraction",
        "phase_resolution",
        "adamw_lr",
        "fixed_point_tol",
        "one_more_beta",
    ],
)
def test_a_change_plans_exactly_the_jobs_it_affects(finished, path, value, expected):
    jobs = planned(finished, changed(path, value))
    # the verdicts of the claims are judged from every linear table, and the job cost table
    # comes after every output, so they follow any change of one; nothing else may
    claims = jobs.pop("claims", None)
    costs = jobs.pop("job_costs", None)
    assert jobs == expected
    assert claims is None or expected
    assert costs is None or expected
