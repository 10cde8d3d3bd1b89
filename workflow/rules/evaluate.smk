# Evaluation (SPEC §5) of every stabilized and every finetuned model: MIG, SAP, I_m, the MI
# matrix, reconstruction NLL, per-latent KL. {run} is a run folder below results/runs/, e.g.
# dsprites/beta8/seed0 (phase 1) or dsprites/beta8/seed0/lambda4 (phase 2).


rule evaluate:
    input:
        model="results/runs/{run}/model.pt",
        curve="results/runs/{run}/train_log.csv",
        images=lambda wildcards: ancient(prepared(parse_run(wildcards.run)["dataset"])["images"]),
    output:
        metrics="results/runs/{run}/metrics.json",
        mi_matrix="results/runs/{run}/mi_matrix.csv",
        reconstructions="results/runs/{run}/reconstructions.npz",
    log:
        "logs/evaluate/{run}.log",
    conda:
        "../../envs/torch.yaml"
    threads: RESOURCES["evaluate"]["threads"]
    resources:
        gpu=RESOURCES["evaluate"]["gpu"],
        mem_mb=RESOURCES["evaluate"]["mem_mb"],
        runtime=runtime("evaluate"),
    params:
        settings=evaluation_settings,
        run=lambda wildcards: parse_run(wildcards.run),
        jobs_per_gpu=RESOURCES["jobs_per_gpu"],
    script:
        "../scripts/evaluate.py"
