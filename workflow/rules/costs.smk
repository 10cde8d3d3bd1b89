# What every job cost: the benchmark record of each job (wall and CPU seconds, peak memory, I/O;
# every computing rule has a `benchmark:`) joined to the device, steps/s and peak GPU memory the
# training and evaluation jobs record themselves. It runs after every other output the config
# asks for, and reads the records of the jobs that have run (a job rerun replaces its record).
# `python -m lambdabeta.plan.sizing` turns the table into suggested `resources` for a cluster.


rule job_costs:
    input:
        costs.measured_outputs(FINAL_TARGETS),
    output:
        report(
            "results/tables/job_costs.csv",
            caption="../report/job_costs.rst",
            category="Job costs",
            labels={"table": "job costs"},
        ),
    log:
        "logs/tables/job_costs.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/job_costs.py"
