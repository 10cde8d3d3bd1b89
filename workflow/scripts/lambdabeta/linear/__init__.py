"""The linear-Gaussian λβ-VAE in closed form (paper §3-4, §5.1).

Data model: factors V ~ N(0, Σ_V) with Σ_V diagonal, observations Y = ΓV + noise,
Σ_Y = ΓΣ_VΓᵀ + σ²I_n. Encoder X = BY + W, W ~ N(0, Σ_W); decoder Ŷ = AX + Z, Z ~ N(0, Σ_Z);
prior N(0, I_m). Every term of the objective is a function of covariances (no sampling).

Modules, one concern each:

- ``instance``          the instance (Γ, Σ_V, σ²), its files and seeds
- ``objective``         closed-form NLL, KL, L2, the loss, the optimal decoder and encoder
- ``parameterization``  AdamW's covariance parameterisations, the loss and its gradients
- ``lapack``            the n × n work of those gradients on the CPU, per matrix through LAPACK
- ``fixed_point``       fixed-point iteration of Lemma 4.2
- ``adamw``             batched AdamW
- ``shards``            batched AdamW over several CPU processes (a job's threads)
- ``starts``            the restarts' starting points (``linear.init``)
- ``coupling``          SAP, I_m, I(X; V), the information rank, distances from the trivial
                        solution
- ``closed_form``       the stationary points in closed form: the oracle of both solvers
- ``phase``             the phase diagram measured with the fixed point: critical β, rays
- ``study``             a (β, λ) grid → its table; the contraction traces
- ``settings``          typed settings from the config (``LinearSettings``)
- ``jobs``              one job description per rule, from those settings
- ``reference``         per-restart reference solvers (tests and benchmarks)

The public names of those modules are importable from here. They are loaded on first use, so
that importing ``lambdabeta.linear.settings`` (standard library only) does not import torch.
"""

from __future__ import annotations

from ..exports import lazy_exports

_EXPORTS = {
    "instance": (
        "DTYPE",
        "Instance",
        "Operators",
        "derived_seed",
        "load_instance",
        "make_instance",
        "random_instance",
        "save_instance",
        "starts_seed",
    ),
    "objective": (
        "Params",
        "decoder_optimum",
        "encoder_optimum",
        "loss",
        "objective_terms",
        "stationarity_residual",
    ),
    "parameterization": (
        "LogCholesky",
        "ProjectedCholesky",
        "parameterization_named",
    ),
    "lapack": ("precision_products", "factor_gradient", "use_threads"),
    "fixed_point": ("FixedPointResult", "run_fixed_point"),
    "adamw": (
        "GRADIENT_BLOCK",
        "AdamWResult",
        "adamw_update_",
        "blockwise_loss_and_gradients",
        "run_adamw",
    ),
    "shards": ("run_adamw_in_processes", "shard_slices"),
    "starts": ("INITS", "initial_params", "random_spd"),
    "coupling": (
        "distances_from_trivial",
        "im_from_mutual_information",
        "information_rank",
        "latent_signal_to_noise",
        "mutual_information_from_correlations",
        "sap_from_correlations",
        "squared_correlations",
        "total_mutual_information",
    ),
    "closed_form": (
        "c_for_information",
        "predicted_critical_betas",
        "knob",
        "lambda_for_information",
        "sigma_y_spectrum",
        "stationary_point",
        "stationary_spectrum",
        "stationary_terms",
    ),
    "phase": ("PhaseSolver", "measured_critical_betas", "rank_map", "rays", "run_phase"),
    "study": (
        "GridEntries",
        "adamw_step_seconds",
        "contraction_traces",
        "grid_entries",
        "metrics_table",
        "run_contraction",
        "run_grid",
        "run_study",
    ),
    "settings": ("AdamWSettings", "ContractionSettings", "LinearSettings", "PhaseSettings"),
    "jobs": (
        "AdamWRun",
        "ContractionJob",
        "Dims",
        "PhaseJob",
        "FixedPointSettings",
        "InstanceJob",
        "StudyJob",
    ),
    "reference": ("ProjectedCholeskyReference", "adamw_reference", "fixed_point_reference"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
