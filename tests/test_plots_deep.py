"""Figures 4-9 and the adaptive λ figure render from tiny tables; the helpers behind them behave."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.patches import Rectangle

from lambdabeta.aggregate import changes_vs_baseline, summarize
from lambdabeta.plots import adaptive, common, heatmaps, images, information, sweeps, tchebycheff
from lambdabeta.plots.style import axis_label
from lambdabeta.selection import score_grid

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
BETAS, LAMBDAS, SEEDS = (1.0, 4.0, 16.0), (0.0, 8.0), (0, 1)


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    """deep_metrics of one dataset: 3 β, 2 λ, 2 seeds, both phases."""
    rng = np.random.default_rng(0)
    rows = [
        {"dataset": "dsprites", "phase": phase, "beta": b, "lambda": lam, "seed": s,
         "recon_nll": 30 + 4 * np.log2(b) - lam / 4 + rng.normal(), "train_bce": 31.0,
         "mig": rng.uniform(0, 0.5), "sap": rng.uniform(0, 0.3), "im": 2.0,
         "active_latents": 5.0, "kl_total": 10.0}
        for phase, lambdas in (("stabilize", (0.0,)), ("finetune", LAMBDAS))
        for b in BETAS for lam in lambdas for s in SEEDS
    ]  # fmt: skip
    return pd.DataFrame(rows)


def assert_saved(pdf: Path, png: Path) -> None:
    """Both files hold a picture: a PDF page, and a PNG with more than one colour in it."""
    assert pdf.read_bytes().startswith(b"%PDF-") and b"/Type /Page" in pdf.read_bytes(), pdf
    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100, (png, pixels.shape)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 2, png


def panels(fig) -> list:
    """The visible plotting axes of a figure, colour bars left out, in drawing order."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def heatmap_mesh(ax) -> QuadMesh:
    (mesh,) = [artist for artist in ax.collections if isinstance(artist, QuadMesh)]
    return mesh


def heatmap_values(ax, shape: tuple[int, int]) -> np.ndarray:
    """The cell values of the heatmap drawn in ``ax``, row 0 at the bottom, NaN where blank."""
    values = np.ma.filled(np.ma.asarray(heatmap_mesh(ax).get_array(), dtype=float), np.nan)
    return values.reshape(shape)


def outputs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"


# ---- helpers --------------------------------------------------------------------------------


def test_compact_number_and_tile_images():
    assert [heatmaps.compact_number(v) for v in (6012.4, 41.25, 0.271, np.nan)] == [
        "6012", "41.2", "0.27", ""
    ]  # fmt: skip
    images = np.arange(2 * 3 * 4 * 1, dtype=np.uint8).reshape(2, 3, 4, 1)
    strip = common.tile_images(images, gap=1, fill=255)
    assert strip.shape == (3, 2 * 4 + 1, 1)
    np.testing.assert_array_equal(strip[:, :4], images[0])
    np.testing.assert_array_equal(strip[:, 4], 255)
    np.testing.assert_array_equal(strip[:, 5:], images[1])


def test_annotation_font_shrinks_then_gives_up():
    roomy = heatmaps.annotation_fontsize(0.5, 0.3, max_chars=4)
    tight = heatmaps.annotation_fontsize(0.25, 0.3, max_chars=4)
    assert roomy == heatmaps.ANNOTATION_FONT_RANGE[1] and tight < roomy
    assert heatmaps.annotation_fontsize(0.05, 0.3, max_chars=5) is None


# ---- figures --------------------------------------------------------------------------------


def test_fig4_beta_sweep(metrics, tmp_path):
    pdf, png = outputs(tmp_path, "fig4")
    fig = sweeps.fig4_beta_sweep(metrics, pdf, png)
    assert_saved(pdf, png)
    stabilized = metrics[metrics["phase"] == "stabilize"]
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == [axis_label(m) for m in sweeps.SWEEP_METRICS]
    for ax, metric in zip(axes, sweeps.SWEEP_METRICS, strict=True):
        # every seed is a dot, at its β (spread sideways by less than half an octave)
        (dots,) = [artist for artist in ax.collections if isinstance(artist, PathCollection)]
        x, y = dots.get_offsets().T
        np.testing.assert_allclose(np.sort(y), np.sort(stabilized[metric]))
        assert np.abs(x - np.round(x)).max() < 0.5
        # the line runs through the mean over seeds at each β
        line = ax.containers[0].lines[0]
        means = stabilized.groupby("beta")[metric].mean()
        x, y = (np.asarray(values, dtype=float) for values in line.get_data())
        np.testing.assert_allclose(x, np.log2(means.index))
        np.testing.assert_allclose(y, means.to_numpy())
    with pytest.raises(ValueError, match="no stabilize rows"):
        sweeps.fig4_beta_sweep(metrics[metrics["phase"] == "finetune"], pdf, png)
    with pytest.raises(ValueError, match="no rows for the datasets"):
        sweeps.fig4_beta_sweep(metrics, pdf, png, datasets=["shapes3d"])


def test_fig5_lambda_heatmaps_from_a_csv(metrics, tmp_path):
    summary_path = tmp_path / "deep_summary.csv"
    changes_vs_baseline(summarize(metrics)).to_csv(summary_path, index=False)
    pdf, png = outputs(tmp_path, "fig5")
    fig = sweeps.fig5_lambda_heatmaps(summary_path, pdf, png)
    assert_saved(pdf, png)
    finetuned = metrics[metrics["phase"] == "finetune"]
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == [axis_label(m) for m in sweeps.SWEEP_METRICS]
    for ax, metric in zip(axes, sweeps.SWEEP_METRICS, strict=True):
        # cells: the mean over seeds, β increasing upwards (rows), λ to the right (columns)
        expected = finetuned.pivot_table(index="beta", columns="lambda", values=metric)
        np.testing.assert_allclose(heatmap_values(ax, expected.shape), expected.to_numpy())
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"{b:g}" for b in BETAS]


def minimizer_cells(fig) -> list[tuple[float, float]]:
    """The (β, λ) of the cell outlined in each panel of Fig 6, read back from the tick labels."""
    cells = []
    for ax in panels(fig):
        marks = [
            patch
            for patch in ax.patches
            if isinstance(patch, Rectangle) and patch.get_edgecolor()[:3] == (1.0, 0.0, 0.0)
        ]
        assert len(marks) == 1, f"{ax.get_title()}: {len(marks)} marked cells"
        column, row = marks[0].get_xy()
        assert marks[0].get_width() == marks[0].get_height() == 1
        betas = [float(t.get_text()) for t in ax.get_yticklabels()]
        lambdas = [float(t.get_text()) for t in ax.get_xticklabels()]
        cells.append((betas[int(row)], lambdas[int(column)]))
    return cells


def test_fig6_marks_the_minimizer_the_scores_name(metrics, tmp_path):
    weights = [0.0, 0.5, 1.0]
    scores_path = tmp_path / "tchebycheff_scores.csv"
    score_grid(summarize(metrics), weights).to_csv(scores_path, index=False)
    scores = pd.read_csv(scores_path)
    named = scores[scores["minimizer"]].set_index("w1")
    pdf, png = outputs(tmp_path, "fig6")
    fig = tchebycheff.fig6_tchebycheff(scores_path, weights, pdf, png)
    assert_saved(pdf, png)
    assert [ax.get_title() for ax in panels(fig)] == [f"$w_1$ = {w:g}" for w in weights]
    assert minimizer_cells(fig) == [tuple(named.loc[w, ["beta", "lambda"]]) for w in weights]
    for ax, w1 in zip(panels(fig), weights, strict=True):
        expected = scores[scores["w1"] == w1].pivot(index="beta", columns="lambda", values="score")
        np.testing.assert_allclose(heatmap_values(ax, expected.shape), expected.to_numpy())

    # the figure marks what the table names, not its own argmin: move the mark of w1 = 0.5
    panel = scores["w1"] == 0.5
    other = scores.index[panel & ~scores["minimizer"]][0]
    scores.loc[panel, "minimizer"] = False
    scores.loc[other, "minimizer"] = True
    scores.to_csv(scores_path, index=False)
    moved = tchebycheff.fig6_tchebycheff(scores_path, [0.5], pdf, png)
    assert minimizer_cells(moved) == [tuple(scores.loc[other, ["beta", "lambda"]])]

    with pytest.raises(ValueError, match=r"no w1 = 0\.25"):
        tchebycheff.fig6_tchebycheff(scores, [0.25], pdf, png)


def test_lambda_position_is_log_linear_between_the_positive_columns():
    lambdas = [0.0, 8.0, 64.0]
    assert tchebycheff.lambda_position(8.0, lambdas) == pytest.approx(1.5)
    assert tchebycheff.lambda_position((8.0 * 64.0) ** 0.5, lambdas) == pytest.approx(2.0)
    assert tchebycheff.lambda_position(1.0e4, lambdas) == pytest.approx(2.5)  # clipped to the last
    assert tchebycheff.lambda_position(0.5, lambdas) == pytest.approx(1.5)  # never into λ = 0


def test_fig6_marks_each_adaptive_run_at_its_median_final_lambda(metrics, tmp_path):
    scores_path = tmp_path / "tchebycheff_scores.csv"
    score_grid(summarize(metrics), [0.5]).to_csv(scores_path, index=False)
    finals = {16.0: (2.0, 8.0, 32.0), 4.0: (16.0, 16.0, 64.0)}  # medians 8 and 16 (clipped)
    adaptive = pd.DataFrame(
        [{"dataset": "dsprites", "phase": "adaptive", "beta": beta, "seed": seed,
          "lambda": np.nan, "final_lambda": lam}
         for beta, lams in finals.items() for seed, lam in enumerate(lams)]
    )  # fmt: skip
    pdf, png = outputs(tmp_path, "fig6")
    fig = tchebycheff.fig6_tchebycheff(scores_path, [0.5], pdf, png, adaptive=adaptive)
    assert_saved(pdf, png)
    (ax,) = panels(fig)
    marks = sorted(
        (line.get_ydata()[0], line.get_xdata()[0])
        for line in ax.get_lines()
        if line.get_marker() == "D"
    )
    rows = {beta: k for k, beta in enumerate(BETAS)}
    height = tchebycheff.ADAPTIVE_MARK_HEIGHT
    expected = sorted(
        (rows[beta] + height, tchebycheff.lambda_position(np.median(lams), LAMBDAS))
        for beta, lams in finals.items()
    )
    np.testing.assert_allclose(marks, expected)
    assert [y - height for y, _ in expected] == [1, 2]  # rows of β = 4, 16
    no_runs = adaptive.iloc[:0]
    unmarked = tchebycheff.fig6_tchebycheff(scores_path, [0.5], pdf, png, adaptive=no_runs)
    assert not [line for line in panels(unmarked)[0].get_lines() if line.get_marker() == "D"]


def test_fig9_rows_are_latents_by_kl_labelled_with_it(tmp_path):
    rng = np.random.default_rng(2)
    kl = np.array([0.01, 3.5, 0.9])
    order = np.argsort(-kl)
    steps = 5
    path = tmp_path / "traversals.npz"
    np.savez(path, index=np.array(7), original=rng.integers(0, 256, (64, 64, 1), dtype=np.uint8),
             values=np.linspace(-3, 3, steps), order=order, kl=kl,
             images=rng.integers(0, 256, (3, steps, 64, 64, 1), dtype=np.uint8))  # fmt: skip
    pdf, png = outputs(tmp_path, "fig9")
    fig = images.fig9_traversals([path, path], SETTINGS[:2], pdf, png)
    assert_saved(pdf, png)
    first, second = panels(fig)
    labels = [t.get_text() for t in first.get_yticklabels()]
    assert labels == ["z1 · KL 3.50", "z2 · KL 0.90", "z0 · KL 0.01"]
    assert first.get_xlabel() == "z from -3 to 3"
    assert second.get_title().endswith(common.setting_title(SETTINGS[1]))
    ((image,),) = [first.get_images()]
    assert image.get_array().shape[:2] == (3 * (64 + 2), steps * 64 + (steps - 1) * 2)
    with pytest.raises(ValueError):
        images.fig9_traversals([path], SETTINGS[:2], pdf, png)


def test_fig_adaptive_draws_lambda_and_the_rate_against_its_set_point(tmp_path):
    runs, curves = [], []
    for beta in (64.0, 1024.0):
        for seed in (0, 1):
            steps = np.arange(1, 6) * 10
            lam = 10.0 * (1 + seed + steps / beta)
            curve = pd.DataFrame(
                {"step": steps, "lam": lam, "kl_average": steps / 10.0, "set_point": 4.0}
            )
            curves.append(tmp_path / f"curve_{beta:g}_{seed}.csv")
            curve.to_csv(curves[-1], index=False)
            runs.append({"dataset": "dsprites", "beta": beta, "seed": seed})
    pdf, png = outputs(tmp_path, "fig_adaptive")
    fig = adaptive.fig_adaptive(curves, runs, pdf, png)
    assert_saved(pdf, png)
    lam_ax, kl_ax = panels(fig)
    assert lam_ax.get_yscale() == "log"
    drawn = [line.get_ydata() for line in lam_ax.get_lines()]
    assert len(drawn) == 4  # one line per seed and β
    np.testing.assert_allclose(drawn[3], pd.read_csv(curves[3])["lam"])
    set_points = [line for line in kl_ax.get_lines() if line.get_linestyle() == "--"]
    assert len(set_points) == 4 and all((line.get_ydata() == 4.0).all() for line in set_points)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["β = 64", "β = 1024", "set point"]
    with pytest.raises(ValueError, match="3 curves for 4 runs"):
        adaptive.fig_adaptive(curves[:3], runs, pdf, png)


def write_model_outputs(root: Path, settings: list[dict], k: int = 3) -> tuple[list, list]:
    """reconstructions.npz and mi_matrix.csv per setting, as the evaluation stage writes them."""
    rng = np.random.default_rng(1)
    factor_names = {"dsprites": ["shape", "scale", "pos_x"], "shapes3d": ["floor_hue", "shape"]}
    channels = {"dsprites": 1, "shapes3d": 3}
    npz, csv = [], []
    for i, setting in enumerate(settings):
        name = setting["dataset"]
        folder = root / f"model{i}"
        folder.mkdir()
        originals = rng.integers(0, 256, (k, 64, 64, channels[name]), dtype=np.uint8)
        np.savez(folder / "reconstructions.npz", originals=originals,
                 reconstructions=255 - originals, indices=np.arange(k) * 3)  # fmt: skip
        mi = pd.DataFrame(rng.uniform(0, 1.2, (4, len(factor_names[name]))),
                          columns=factor_names[name])  # fmt: skip
        mi.rename_axis("latent").reset_index().to_csv(folder / "mi_matrix.csv", index=False)
        npz.append(folder / "reconstructions.npz")
        csv.append(folder / "mi_matrix.csv")
    return npz, csv


SETTINGS = [
    {"dataset": "dsprites", "beta": 1.0, "lambda": 0.0, "phase": "finetune"},
    {"dataset": "dsprites", "beta": 16.0, "lambda": 8.0, "phase": "finetune",
     "requested_beta": 8, "requested_lambda": 32},
    {"dataset": "shapes3d", "beta": 1.0, "lambda": 0.0, "phase": "stabilize"},
]  # fmt: skip


def test_fig7_reconstructions(tmp_path):
    npz, _ = write_model_outputs(tmp_path, SETTINGS)
    pdf, png = outputs(tmp_path, "fig7")
    fig = images.fig7_reconstructions(npz, SETTINGS, pdf, png, max_images=2)
    assert_saved(pdf, png)
    dsprites, shapes3d = panels(fig)
    assert (dsprites.get_title(), shapes3d.get_title()) == ("dSprites", "Shapes3D")
    assert [t.get_text() for t in dsprites.get_yticklabels()] == [
        "originals", "β=1, λ=0", "β=16, λ=8 (nearest to β=8, λ=32)"
    ]  # fmt: skip
    # top row: the first two originals; below a white gap, each model's reconstructions
    (image,) = dsprites.get_images()
    shown = np.asarray(image.get_array())
    gap = max(2, 64 // 16)
    with np.load(npz[0]) as first, np.load(npz[1]) as second:
        originals = common.tile_images(first["originals"][:2])
        np.testing.assert_array_equal(shown[:64], originals[..., 0])
        assert (shown[64 : 64 + gap] == 255).all()
        np.testing.assert_array_equal(
            shown[64 + gap : 128 + gap], common.tile_images(first["reconstructions"][:2])[..., 0]
        )
        np.testing.assert_array_equal(
            shown[-64:], common.tile_images(second["reconstructions"][:2])[..., 0]
        )
    (colour,) = shapes3d.get_images()
    assert np.asarray(colour.get_array()).shape == (2 * 64 + gap, 2 * 64 + 2, 3)
    with pytest.raises(ValueError, match="must pair"):
        images.fig7_reconstructions(npz[:2], SETTINGS, pdf, png)


def test_fig7_refuses_models_that_reconstructed_different_images(tmp_path):
    npz, _ = write_model_outputs(tmp_path, SETTINGS[:2])
    with np.load(npz[1]) as data:
        arrays = dict(data)
    np.savez(npz[1], **{**arrays, "indices": arrays["indices"] + 1})
    with pytest.raises(ValueError, match="reconstruct different images of dsprites"):
        images.fig7_reconstructions(npz, SETTINGS[:2], *outputs(tmp_path, "fig7"))


def test_fig8_panels_of_a_dataset_share_one_colour_scale(tmp_path):
    _, csv = write_model_outputs(tmp_path, SETTINGS)
    pdf, png = outputs(tmp_path, "fig8")
    fig = information.fig8_mi_heatmaps(csv, SETTINGS, pdf, png)
    assert_saved(pdf, png)
    matrices = [pd.read_csv(path).set_index("latent") for path in csv]
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == [common.setting_title(s) for s in SETTINGS]
    for ax, matrix in zip(axes, matrices, strict=True):
        # latent 0 is the top row (the y axis is inverted)
        np.testing.assert_allclose(heatmap_values(ax, matrix.shape), matrix.to_numpy())
        assert ax.yaxis_inverted()
        assert [t.get_text() for t in ax.get_xticklabels()] == list(matrix.columns)
    # the dSprites panels share one scale from 0 to the largest MI of either, different from
    # each panel's own largest MI; the colour bar of the row shows that same scale
    largest = [float(matrix.to_numpy().max()) for matrix in matrices]
    assert largest[0] != largest[1]
    for members, vmax in (([0, 1], max(largest[:2])), ([2], largest[2])):
        for i in members:
            norm = heatmap_mesh(axes[i]).norm
            assert (norm.vmin, norm.vmax) == (0.0, pytest.approx(vmax)), SETTINGS[i]
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 2
    for bar, vmax in zip(colour_bars, (max(largest[:2]), largest[2]), strict=True):
        assert bar.get_ylim() == pytest.approx((0.0, vmax))
        assert bar.get_ylabel() == information.MI_LABEL

    pd.read_csv(csv[0]).drop(columns="latent").to_csv(csv[0], index=False)
    with pytest.raises(ValueError, match="needs a 'latent' column"):
        information.fig8_mi_heatmaps(csv, SETTINGS, pdf, png)


def test_setting_titles_say_what_was_used():
    assert common.setting_title(SETTINGS[0]) == "β=1, λ=0"
    assert common.setting_title(SETTINGS[1]) == "β=16, λ=8\n(nearest to β=8, λ=32)"
    assert common.setting_title(SETTINGS[2]) == "β=1, λ=0 (stabilized)"


def test_entry_point_draws_the_figure_it_is_asked_for(
    metrics, tmp_path, monkeypatch, fake_snakemake
):
    metrics_path = tmp_path / "deep_metrics.csv"
    metrics.to_csv(metrics_path, index=False)
    pdf, png = outputs(tmp_path, "fig4")
    drawn = []
    monkeypatch.setattr(sweeps, "save_figure", lambda fig, *paths: drawn.append((fig, paths)))

    def run(figure: str) -> None:
        snakemake = fake_snakemake(
            input={"metrics": str(metrics_path)},
            params={"figure": figure},
            output={"pdf": str(pdf), "png": str(png)},
            log=[str(tmp_path / "plot.log")],
        )
        runpy.run_path(str(SCRIPTS / "plot_deep.py"), init_globals={"snakemake": snakemake})

    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    monkeypatch.setattr(logging.getLogger("lambdabeta"), "handlers", [])
    run("fig4")
    ((fig, paths),) = drawn
    assert paths == (str(pdf), str(png))
    assert [ax.get_title() for ax in panels(fig)] == [axis_label(m) for m in sweeps.SWEEP_METRICS]
    with pytest.raises(ValueError, match=r"params\.figure is 'fig10'"):
        run("fig10")
