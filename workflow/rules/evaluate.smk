# Evaluation (paper §5.2, disentanglement_lib's metrics) of every stabilized and every finetuned
# model: MIG, SAP, I_m and the MI matrix of the encoder mean and of one sample per image, the
# reconstruction NLL, per-latent KL, reconstructions and latent traversals. {run} is a run folder
# below results/runs/, e.g. dsprites/beta8/seed0 (phase 1) or dsprites/beta8/seed0/lambda4.


rule evaluate:
    input:
        model=f"{grid.RUN_DIR}/model.pt",
        curve=f"{grid.RUN_DIR}/train_log.csv",
        images=lambda wildcards: prepared_images(evaluated_run(wildcards)["dataset"]),
    output:
        **evaluation_outputs(),
    log:
        "logs/evaluate/{run}.log",
    benchmark:
        costs.benchmark_file("logs/evaluate/{run}.log")
    conda:
        "../../envs/torch.yaml"
    threads: RESOURCES["evaluate"]["threads"]
    resources:
        **job_resources("evaluate"),
    params:
        settings=DEEP.evaluation_science() if DEEP.datasets else {},
        run=evaluated_run,
    script:
        "../scripts/evaluate.py"
