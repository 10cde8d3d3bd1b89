"""The paper's claims, each judged from this run's own tables with seed-level uncertainty.

Every claim is a small function, registered with its id, source, statement and the tables it
reads (``registry.claim``), that returns claim rows (``COLUMNS``): one row per (claim, scope),
the scope being a linear instance and method (``n30_m6_s3 adamw``) or a dataset. The verdict
rules live in :mod:`lambdabeta.statistics`:

- Linear claims are statements about every restart (Theorem 3.2 holds for any start). The effect
  is the fraction of restarts that satisfy the claim, with its exact 95 % Clopper-Pearson
  interval; one restart that does not satisfy it makes the claim ``not reproduced``.
- Deep claims compare settings paired by seed (the same seed at another β, or the same seed and
  β at another λ): the effect is a mean over seeds of paired differences, tested one-sided at
  ``claims.level`` (Student t, or the exact sign-flip test) in both directions
  (:mod:`lambdabeta.statistics`): reproduced when the claim's null is rejected, not reproduced
  when the claim itself is.
- A claim that holds "for every" part (every high β, every λ > 0) is an intersection-union test
  (every part at the level); one that holds for "some" part (some intermediate β, some λ)
  corrects for the choice (Bonferroni), and so does every refutation by "some part"
  (``statistics.all_of``, ``any_of``); the row reports the part that decided and ``detail``
  lists them all.
- Fewer seeds (restarts) than ``min_seeds`` (``min_restarts``) make a claim ``inconclusive``
  whatever its test; so does a procedure that cannot reach the level with so few seeds; a grid
  without the settings a claim compares makes it ``not run``.

Modules: ``tables`` (the tables claims read, standard library only), ``registry`` (the
decorator, the rows), ``settings`` (the ``claims`` config section and the tests bound to it),
``linear``, ``theory``, ``deep``, ``restoration``, ``selection``, ``qualitative`` and
``adaptive`` (the claims), ``judge`` (``judge_claims``, ``read_tables``), ``report`` (Markdown
and the report's verdict table). Names are loaded on first use, so that the workflow definition
can import ``lambdabeta.claims.tables`` without pandas.
"""

from __future__ import annotations

from ..exports import lazy_exports

_EXPORTS = {
    "judge": ("CLAIMS", "judge_claims", "read_tables"),
    "registry": ("COLUMNS", "high_betas"),
    "settings": ("ClaimSettings",),
    "report": ("claims_markdown", "claims_rst", "verdict_counts", "verdict_groups",
               "verdict_lines", "verdict_sentence", "verdict_table_html"),
    "linear": ("late_contraction_factor", "linear_collapse", "linear_contraction_rate",
               "linear_lambda_prevents_collapse", "linear_no_collapse_at_beta_1",
               "linear_trivial_solution"),
    "deep": ("deep_collapse_strongest_on_mpi3d", "deep_disentanglement_peaks",
             "deep_nll_rises_with_beta", "deep_sampled_information_collapses",
             "deep_separate_knobs", "relative_deterioration"),
    "restoration": ("deep_lambda_improves_reconstruction",
                    "deep_lambda_preserves_disentanglement"),
    "selection": ("selection_lambda_recovers_nll", "selection_optimum_moves_to_high_beta"),
    "theory": ("linear_closed_form_matches_solvers", "linear_collapse_cascade",
               "linear_no_minimiser_at_beta_1", "linear_one_knob", "linear_phase_boundary",
               "linear_mean_metrics_blind_to_collapse", "ray_spreads"),
    "qualitative": ("mi_concentration", "qualitative_mi_concentrated"),
    "adaptive": ("adaptive_holds_target", "adaptive_linear_exact", "adaptive_matches_best_static"),
}  # fmt: skip
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
