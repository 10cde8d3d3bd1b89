# Every figure is its own rule and target; figures read tables (or the small files evaluation
# writes), never models, so re-rendering one is cheap and retrains nothing.


rule fig2_linear_beta_sweep:
    input:
        metrics="results/tables/linear_metrics.csv",
    output:
        **figure_outputs("fig2_linear_beta_sweep", "fig2", "Linear-Gaussian study"),
    log:
        "logs/figures/fig2_linear_beta_sweep.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig2_linear_beta_sweep.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig2",
    script:
        "../scripts/plot_linear.py"


rule fig3_linear_lambda_heatmaps:
    input:
        summary="results/tables/linear_summary.csv",
    output:
        **figure_outputs("fig3_linear_lambda_heatmaps", "fig3", "Linear-Gaussian study"),
    log:
        "logs/figures/fig3_linear_lambda_heatmaps.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig3_linear_lambda_heatmaps.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig3",
    script:
        "../scripts/plot_linear.py"


rule fig_linear_contraction:
    input:
        traces=expand(
            "results/linear/{dims}/contraction.csv",
            dims=LINEAR_DIMS,
        ),
    output:
        **figure_outputs(
            "fig_linear_contraction", "fig_linear_contraction", "Linear-Gaussian study"
        ),
    log:
        "logs/figures/fig_linear_contraction.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig_linear_contraction.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="contraction",
    script:
        "../scripts/plot_linear.py"


rule fig_linear_phase:
    input:
        critical="results/tables/linear_phase.csv",
        maps=expand("results/linear/{dims}/phase_map.csv", dims=LINEAR_DIMS),
        summary="results/tables/linear_summary.csv",
    output:
        **figure_outputs("fig_linear_phase", "fig_linear_phase", "Linear-Gaussian study"),
    log:
        "logs/figures/fig_linear_phase.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig_linear_phase.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="phase",
    script:
        "../scripts/plot_linear.py"


rule fig4_beta_sweep:
    input:
        metrics="results/tables/deep_metrics.csv",
    output:
        **figure_outputs("fig4_beta_sweep", "fig4", "Deep λβ-VAE"),
    log:
        "logs/figures/fig4_beta_sweep.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig4_beta_sweep.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig4",
        datasets=DEEP.datasets,
        reconstruction_metric=DEEP.reconstruction_metric,
    script:
        "../scripts/plot_deep.py"


rule fig4_beta_sweep_sampled:
    input:
        metrics="results/tables/deep_metrics.csv",
    output:
        **figure_outputs("fig4_beta_sweep_sampled", "fig4_sampled", "Deep λβ-VAE"),
    log:
        "logs/figures/fig4_beta_sweep_sampled.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig4_beta_sweep_sampled.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig4",
        datasets=DEEP.datasets,
        reconstruction_metric=DEEP.reconstruction_metric,
        representation="sampled",
    script:
        "../scripts/plot_deep.py"


rule fig5_lambda_heatmaps:
    input:
        summary="results/tables/deep_summary.csv",
    output:
        **figure_outputs("fig5_lambda_heatmaps", "fig5", "Deep λβ-VAE"),
    log:
        "logs/figures/fig5_lambda_heatmaps.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig5_lambda_heatmaps.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig5",
        datasets=DEEP.datasets,
        reconstruction_metric=DEEP.reconstruction_metric,
    script:
        "../scripts/plot_deep.py"


rule fig5_lambda_heatmaps_sampled:
    input:
        summary="results/tables/deep_summary.csv",
    output:
        **figure_outputs("fig5_lambda_heatmaps_sampled", "fig5_sampled", "Deep λβ-VAE"),
    log:
        "logs/figures/fig5_lambda_heatmaps_sampled.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig5_lambda_heatmaps_sampled.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig5",
        datasets=DEEP.datasets,
        reconstruction_metric=DEEP.reconstruction_metric,
        representation="sampled",
    script:
        "../scripts/plot_deep.py"


# Fig 6 marks the adaptive finetunes' final λ on its heatmaps (from deep_metrics.csv)
rule fig6_tchebycheff:
    input:
        **({"metrics": "results/tables/deep_metrics.csv"} if ADAPTIVE_RUNS else {}),
        scores="results/tables/tchebycheff_scores.csv",
    output:
        **figure_outputs("fig6_tchebycheff", "fig6", "Selection"),
    log:
        "logs/figures/fig6_tchebycheff.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig6_tchebycheff.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig6",
        datasets=DEEP.datasets,
        heatmap_weights=config["selection"]["heatmap_weights"],
    script:
        "../scripts/plot_deep.py"


rule fig7_reconstructions:
    input:
        reconstructions=[
            f"{s['run']}/reconstructions.npz"
            for s in figure_runs(config["figures"]["reconstructions"])
        ],
    output:
        **figure_outputs("fig7_reconstructions", "fig7", "Deep λβ-VAE"),
    log:
        "logs/figures/fig7_reconstructions.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig7_reconstructions.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig7",
        settings=figure_runs(config["figures"]["reconstructions"]),
    script:
        "../scripts/plot_deep.py"


rule fig8_mi_heatmaps:
    input:
        mi_matrices=[
            f"{s['run']}/mi_matrix.csv" for s in figure_runs(config["figures"]["mi_heatmaps"])
        ],
    output:
        **figure_outputs("fig8_mi_heatmaps", "fig8", "Deep λβ-VAE"),
    log:
        "logs/figures/fig8_mi_heatmaps.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig8_mi_heatmaps.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig8",
        settings=figure_runs(config["figures"]["mi_heatmaps"]),
    script:
        "../scripts/plot_deep.py"


rule fig9_traversals:
    input:
        traversals=[f"{s['run']}/traversals.npz" for s in figure_runs(TRAVERSAL_PAIRS)],
    output:
        **figure_outputs("fig9_traversals", "fig9", "Deep λβ-VAE"),
    log:
        "logs/figures/fig9_traversals.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig9_traversals.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="fig9",
        settings=figure_runs(TRAVERSAL_PAIRS),
    script:
        "../scripts/plot_deep.py"


rule fig_adaptive:
    input:
        curves=[f"{run.path}/train_log.csv" for run in ADAPTIVE_RUNS],
    output:
        **figure_outputs("fig_adaptive", "fig_adaptive", "Deep λβ-VAE"),
    log:
        "logs/figures/fig_adaptive.log",
    benchmark:
        costs.benchmark_file("logs/figures/fig_adaptive.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="adaptive",
        runs=[run.record() | {"path": run.path} for run in ADAPTIVE_RUNS],
    script:
        "../scripts/plot_deep.py"
