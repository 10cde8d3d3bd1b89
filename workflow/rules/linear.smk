# The linear-Gaussian study (paper §3, §5.1): one instance (Γ, Σ_V, σ²) per `linear.dims` entry,
# one job per (dims, method) running every (β, λ, restart) as one batched computation.
#
# Each job's `params` hold only the science of that job (lambdabeta.linear.settings): changing a
# solver setting reruns that solver's jobs, changing `linear.contraction` reruns only the
# contraction traces, and threads, resources or `linear.adamw.device` rerun nothing. Each method
# has its own rule and `resources` entry (`linear`, `linear_adamw`), so that a cluster profile
# can send the AdamW jobs to GPUs alone (`resources.linear_adamw.gpu`).

from lambdabeta.linear.settings import METHODS

LINEAR_STAGES = {"fixed_point": "linear", "adamw": "linear_adamw"}


rule linear_instance:
    input:
        # the user's instance file for these dims, if `linear.instance_file` names one
        lambda w: LINEAR_SETTINGS.instance_files(w.dims),
    output:
        "results/linear/{dims}/instance.npz",
    log:
        "logs/linear/{dims}/instance.log",
    benchmark:
        costs.benchmark_file("logs/linear/{dims}/instance.log")
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        science=lambda w: LINEAR_SETTINGS.instance_job(w.dims).science(),
    script:
        "../scripts/linear_instance.py"


for method in METHODS:

    rule:
        name:
            f"linear_{method}"
        input:
            instance="results/linear/{dims}/instance.npz",
        output:
            f"results/linear/{{dims}}/{method}.csv",
        log:
            f"logs/linear/{{dims}}/{method}.log",
        benchmark:
            costs.benchmark_file(f"logs/linear/{{dims}}/{method}.log")
        conda:
            "../../envs/torch.yaml"
        threads: RESOURCES[LINEAR_STAGES[method]]["threads"]
        resources:
            **job_resources(LINEAR_STAGES[method]),
        params:
            science=lambda w, method=method: LINEAR_SETTINGS.study_job(w.dims, method).science(),
        script:
            "../scripts/linear_study.py"


rule linear_contraction:
    input:
        instance="results/linear/{dims}/instance.npz",
    output:
        "results/linear/{dims}/contraction.csv",
    log:
        "logs/linear/{dims}/contraction.log",
    benchmark:
        costs.benchmark_file("logs/linear/{dims}/contraction.log")
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        science=lambda w: LINEAR_SETTINGS.contraction_job(w.dims).science(),
    script:
        "../scripts/linear_contraction.py"


rule linear_phase:
    input:
        instance="results/linear/{dims}/instance.npz",
    output:
        critical="results/linear/{dims}/phase.csv",
        map="results/linear/{dims}/phase_map.csv",
        rays="results/linear/{dims}/rays.csv",
        adaptive="results/linear/{dims}/adaptive.csv",
    log:
        "logs/linear/{dims}/phase.log",
    benchmark:
        costs.benchmark_file("logs/linear/{dims}/phase.log")
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        **job_resources("linear"),
    params:
        science=lambda w: LINEAR_SETTINGS.phase_job(w.dims).science(),
    script:
        "../scripts/linear_phase.py"


rule linear_phase_tables:
    input:
        critical=expand("results/linear/{dims}/phase.csv", dims=LINEAR_DIMS),
        rays=expand("results/linear/{dims}/rays.csv", dims=LINEAR_DIMS),
        adaptive=expand("results/linear/{dims}/adaptive.csv", dims=LINEAR_DIMS),
    output:
        critical=report(
            "results/tables/linear_phase.csv",
            caption="../report/linear_phase.rst",
            category="Linear-Gaussian study",
            labels={"table": "phase boundary"},
        ),
        rays="results/tables/linear_rays.csv",
        adaptive="results/tables/linear_adaptive.csv",
    log:
        "logs/linear/phase_tables.log",
    benchmark:
        costs.benchmark_file("logs/linear/phase_tables.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/linear_phase_tables.py"


rule linear_tables:
    input:
        studies=expand(
            "results/linear/{dims}/{method}.csv",
            dims=LINEAR_DIMS,
            method=LINEAR_SETTINGS.methods if LINEAR else [],
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
    benchmark:
        costs.benchmark_file("logs/linear/tables.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/linear_tables.py"
