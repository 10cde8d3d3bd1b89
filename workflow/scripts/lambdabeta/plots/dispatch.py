"""What the figure rules' entry scripts draw: for each script (``workflow/scripts/plot_deep.py``,
``plot_linear.py``), a mapping from a figure's draw key (its ``params.figure``, declared in
``lambdabeta.plan.figures``) to the function that draws the figure from the job's inputs,
params and output paths (:data:`Draw`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..plan.figures import PLOT_DEEP, PLOT_LINEAR
from ..selection import PAPER_RECONSTRUCTION_METRIC
from . import adaptive, images, information, linear, sweeps, tchebycheff

Draw = Callable[[Any, Any, str, str], Any]
"""``(input, params, pdf_path, png_path)`` → the figure: a job's ``snakemake.input`` and
``snakemake.params`` (named lists: attribute access), and its two outputs."""


def _datasets(params: Any) -> list[str] | None:
    # optional: the order of the dataset rows (the config's order); default, as in the tables
    return getattr(params, "datasets", None)


def _sweep_columns(params: Any) -> tuple[str, str, str]:
    # the NLL panels of Figs 4-5 show the deep.reconstruction_metric (default: the paper's);
    # Figs 4-5 of the encoder mean (the paper's) or of the sampled representation
    reconstruction = getattr(params, "reconstruction_metric", PAPER_RECONSTRUCTION_METRIC)
    representation = getattr(params, "representation", "mean")
    return sweeps.sweep_metrics(reconstruction, representation)


def _fig4(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    columns = _sweep_columns(params)
    return sweeps.fig4_beta_sweep(
        inputs.metrics, pdf, png, datasets=_datasets(params), columns=columns
    )


def _fig4_scores(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    columns = sweeps.other_score_columns(inputs.metrics)
    return sweeps.fig4_beta_sweep(
        inputs.metrics, pdf, png, datasets=_datasets(params), columns=columns
    )


def _fig5(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    columns = _sweep_columns(params)
    return sweeps.fig5_lambda_heatmaps(
        inputs.summary, pdf, png, datasets=_datasets(params), columns=columns
    )


def _fig6(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return tchebycheff.fig6_tchebycheff(
        inputs.scores, params.heatmap_weights, pdf, png, datasets=_datasets(params),
        adaptive=inputs.get("metrics"),
    )  # fmt: skip


def _fig7(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return images.fig7_reconstructions(list(inputs.reconstructions), params.settings, pdf, png)


def _fig8(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return information.fig8_mi_heatmaps(list(inputs.mi_matrices), params.settings, pdf, png)


def _fig9(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return images.fig9_traversals(list(inputs.traversals), params.settings, pdf, png)


def _adaptive(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return adaptive.fig_adaptive(list(inputs.curves), params.runs, pdf, png)


def _fig2(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return linear.fig2_linear_beta_sweep(inputs.metrics, pdf, png)


def _fig3(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return linear.fig3_linear_lambda_heatmaps(inputs.summary, pdf, png)


def _contraction(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return linear.fig_linear_contraction(list(inputs.traces), pdf, png)


def _phase(inputs: Any, params: Any, pdf: str, png: str) -> Any:
    return linear.fig_linear_phase(inputs.critical, list(inputs.maps), inputs.summary, pdf, png)


DEEP: dict[str, Draw] = {
    "fig4": _fig4,
    "fig4_scores": _fig4_scores,
    "fig5": _fig5,
    "fig6": _fig6,
    "fig7": _fig7,
    "fig8": _fig8,
    "fig9": _fig9,
    "adaptive": _adaptive,
}
"""The deep figures (``workflow/scripts/plot_deep.py``)."""

LINEAR: dict[str, Draw] = {
    "fig2": _fig2,
    "fig3": _fig3,
    "contraction": _contraction,
    "phase": _phase,
}
"""The figures of the linear study (``workflow/scripts/plot_linear.py``)."""

BY_SCRIPT: dict[str, Mapping[str, Draw]] = {PLOT_DEEP: DEEP, PLOT_LINEAR: LINEAR}
"""Each entry script's mapping, by the script's name in the figure declarations."""


def draw(drawings: Mapping[str, Draw], snakemake: Any) -> Any:
    """Draw the figure that the job ``snakemake`` (a script's ``snakemake`` object) asks for in
    ``params.figure``, with the function ``drawings`` has for it."""
    figure = snakemake.params.figure
    if figure not in drawings:
        raise ValueError(f"params.figure is {figure!r}; expected one of {', '.join(drawings)}")
    output = snakemake.output
    return drawings[figure](snakemake.input, snakemake.params, output.pdf, output.png)
