"""Figures 4-8 render from tiny tables, and the helpers behind them behave."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lambdabeta.aggregate import changes_vs_baseline, summarize
from lambdabeta.plots import deep, heatmaps
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


def assert_written(*paths: Path) -> None:
    for path in paths:
        assert path.is_file() and path.stat().st_size > 1000, path


def outputs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"


# ---- helpers --------------------------------------------------------------------------------


def test_nearest_setting_exact_and_log_scale():
    grid = [(1, 0), (8, 0), (8, 32), (16, 0), (16, 32)]
    assert deep.nearest_setting((8, 32), grid) == (8, 32)
    # log2 12 = 3.58 is nearer to log2 16 = 4 than to 3, though 12 − 8 = 16 − 12
    assert deep.nearest_setting((12, 30), grid) == (16, 32)
    assert deep.nearest_setting((256, 0), grid) == (16, 0)
    assert deep.nearest_setting((0.5, 100), grid) == (1, 0)


def test_nearest_setting_beta_first_then_lambda_and_ties():
    # β decides first even when another β offers the exact λ
    assert deep.nearest_setting((4, 32), [(2, 0), (16, 32)]) == (2, 0)
    # log2 distances tie (2 is as far from 1 as from 4): the smaller β; λ 2 between 0 and 4: 0
    assert deep.nearest_setting((2, 2), [(4, 0), (1, 4), (1, 0)]) == (1, 0)
    with pytest.raises(ValueError, match="positive"):
        deep.nearest_setting((0, 0), [(1, 0)])
    with pytest.raises(ValueError, match="no settings"):
        deep.nearest_setting((1, 0), [])


def test_compact_number_and_tile_images():
    assert [heatmaps.compact_number(v) for v in (6012.4, 41.25, 0.271, np.nan)] == [
        "6012", "41.2", "0.27", ""
    ]  # fmt: skip
    images = np.arange(2 * 3 * 4 * 1, dtype=np.uint8).reshape(2, 3, 4, 1)
    strip = deep.tile_images(images, gap=1, fill=255)
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
    deep.fig4_beta_sweep(metrics, pdf, png)
    assert_written(pdf, png)
    with pytest.raises(ValueError, match="no stabilize rows"):
        deep.fig4_beta_sweep(metrics[metrics["phase"] == "finetune"], pdf, png)
    with pytest.raises(ValueError, match="no rows for the datasets"):
        deep.fig4_beta_sweep(metrics, pdf, png, datasets=["shapes3d"])


def test_fig5_lambda_heatmaps_from_a_csv(metrics, tmp_path):
    summary_path = tmp_path / "deep_summary.csv"
    changes_vs_baseline(summarize(metrics)).to_csv(summary_path, index=False)
    pdf, png = outputs(tmp_path, "fig5")
    deep.fig5_lambda_heatmaps(summary_path, pdf, png)
    assert_written(pdf, png)


def test_fig6_tchebycheff(metrics, tmp_path):
    scores = score_grid(summarize(metrics), [0.0, 0.5, 1.0])
    pdf, png = outputs(tmp_path, "fig6")
    deep.fig6_tchebycheff(scores, [0.0, 0.5, 1.0], pdf, png)
    assert_written(pdf, png)
    with pytest.raises(ValueError, match=r"no w1 = 0\.25"):
        deep.fig6_tchebycheff(scores, [0.25], pdf, png)


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
    deep.fig7_reconstructions(npz, SETTINGS, pdf, png, max_images=2)
    assert_written(pdf, png)
    with pytest.raises(ValueError, match="must pair"):
        deep.fig7_reconstructions(npz[:2], SETTINGS, pdf, png)


def test_fig7_refuses_models_that_reconstructed_different_images(tmp_path):
    npz, _ = write_model_outputs(tmp_path, SETTINGS[:2])
    with np.load(npz[1]) as data:
        arrays = dict(data)
    np.savez(npz[1], **{**arrays, "indices": arrays["indices"] + 1})
    with pytest.raises(ValueError, match="reconstruct different images of dsprites"):
        deep.fig7_reconstructions(npz, SETTINGS[:2], *outputs(tmp_path, "fig7"))


def test_fig8_mi_heatmaps(tmp_path):
    _, csv = write_model_outputs(tmp_path, SETTINGS)
    pdf, png = outputs(tmp_path, "fig8")
    deep.fig8_mi_heatmaps(csv, SETTINGS, pdf, png)
    assert_written(pdf, png)
    pd.read_csv(csv[0]).drop(columns="latent").to_csv(csv[0], index=False)
    with pytest.raises(ValueError, match="needs a 'latent' column"):
        deep.fig8_mi_heatmaps(csv, SETTINGS, pdf, png)


def test_setting_titles_say_what_was_used():
    assert deep._setting_title(SETTINGS[0]) == "β=1, λ=0"
    assert deep._setting_title(SETTINGS[1]) == "β=16, λ=8\n(nearest to β=8, λ=32)"
    assert deep._setting_title(SETTINGS[2]) == "β=1, λ=0 (stabilized)"


def test_entry_point_draws_the_figure_it_is_asked_for(metrics, tmp_path, monkeypatch):
    metrics_path = tmp_path / "deep_metrics.csv"
    metrics.to_csv(metrics_path, index=False)
    pdf, png = outputs(tmp_path, "fig4")

    def run(figure: str) -> None:
        snakemake = SimpleNamespace(
            input=SimpleNamespace(metrics=str(metrics_path)),
            params=SimpleNamespace(figure=figure),
            output=SimpleNamespace(pdf=str(pdf), png=str(png)),
            log=[str(tmp_path / "plot.log")],
        )
        runpy.run_path(str(SCRIPTS / "plot_deep.py"), init_globals={"snakemake": snakemake})

    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    monkeypatch.setattr(logging.getLogger("lambdabeta"), "handlers", [])
    run("fig4")
    assert_written(pdf, png)
    with pytest.raises(ValueError, match=r"params\.figure is 'fig9'"):
        run("fig9")
