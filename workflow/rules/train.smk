# Deep λβ-VAE training (SPEC §4): phase 1 stabilizes a β-VAE (λ = 0) per (dataset, β, seed);
# phase 2 finetunes exactly that checkpoint with a fresh Adam for every λ (λ = 0 included).
# Each run checkpoints into a `.progress-*` folder that is not an output, so a killed or
# preempted job resumes where it stopped instead of starting over.


rule stabilize:
    input:
        images=dataset_images,
    output:
        model="results/runs/{dataset}/beta{beta}/seed{seed}/model.pt",
        curve="results/runs/{dataset}/beta{beta}/seed{seed}/train_log.csv",
        summary="results/runs/{dataset}/beta{beta}/seed{seed}/run.json",
    log:
        "logs/train/{dataset}/beta{beta}/seed{seed}/stabilize.log",
    conda:
        "../../envs/torch.yaml"
    threads: RESOURCES["stabilize"]["threads"]
    resources:
        gpu=RESOURCES["stabilize"]["gpu"],
        mem_mb=RESOURCES["stabilize"]["mem_mb"],
        runtime=runtime("stabilize"),
    params:
        settings=lambda wildcards: train_settings(wildcards, "stabilize"),
        progress_dir=progress_dir("stabilize"),
        jobs_per_gpu=RESOURCES["jobs_per_gpu"],
    script:
        "../scripts/train.py"


rule finetune:
    input:
        images=dataset_images,
        init=rules.stabilize.output.model,
    output:
        model="results/runs/{dataset}/beta{beta}/seed{seed}/lambda{lam}/model.pt",
        curve="results/runs/{dataset}/beta{beta}/seed{seed}/lambda{lam}/train_log.csv",
        summary="results/runs/{dataset}/beta{beta}/seed{seed}/lambda{lam}/run.json",
    log:
        "logs/train/{dataset}/beta{beta}/seed{seed}/lambda{lam}/finetune.log",
    conda:
        "../../envs/torch.yaml"
    threads: RESOURCES["finetune"]["threads"]
    resources:
        gpu=RESOURCES["finetune"]["gpu"],
        mem_mb=RESOURCES["finetune"]["mem_mb"],
        runtime=runtime("finetune"),
    params:
        settings=lambda wildcards: train_settings(wildcards, "finetune"),
        progress_dir=progress_dir("finetune"),
        jobs_per_gpu=RESOURCES["jobs_per_gpu"],
    script:
        "../scripts/train.py"
