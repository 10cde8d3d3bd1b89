# Tables over all deep runs and the augmented Tchebycheff selection of (β, λ) (paper §6).


rule deep_tables:
    input:
        metrics=[
            f"{run}/metrics.json"
            for phase in ("stabilize", "finetune", "adaptive")
            for run in all_runs(phase)
        ],
    output:
        metrics=report(
            "results/tables/deep_metrics.csv",
            caption="../report/deep_metrics.rst",
            category="Tables",
            labels={"table": "deep_metrics"},
        ),
        summary=report(
            "results/tables/deep_summary.csv",
            caption="../report/deep_summary.rst",
            category="Tables",
            labels={"table": "deep_summary"},
        ),
        markdown="results/tables/deep_summary.md",
        latex="results/tables/deep_summary.tex",
    log:
        "logs/tables/deep_tables.log",
    benchmark:
        costs.benchmark_file("logs/tables/deep_tables.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/aggregate_deep.py"


rule select_hyperparameters:
    input:
        summary="results/tables/deep_summary.csv",
    output:
        selection=report(
            "results/tables/selection.csv",
            caption="../report/selection.rst",
            category="Selection",
            labels={"table": "selection"},
        ),
        scores="results/tables/tchebycheff_scores.csv",
        pareto=report(
            "results/tables/pareto_front.csv",
            caption="../report/pareto_front.rst",
            category="Selection",
            labels={"table": "pareto_front"},
        ),
    log:
        "logs/tables/selection.log",
    benchmark:
        costs.benchmark_file("logs/tables/selection.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        rho=config["selection"]["rho"],
        weights=config["selection"]["weights"],
        heatmap_weights=config["selection"]["heatmap_weights"],
        reconstruction_metric=DEEP.reconstruction_metric,
    script:
        "../scripts/select_hyperparameters.py"
