"""The score vocabulary (lambdabeta.scores): one entry per quantity, every name derived from it,
and a new score reaching the tables, the summaries, a figure and the claims from its entry and
its scoring function alone."""

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
import torch
from test_evaluate import SETTINGS, write_curve, write_prepared_dataset

from lambdabeta import aggregate, effects, scores
from lambdabeta.claims.registry import DEEP_VIEWS
from lambdabeta.evaluate import evaluate_checkpoint
from lambdabeta.evaluation import scorers
from lambdabeta.evaluation.results import write_evaluation
from lambdabeta.evaluation.settings import EvaluationSettings
from lambdabeta.model import VAE, save_model
from lambdabeta.plots import dispatch, style, sweeps


def test_columns_labels_and_formats_come_from_one_entry():
    mig = scores.QUANTITIES["mig"]
    assert [mig.column(r) for r in mig.representations] == ["mig", "mig_sampled", "mig_active"]
    assert mig.null_columns("sampled") == ("mig_sampled_null_mean", "mig_sampled_null_upper")
    assert mig.null_columns("active") == ()  # no null is drawn for the pruned copy
    assert scores.quantity("sap_sampled") is scores.QUANTITIES["sap"]
    assert scores.representation_of("sap_sampled") == "sampled"
    assert scores.label("im_sampled") == "I_m (sampled z)"
    assert scores.label("im", "latex") == "$I_m$"
    assert style.axis_label("mig_sampled") == "MIG (sampled z)"
    assert scores.decimals("im") == 2 and scores.decimals("not_a_score") == 3
    assert scores.lower_is_better("recon_nll") and not scores.lower_is_better("mig")
    with pytest.raises(KeyError, match="active"):
        scores.QUANTITIES["dci_disentanglement"].column("active")
    columns = scores.all_columns()
    assert len(columns) == len(set(columns))


def test_every_readable_score_has_a_column_in_the_readable_tables():
    # sap_sampled once had no display format, and the readable summaries silently left it out
    readable = scores.readable_columns()
    for quantity in scores.scores():
        for representation in ("mean", "sampled"):
            if quantity.readable:
                assert quantity.column(representation) in readable
    assert "dci_informativeness_train" not in readable and "mig_active" not in readable


def test_every_group_has_a_scoring_function_and_back():
    groups = {q.group for q in scores.scores()}
    assert groups == set(scorers.SCORERS)
    assert all(q.group is None for q in scores.QUANTITIES.values() if not q.is_score)


def test_a_taken_name_or_column_is_refused():
    with pytest.raises(ValueError, match="registered already"):
        scores.register(scores.QUANTITIES["mig"])
    clash = scores.Quantity("mig_sampled", "x", "x", "x", 3, True)
    with pytest.raises(ValueError, match="taken"):
        scores.register(clash)
    with pytest.raises(ValueError, match="encoder mean"):
        scores.Quantity("x", "x", "x", "x", 3, True, ("sampled",))


# ---- a new score, end to end -------------------------------------------------------------------


def spread_score(codes: scorers.Codes) -> scorers.Scored:
    """A toy score: the mean over latents of the codes' standard deviation."""
    return scorers.Scored(values={"spread": float(codes.train[0].std(axis=0).mean())})


@pytest.fixture
def spread():
    """The toy score registered (its entry and its scoring function), and removed after."""
    scores.register(
        scores.Quantity(
            "spread", "spread", "spread", "code spread", 2, True, ("mean", "sampled"),
            disentanglement=True, group="spread",
        )
    )  # fmt: skip
    scorers.SCORERS["spread"] = scorers.Scorer(spread_score)
    yield
    scores.unregister("spread")
    del scorers.SCORERS["spread"]


@pytest.fixture
def checkpoint(tmp_path):
    """A saved model of the real architecture, its prepared dataset and its training curve."""
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", VAE(in_channels=1, latent_dim=4), {"beta": 1.0})
    dataset = write_prepared_dataset(tmp_path / "toy")
    curve = write_curve(tmp_path / "curve.csv", [10, 20, 30, 40], [10] * 4, [9.0, 8.0, 7.0, 6.0])
    return tmp_path / "model.pt", dataset, curve


def test_a_registered_score_reaches_tables_summaries_figures_and_claims(
    spread, checkpoint, tmp_path
):
    settings = EvaluationSettings(
        **{**SETTINGS, "dci": {"num_train": 0}, "factor_vae": {"num_train": 0}}
    )
    result = evaluate_checkpoint(*checkpoint, settings)
    assert result.metrics["spread"] > 0 and result.metrics["spread_sampled"] > 0
    assert "spread_active" not in result.metrics

    # metrics.json of a small grid: 2 β × 2 λ × 2 seeds, the toy score shifted per model
    paths = []
    for beta in (1.0, 4.0):
        for lam in (0.0, 2.0):
            for seed in (0, 1):
                record = dict(result.metrics, spread=beta + lam + 0.1 * seed)
                path = tmp_path / f"{beta}_{lam}_{seed}" / "metrics.json"
                path.parent.mkdir()
                run = {"dataset": "toy", "phase": "finetune", "beta": beta, "lambda": lam,
                       "seed": seed}  # fmt: skip
                write_evaluation(
                    dataclasses.replace(result, metrics=record), metrics_path=path,
                    mi_matrix_path=path.with_name("mi.csv"),
                    reconstructions_path=path.with_name("r.npz"),
                    traversals_path=path.with_name("t.npz"), run=run,
                )  # fmt: skip
                paths.append(path)
    table = aggregate.collect_metrics(paths)
    assert {"spread", "spread_sampled"} <= set(table.columns)

    summary = aggregate.summarize(table, aggregate.metric_columns(table))
    assert summary["spread_mean"].tolist() == pytest.approx([1.05, 3.05, 4.05, 6.05])
    markdown = aggregate.summary_markdown(summary)
    assert re.search(r"\|\s+spread \|", markdown) and re.search(
        r"\|\s+spread \(sampled z\) \|", markdown
    )
    assert "spread (sampled z)" in aggregate.summary_latex(summary)

    lambda_effects = effects.lambda_effects(table, columns=effects.effect_metrics(table))
    assert lambda_effects["spread_change"].tolist() == pytest.approx([2.0, 2.0])

    assert "spread" in sweeps.other_score_columns(table)
    assert "fig4_scores" in dispatch.DEEP

    views = dict(DEEP_VIEWS(table))
    assert views["mean"]["spread"].tolist() == table["spread"].tolist()
    assert views["sampled"]["spread"].tolist() == table["spread_sampled"].tolist()


def test_a_view_never_shows_another_representations_score():
    table = pd.DataFrame(
        {"mig": [0.1], "sap": [0.2], "im": [0.3], "mig_sampled": [0.0], "sap_sampled": [0.0],
         "im_sampled": [0.0], "dci_disentanglement": [0.5]}
    )  # fmt: skip
    views = dict(DEEP_VIEWS(table))
    assert views["mean"]["dci_disentanglement"].tolist() == [0.5]
    # the sampled representation has no DCI column: the mean's must not stand in for it
    assert "dci_disentanglement" not in views["sampled"]
    assert np.isclose(views["sampled"]["mig"].iloc[0], 0.0)
