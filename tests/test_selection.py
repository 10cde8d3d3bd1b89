"""Augmented Tchebycheff selection and Pareto fronts on grids small enough to compute by hand."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lambdabeta.selection import (
    augmented_tchebycheff,
    first_minimum,
    minmax_normalize,
    objectives,
    pareto_front,
    reconstruction_column,
    score_grid,
    select,
    tchebycheff_scores,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
RHO = 1e-3


def summary_of(points: dict[tuple[float, float], tuple[float, float]], dataset="toy"):
    """A deep_summary with finetuned rows {(β, λ): (NLL, MIG)} and one stabilized row.

    The NLL is the training BCE (the paper's); the evaluation NLL runs the other way
    (200 − NLL), so a selection on the wrong column picks other points.
    """
    rows = [
        {"dataset": dataset, "phase": "finetune", "beta": b, "lambda": lam,
         "train_bce_mean": nll, "recon_nll_mean": 200.0 - nll, "mig_mean": mig}
        for (b, lam), (nll, mig) in points.items()
    ]  # fmt: skip
    # a stabilized model outside the finetuned grid must not take part in the selection
    rows.append({"dataset": dataset, "phase": "stabilize", "beta": 1.0, "lambda": 0.0,
                 "train_bce_mean": 1.0, "recon_nll_mean": 1.0, "mig_mean": 0.99})  # fmt: skip
    return pd.DataFrame(rows)


# f1 = NLL: 100, 110, 140, 120 → f̄1 = 0, 0.25, 1, 0.5
# f2 = 1 − MIG: 0.9, 0.7, 0.5, 0.4 → f̄2 = 1, 0.6, 0.2, 0
GRID = {(1.0, 0.0): (100.0, 0.1), (1.0, 4.0): (110.0, 0.3),
        (4.0, 0.0): (140.0, 0.5), (4.0, 4.0): (120.0, 0.6)}  # fmt: skip


def test_minmax_normalize():
    np.testing.assert_allclose(minmax_normalize([2.0, 4.0, 6.0, 3.0]), [0, 0.5, 1, 0.25])
    np.testing.assert_array_equal(minmax_normalize([7.0, 7.0, 7.0]), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        minmax_normalize([1.0, np.nan])
    with pytest.raises(ValueError, match="empty"):
        minmax_normalize([])


def test_augmented_tchebycheff_by_hand():
    # max(0.5·0.2, 0.5·0.6) + ρ·(0.1 + 0.3)
    assert augmented_tchebycheff(0.2, 0.6, 0.5, RHO) == pytest.approx(0.3 + RHO * 0.4)
    # w1 = 0.8: max(0.16, 0.2·0.6 = 0.12) + ρ·0.28
    assert augmented_tchebycheff(0.2, 0.6, 0.8, RHO) == pytest.approx(0.16 + RHO * 0.28)
    np.testing.assert_allclose(augmented_tchebycheff([0, 1], [1, 0], 1.0, 0.0), [0, 1])
    with pytest.raises(ValueError, match="w1"):
        augmented_tchebycheff(0.1, 0.1, 1.5)


def test_objectives_normalise_over_the_finetuned_grid():
    grid = objectives(summary_of(GRID), "toy")
    assert list(zip(grid["beta"], grid["lambda"], strict=True)) == list(GRID)
    np.testing.assert_allclose(grid["f1_norm"], [0, 0.25, 1, 0.5])
    np.testing.assert_allclose(grid["f2_norm"], [1, 0.6, 0.2, 0])


def test_scores_table_by_hand():
    table = tchebycheff_scores(summary_of(GRID), "toy", 0.5, RHO)
    assert list(table.index) == [1.0, 4.0] and list(table.columns) == [0.0, 4.0]
    expected = [[0.5 + 0.0005 * 1.0, 0.3 + 0.0005 * 0.85],
                [0.5 + 0.0005 * 1.2, 0.25 + 0.0005 * 0.5]]  # fmt: skip
    np.testing.assert_allclose(table.to_numpy(), expected)


@pytest.mark.parametrize(
    ("w1", "beta", "lam", "score"),
    [
        (0.5, 4.0, 4.0, 0.25025),  # S = 0.500 5, 0.300 425, 0.500 6, 0.250 25
        (1.0, 1.0, 0.0, 0.0),  # reconstruction only: the least NLL
        (0.0, 4.0, 4.0, 0.0),  # disentanglement only: the largest MIG
        # w1 = 0.8: (1, 0) and (1, 4) both have max term 0.2; the augmentation
        # ρ·(0 + 0.2) < ρ·(0.2 + 0.12) decides for (1, 0)
        (0.8, 1.0, 0.0, 0.2 + RHO * 0.2),
    ],
)
def test_select_hand_computed_minimisers(w1, beta, lam, score):
    chosen = select(summary_of(GRID), [w1], RHO).iloc[0]
    assert (chosen["beta"], chosen["lambda"]) == (beta, lam)
    assert chosen["score"] == pytest.approx(score)
    assert chosen["train_bce"] == GRID[(beta, lam)][0]
    assert chosen["mig"] == GRID[(beta, lam)][1]


def test_select_table_one_row_per_dataset_and_weight():
    summary = pd.concat([summary_of(GRID, "a"), summary_of(GRID, "b")], ignore_index=True)
    table = select(summary, [0.0, 0.5, 1.0], RHO)
    assert list(table.columns) == ["dataset", "w1", "beta", "lambda", "score", "train_bce", "mig",
                                   "f1_norm", "f2_norm", "pareto_optimal"]  # fmt: skip
    assert list(zip(table["dataset"], table["w1"], strict=True)) == [
        ("a", 0.0), ("a", 0.5), ("a", 1.0), ("b", 0.0), ("b", 0.5), ("b", 1.0)
    ]  # fmt: skip
    assert table["pareto_optimal"].all()


def test_ties_go_to_the_smallest_beta_then_lambda():
    # (1, 4), (4, 0) and (4, 4) share the best MIG: with w1 = 0 their scores tie exactly
    tied = {(1.0, 0.0): (100.0, 0.1), (1.0, 4.0): (130.0, 0.6),
            (4.0, 0.0): (120.0, 0.6), (4.0, 4.0): (110.0, 0.6)}  # fmt: skip
    chosen = select(summary_of(tied), [0.0], RHO).iloc[0]
    assert (chosen["beta"], chosen["lambda"]) == (1.0, 4.0)
    # (4, 4) is as disentangled and reconstructs better: the tie rule's pick is not Pareto-optimal,
    # and the table says so
    assert not chosen["pareto_optimal"]
    same_beta = {(2.0, 8.0): (100.0, 0.5), (2.0, 2.0): (100.0, 0.5), (8.0, 0.0): (100.0, 0.5)}
    chosen = select(summary_of(same_beta), [0.5], RHO).iloc[0]
    assert (chosen["beta"], chosen["lambda"]) == (2.0, 2.0)


def test_constant_objective_normalises_to_zero_and_the_other_decides():
    constant_mig = {(1.0, 0.0): (130.0, 0.3), (4.0, 0.0): (110.0, 0.3), (8.0, 0.0): (120.0, 0.3)}
    scores = score_grid(summary_of(constant_mig), [0.0, 0.5], RHO)
    assert (scores["f2_norm"] == 0).all() and np.isfinite(scores["score"]).all()
    chosen = select(summary_of(constant_mig), [0.0, 0.5], RHO)
    assert chosen.loc[0, "beta"] == 1.0  # w1 = 0: every S is 0, the tie rule picks β = 1
    assert chosen.loc[1, "beta"] == 4.0  # w1 = 0.5: the least NLL


def test_score_grid_marks_one_minimiser_per_dataset_and_weight():
    scores = score_grid(summary_of(GRID), [0.0, 0.3, 1.0], RHO)
    assert len(scores) == 12
    assert scores.groupby("w1")["minimizer"].sum().tolist() == [1, 1, 1]
    for _, group in scores.groupby("w1"):
        assert group.loc[group["minimizer"], "score"].iloc[0] == group["score"].min()


def test_pareto_front_of_hand_made_points():
    points = {
        (1.0, 0.0): (100.0, 0.1),  # best NLL: on the front
        (1.0, 4.0): (110.0, 0.3),  # on the front
        (4.0, 0.0): (140.0, 0.5),  # dominated by (4, 4)
        (4.0, 4.0): (120.0, 0.6),  # on the front
        (8.0, 0.0): (120.0, 0.6),  # identical to (4, 4): neither dominates, both on the front
        (8.0, 4.0): (110.0, 0.2),  # worse MIG than (1, 4) at equal NLL: dominated
    }
    front = pareto_front(summary_of(points), "toy")
    assert list(zip(front["beta"], front["lambda"], strict=True)) == [
        (1.0, 0.0), (1.0, 4.0), (4.0, 4.0), (8.0, 0.0)
    ]  # fmt: skip
    assert (front["dataset"] == "toy").all()


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="no finetuned models of the dataset 'other'"):
        objectives(summary_of(GRID), "other")
    broken = summary_of({**GRID, (8.0, 0.0): (np.nan, 0.2)})
    with pytest.raises(ValueError, match=r"not finite at \(β, λ\) = \[\(8\.0, 0\.0\)\]"):
        select(broken, [0.5])
    with pytest.raises(ValueError, match="lacks the columns"):
        objectives(summary_of(GRID).drop(columns="mig_mean"), "toy")


def test_entry_point_writes_selection_scores_and_fronts(tmp_path, monkeypatch, fake_snakemake):
    summary_path = tmp_path / "deep_summary.csv"
    summary_of(GRID).to_csv(summary_path, index=False)
    snakemake = fake_snakemake(
        input={"summary": str(summary_path)},
        params={
            "rho": RHO,
            "weights": [0.0, 0.5, 1.0],
            "heatmap_weights": [0.5, 0.25],
            "reconstruction_metric": "train_bce",
        },
        output={
            "selection": tmp_path / "selection.csv",
            "scores": tmp_path / "tchebycheff_scores.csv",
            "pareto": tmp_path / "pareto_front.csv",
        },
        log=[str(tmp_path / "select.log")],
    )
    outputs = snakemake.output
    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    monkeypatch.setattr(logging.getLogger("lambdabeta"), "handlers", [])
    runpy.run_path(
        str(SCRIPTS / "select_hyperparameters.py"), init_globals={"snakemake": snakemake}
    )

    selection = pd.read_csv(outputs.selection)
    assert selection["w1"].tolist() == [0.0, 0.5, 1.0]
    scores = pd.read_csv(outputs.scores)
    assert sorted(scores["w1"].unique()) == [0.0, 0.25, 0.5, 1.0]  # weights ∪ heatmap weights
    assert {"f1_norm", "f2_norm", "score", "minimizer"} <= set(scores)
    assert len(pd.read_csv(outputs.pareto)) == 3
    assert "w1=0.5: β=4, λ=4" in Path(snakemake.log[0]).read_text()


def test_reconstruction_metric_chooses_the_f1_column():
    assert reconstruction_column("train_bce") == "train_bce"
    assert reconstruction_column("eval_nll") == "recon_nll"
    with pytest.raises(ValueError, match="unknown reconstruction metric 'bce'"):
        reconstruction_column("bce")
    # the evaluation NLL of summary_of runs against the training BCE: w1 = 1 picks its least
    by_eval = select(summary_of(GRID), [1.0], RHO, reconstruction="eval_nll").iloc[0]
    assert (by_eval["beta"], by_eval["lambda"]) == (4.0, 0.0)  # 200 − 140, the least
    assert by_eval["recon_nll"] == 60.0 and "train_bce" not in by_eval
    front = pareto_front(summary_of(GRID), "toy", "eval_nll")
    assert "recon_nll" in front and "train_bce" not in front


def test_first_minimum_breaks_ties_towards_the_first_grid_point():
    assert first_minimum(np.array([0.3, 0.1, 0.1 + 1e-13, 0.2])) == 1
    assert first_minimum(np.array([0.3, 0.1 + 1e-13, 0.1, 0.2])) == 1  # within the tolerance
    assert first_minimum(np.array([0.3, 0.1 + 1e-6, 0.1, 0.2])) == 2
    # many grids at once (one per row): one index per row
    many = np.array([[0.2, 0.1, 0.1], [0.0, 0.5, 0.0]])
    np.testing.assert_array_equal(first_minimum(many), [1, 0])


def test_minmax_normalize_along_an_axis():
    values = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    np.testing.assert_allclose(minmax_normalize(values, axis=-1), [[0, 1, 0.5], [0, 0, 0]])
