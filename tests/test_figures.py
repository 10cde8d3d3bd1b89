"""The figure declarations (lambdabeta.plan.figures): each one is complete and unique, its entry
script can draw it, and the targets of a config are the figures the declarations say it wants."""

from __future__ import annotations

import logging
import re
import runpy
import sys
from collections import Counter
from pathlib import Path

import pytest

from lambdabeta.plan import figures, targets
from lambdabeta.plan.sizing import load_config
from lambdabeta.plots import dispatch

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
FIGURES = {figure.name: figure for figure in figures.FIGURES}


def shipped_config(name: str) -> dict:
    """config/<name> as the workflow sees it: merged into config/config.yaml, validated."""
    paths = [REPO / "config" / "config.yaml", REPO / "config" / name]
    return load_config([str(path) for path in dict.fromkeys(paths)])


def test_every_figure_is_declared_once_with_a_caption_and_its_own_files():
    names = [figure.name for figure in figures.FIGURES]
    assert [name for name, count in Counter(names).items() if count > 1] == []
    outputs = [path for figure in figures.FIGURES for path in figure.outputs.values()]
    assert len(set(outputs)) == len(outputs) == 2 * len(names)
    for figure in figures.FIGURES:
        assert figure.outputs == {
            "pdf": f"results/figures/{figure.name}.pdf",
            "png": f"results/figures/{figure.name}.png",
        }
        assert figure.log == f"logs/figures/{figure.name}.log"
        assert (REPO / "workflow" / "report" / f"{figure.caption}.rst").is_file(), figure.name
        assert figure.study in figures.STUDIES, figure.name
        assert figure.category, figure.name


def test_the_rule_file_defines_a_rule_for_every_figure():
    """One rule block per entry script, naming it literally, over the figures it draws."""
    text = (REPO / "workflow" / "rules" / "figures.smk").read_text()
    loops = re.findall(
        r'for figure in figures\.drawn_by\(figures\.(\w+)\):.*?script:\s*"\.\./scripts/([\w.]+)"',
        text,
        flags=re.DOTALL,
    )
    scripts = [getattr(figures, constant) for constant, _ in loops]
    assert scripts == [script for _, script in loops]
    assert sorted(scripts) == sorted(dispatch.BY_SCRIPT)
    drawn = [figure.name for script in scripts for figure in figures.drawn_by(script)]
    assert sorted(drawn) == sorted(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_the_entry_script_of_a_figure_dispatches_to_its_drawing_function(
    name, tmp_path, monkeypatch, fake_snakemake
):
    figure = FIGURES[name]
    drawings = dispatch.BY_SCRIPT[figure.script]
    assert figure.draw in drawings
    drawn = []
    monkeypatch.setitem(drawings, figure.draw, lambda *args: drawn.append(args))
    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    monkeypatch.setattr(logging.getLogger("lambdabeta"), "handlers", [])
    snakemake = fake_snakemake(
        input={"table": "in.csv"},
        params={"figure": figure.draw},
        output={"pdf": "f.pdf", "png": "f.png"},
        log=[str(tmp_path / "plot.log")],
    )
    runpy.run_path(str(SCRIPTS / figure.script), init_globals={"snakemake": snakemake})
    assert drawn == [(snakemake.input, snakemake.params, "f.pdf", "f.png")]


@pytest.mark.parametrize("config_file", ["demo.yaml", "config.yaml"])
def test_the_targets_are_the_figures_the_config_wants(config_file):
    config = shipped_config(config_file)
    wanted = figures.wanted(config)
    shown = [path for path in targets.all_targets(config) if path.startswith("results/figures/")]
    assert shown == figures.figure_files(wanted)
    names = {figure.name for figure in wanted}
    if config_file == "demo.yaml":  # every figure: both studies, the sampled scores, adaptive λ
        assert names == set(FIGURES)
    else:
        assert names == set(FIGURES) - {"fig_adaptive"}
    for figure in wanted:  # what its rule gets: inputs and params of the validated config
        assert figure.inputs(config) and all(figure.inputs(config).values()), figure.name
        assert figure.params(config)["figure"] == figure.draw


def test_a_study_the_config_does_not_run_wants_none_of_its_figures():
    config = shipped_config("demo.yaml")
    linear_only = config | {"deep": config["deep"] | {"datasets": []}}
    assert {figure.study for figure in figures.wanted(linear_only)} == {figures.LINEAR}
    mean_only = config | {
        "deep": config["deep"] | {"evaluate": {"representations": ["mean"]}, "adaptive": None}
    }
    names = {figure.name for figure in figures.wanted(mean_only)}
    assert not names & {"fig4_beta_sweep_sampled", "fig5_lambda_heatmaps_sampled", "fig_adaptive"}
    assert {"fig4_beta_sweep", "fig9_traversals"} <= names
