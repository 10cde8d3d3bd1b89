# The linear-Gaussian study (paper §3, §5.1): one instance (Γ, Σ_V) per `linear.dims` entry,
# one job per (dims, method) running every (β, λ, restart) as one batched computation.


rule linear_instance:
    output:
        "results/linear/{dims}/instance.npz",
    log:
        "logs/linear/{dims}/instance.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        dims=linear_dims,
        instance_file=linear_instance_file,
        noise_var=LINEAR["noise_var"] if LINEAR else None,
        factor_var_range=LINEAR["factor_var_range"] if LINEAR else None,
        seed=LINEAR["seed"] if LINEAR else None,
    script:
        "../scripts/linear_instance.py"


rule linear_study:
    input:
        instance="results/linear/{dims}/instance.npz",
    output:
        "results/linear/{dims}/{method}.csv",
    log:
        "logs/linear/{dims}/{method}.log",
    conda:
        "../../envs/torch.yaml"
    threads: RESOURCES["linear"]["threads"]
    resources:
        mem_mb=RESOURCES["linear"]["mem_mb"],
        runtime=runtime("linear"),
    params:
        config=LINEAR,
    script:
        "../scripts/linear_study.py"


rule linear_contraction:
    input:
        instance="results/linear/{dims}/instance.npz",
    output:
        "results/linear/{dims}/contraction.csv",
    log:
        "logs/linear/{dims}/contraction.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        config=LINEAR,
    script:
        "../scripts/linear_contraction.py"


rule linear_tables:
    input:
        studies=expand(
            "results/linear/{dims}/{method}.csv",
            dims=[linear_dims_name(d) for d in LINEAR["dims"]] if LINEAR else [],
            method=LINEAR["methods"] if LINEAR else [],
        ),
    output:
        metrics=report(
            "results/tables/linear_metrics.csv",
            caption="../report/linear_metrics.rst",
            category="Linear-Gaussian study",
            labels={"table": "per restart"},
        ),
        summary=report(
            "results/tables/linear_summary.csv",
            caption="../report/linear_summary.rst",
            category="Linear-Gaussian study",
            labels={"table": "mean ± sd over restarts"},
        ),
    log:
        "logs/linear/tables.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/linear_tables.py"
