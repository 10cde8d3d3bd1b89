# The paper's claims judged from the tables alone (so `--allowed-rules claims` re-judges existing
# tables), and the paired-by-seed effect of λ behind the deep claims.


rule claims:
    input:
        unpack(claim_inputs),
    output:
        table=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "verdicts"},
        ),
        markdown="results/tables/claims.md",
        verdicts="results/tables/claims_verdicts.rst",
        lines="results/tables/claims_lines.rst",
    log:
        "logs/tables/claims.log",
    benchmark:
        costs.benchmark_file("logs/tables/claims.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=claims.claim_settings(config),
    script:
        "../scripts/claims.py"


rule lambda_effect:
    input:
        metrics="results/tables/deep_metrics.csv",
    output:
        table=report(
            "results/tables/lambda_effect.csv",
            caption="../report/lambda_effect.rst",
            category="Claims",
            labels={"table": "effect of λ"},
        ),
        markdown="results/tables/lambda_effect.md",
    log:
        "logs/tables/lambda_effect.log",
    benchmark:
        costs.benchmark_file("logs/tables/lambda_effect.log")
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        level=config["claims"]["level"],
    script:
        "../scripts/lambda_effect.py"
