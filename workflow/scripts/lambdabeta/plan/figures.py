"""Every figure of the pipeline, declared once (:data:`FIGURES`).

A figure's declaration (:class:`Figure`) is all the workflow needs to make it:

- its name: the name of its rule and the stem of its outputs ``results/figures/<name>.pdf`` and
  ``.png`` (the PNG in the report), its log ``logs/figures/<name>.log``;
- its report entry: the caption ``workflow/report/<caption>.rst``, the category, the label
  ``figure: <name>``;
- what draws it: the entry script in ``workflow/scripts`` and the key of its drawing function
  in the mapping that script dispatches through (``lambdabeta.plots.dispatch``), passed to the
  script as ``params.figure``;
- its inputs and its other params as functions of the validated config; params hold only
  settings that change the figure (a job reruns when one changes);
- the study it belongs to and, when the study runs, whether the config asks for it.

``workflow/rules/figures.smk`` defines one rule per figure from this list (a loop per entry
script, :func:`drawn_by`), and ``lambdabeta.plan.targets`` asks for the files of the figures a
config wants (:func:`wanted`).
Standard library only: the workflow definition imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import grid
from ..linear.settings import LinearSettings
from .checks import figure_runs
from .training import train_outputs

Config = Mapping[str, Any]

FORMATS = ("pdf", "png")
LINEAR, DEEP = "linear", "deep"
# report categories
LINEAR_STUDY, DEEP_STUDY, SELECTION = "Linear-Gaussian study", "Deep λβ-VAE", "Selection"
# entry scripts (workflow/scripts)
PLOT_LINEAR, PLOT_DEEP = "plot_linear.py", "plot_deep.py"


def runs_linear(config: Config) -> bool:
    """Whether the config runs the linear study: it has a ``linear`` section."""
    return config.get("linear") is not None


def runs_deep(config: Config) -> bool:
    """Whether the config runs the deep experiments: ``deep.datasets`` names one."""
    return bool(config.get("deep", {}).get("datasets", []))


STUDIES: dict[str, Callable[[Config], bool]] = {LINEAR: runs_linear, DEEP: runs_deep}


def _always(config: Config) -> bool:
    return True


def _no_settings(config: Config) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Figure:
    """One figure: its rule, outputs, report entry, drawing function, inputs and params."""

    name: str
    caption: str  # workflow/report/<caption>.rst
    category: str
    study: str  # a key of STUDIES
    script: str  # the entry script that draws it
    draw: str  # its drawing function in that script's mapping: params.figure
    inputs: Callable[[Config], dict[str, str | list[str]]]
    settings: Callable[[Config], dict[str, Any]] = _no_settings  # params besides `figure`
    when: Callable[[Config], bool] = _always  # asked for, when its study runs

    @property
    def outputs(self) -> dict[str, str]:
        """The PDF and the PNG, by format."""
        return {ext: f"results/figures/{self.name}.{ext}" for ext in FORMATS}

    @property
    def log(self) -> str:
        return f"logs/figures/{self.name}.log"

    def params(self, config: Config) -> dict[str, Any]:
        return {"figure": self.draw} | self.settings(config)

    def wanted(self, config: Config) -> bool:
        """Whether ``config`` asks for the figure."""
        return STUDIES[self.study](config) and self.when(config)


# ---- what the figures read of the config ------------------------------------------------------


def _files(**files: str) -> Callable[[Config], dict[str, str]]:
    """Inputs that do not depend on the config (tables)."""
    return lambda config: dict(files)


def _linear_dims(config: Config) -> list[str]:
    """The ``{dims}`` names of the linear instances."""
    linear = config.get("linear")
    return [dims.name for dims in LinearSettings.from_config(linear).dims] if linear else []


def _deep(config: Config) -> Mapping[str, Any]:
    """Config ``deep``, as the deep settings read it: none is a study of no dataset."""
    deep = config.get("deep")
    return deep if deep is not None else {"datasets": []}


def _sweep_settings(config: Config) -> dict[str, Any]:
    """Figs 4-5: the order of the dataset rows, and the metric of the NLL panels."""
    deep = _deep(config)
    return {
        "datasets": list(deep["datasets"]),
        "reconstruction_metric": deep.get("reconstruction_metric"),
    }


def _sampled_sweep_settings(config: Config) -> dict[str, Any]:
    return _sweep_settings(config) | {"representation": "sampled"}


def scores_sampled(config: Config) -> bool:
    """Whether ``deep.evaluate.representations`` scores the sampled representation."""
    return "sampled" in config["deep"].get("evaluate", {}).get("representations", ["mean"])


def adapts(config: Config) -> bool:
    """Whether ``deep.adaptive`` asks for adaptive finetunes."""
    return (config["deep"].get("adaptive") or {}).get("enabled", False)


def _adaptive_runs(config: Config) -> list[grid.Run]:
    deep = _deep(config)
    return grid.adaptive_runs(deep) if deep["datasets"] else []


def _tchebycheff_inputs(config: Config) -> dict[str, str]:
    # Fig 6 marks the adaptive finetunes' final λ on its heatmaps (from deep_metrics.csv)
    metrics = {"metrics": "results/tables/deep_metrics.csv"} if _adaptive_runs(config) else {}
    return metrics | {"scores": "results/tables/tchebycheff_scores.csv"}


def _tchebycheff_settings(config: Config) -> dict[str, Any]:
    return {
        "datasets": list(_deep(config)["datasets"]),
        "heatmap_weights": config["selection"]["heatmap_weights"],
    }


def _reconstruction_pairs(config: Config) -> Sequence:
    return config["figures"]["reconstructions"]


def _mi_pairs(config: Config) -> Sequence:
    return config["figures"]["mi_heatmaps"]


def traversal_pairs(config: Config) -> Sequence:
    """The (β, λ) pairs of the traversals: ``figures.traversals``, else those of Fig 8."""
    return config["figures"]["traversals"] or config["figures"]["mi_heatmaps"]


def _chosen_models(pairs: Callable[[Config], Sequence], key: str, file: str) -> dict[str, Any]:
    """The ``inputs`` (``file`` of each run, as ``key``) and ``settings`` (the runs' records) of
    a figure of the runs nearest to the (β, λ) ``pairs``."""

    def inputs(config: Config) -> dict[str, list[str]]:
        return {key: [f"{run['run']}/{file}" for run in figure_runs(config, pairs(config))]}

    def settings(config: Config) -> dict[str, Any]:
        return {"settings": figure_runs(config, pairs(config))}

    return {"inputs": inputs, "settings": settings}


def _adaptive_inputs(config: Config) -> dict[str, list[str]]:
    return {"curves": [train_outputs(run.path)["curve"] for run in _adaptive_runs(config)]}


def _adaptive_settings(config: Config) -> dict[str, Any]:
    return {"runs": [run.record() | {"path": run.path} for run in _adaptive_runs(config)]}


# ---- the figures -------------------------------------------------------------------------------

# Figure(name, caption, category, study, script, draw, inputs=…, settings=…, when=…), in the
# order of the targets: the paper's figures, then those it does not have
FIGURES: tuple[Figure, ...] = (
    Figure(
        "fig2_linear_beta_sweep", "fig2", LINEAR_STUDY, LINEAR, PLOT_LINEAR, "fig2",
        inputs=_files(metrics="results/tables/linear_metrics.csv"),
    ),
    Figure(
        "fig3_linear_lambda_heatmaps", "fig3", LINEAR_STUDY, LINEAR, PLOT_LINEAR, "fig3",
        inputs=_files(summary="results/tables/linear_summary.csv"),
    ),
    Figure(
        "fig_linear_contraction", "fig_linear_contraction", LINEAR_STUDY, LINEAR, PLOT_LINEAR,
        "contraction",
        inputs=lambda config: {
            "traces": [f"results/linear/{dims}/contraction.csv" for dims in _linear_dims(config)]
        },
    ),
    Figure(
        "fig_linear_phase", "fig_linear_phase", LINEAR_STUDY, LINEAR, PLOT_LINEAR, "phase",
        inputs=lambda config: {
            "critical": "results/tables/linear_phase.csv",
            "maps": [f"results/linear/{dims}/phase_map.csv" for dims in _linear_dims(config)],
            "summary": "results/tables/linear_summary.csv",
        },
    ),
    Figure(
        "fig4_beta_sweep", "fig4", DEEP_STUDY, DEEP, PLOT_DEEP, "fig4",
        inputs=_files(metrics="results/tables/deep_metrics.csv"), settings=_sweep_settings,
    ),
    Figure(
        "fig5_lambda_heatmaps", "fig5", DEEP_STUDY, DEEP, PLOT_DEEP, "fig5",
        inputs=_files(summary="results/tables/deep_summary.csv"), settings=_sweep_settings,
    ),
    Figure(
        "fig6_tchebycheff", "fig6", SELECTION, DEEP, PLOT_DEEP, "fig6",
        inputs=_tchebycheff_inputs, settings=_tchebycheff_settings,
    ),
    Figure(
        "fig7_reconstructions", "fig7", DEEP_STUDY, DEEP, PLOT_DEEP, "fig7",
        **_chosen_models(_reconstruction_pairs, "reconstructions", "reconstructions.npz"),
    ),
    Figure(
        "fig8_mi_heatmaps", "fig8", DEEP_STUDY, DEEP, PLOT_DEEP, "fig8",
        **_chosen_models(_mi_pairs, "mi_matrices", "mi_matrix.csv"),
    ),
    Figure(
        "fig9_traversals", "fig9", DEEP_STUDY, DEEP, PLOT_DEEP, "fig9",
        **_chosen_models(traversal_pairs, "traversals", "traversals.npz"),
    ),
    # Fig 4's companion: the vocabulary's other scores (I_m, DCI, FactorVAE) against β
    Figure(
        "fig4_beta_sweep_scores", "fig4_scores", DEEP_STUDY, DEEP, PLOT_DEEP, "fig4_scores",
        inputs=_files(metrics="results/tables/deep_metrics.csv"),
        settings=lambda config: {"datasets": list(_deep(config)["datasets"])},
    ),
    # Figs 4-5 of the sampled representation, when it is scored
    Figure(
        "fig4_beta_sweep_sampled", "fig4_sampled", DEEP_STUDY, DEEP, PLOT_DEEP, "fig4",
        inputs=_files(metrics="results/tables/deep_metrics.csv"),
        settings=_sampled_sweep_settings, when=scores_sampled,
    ),
    Figure(
        "fig5_lambda_heatmaps_sampled", "fig5_sampled", DEEP_STUDY, DEEP, PLOT_DEEP, "fig5",
        inputs=_files(summary="results/tables/deep_summary.csv"),
        settings=_sampled_sweep_settings, when=scores_sampled,
    ),
    Figure(
        "fig_adaptive", "fig_adaptive", DEEP_STUDY, DEEP, PLOT_DEEP, "adaptive",
        inputs=_adaptive_inputs, settings=_adaptive_settings, when=adapts,
    ),
)  # fmt: skip


def wanted(config: Config, study: str | None = None) -> list[Figure]:
    """The figures ``config`` asks for (of ``study`` only, if given), in :data:`FIGURES` order."""
    return [
        figure
        for figure in FIGURES
        if (study is None or figure.study == study) and figure.wanted(config)
    ]


def drawn_by(script: str) -> list[Figure]:
    """The figures that the entry script ``script`` draws (each has a rule that runs it)."""
    return [figure for figure in FIGURES if figure.script == script]


def figure_files(figures: Iterable[Figure]) -> list[str]:
    """The PDF and PNG of each figure."""
    return [path for figure in figures for path in figure.outputs.values()]
