# Datasets: verified downloads of the upstream files into resources/downloads/, and
# their conversion into one memory-mappable format under resources/datasets/.


rule fetch_dataset:
    output:
        "resources/downloads/{dataset}/{file}",
    log:
        "logs/datasets/{dataset}/fetch_{file}.log",
    benchmark:
        costs.benchmark_file("logs/datasets/{dataset}/fetch_{file}.log")
    retries: 2
    # downloads run where the workflow was started: compute nodes often have no internet
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        source=lambda wildcards: download_science(DATASETS[wildcards.dataset]),
    script:
        "../scripts/fetch_dataset.py"


rule prepare_dataset:
    input:
        unpack(upstream_input),
    output:
        images="resources/datasets/{dataset}/images.npy",
        factors="resources/datasets/{dataset}/factors.npy",
        meta="resources/datasets/{dataset}/meta.json",
        samples=report(
            "results/datasets/{dataset}_samples.png",
            caption="../report/dataset_samples.rst",
            category="Datasets",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/datasets/{dataset}/prepare.log",
    benchmark:
        costs.benchmark_file("logs/datasets/{dataset}/prepare.log")
    conda:
        "../../envs/torch.yaml"
    threads: RESOURCES["prepare"]["threads"]
    resources:
        **job_resources("prepare"),
    params:
        source=lambda wildcards: preparation_science(DATASETS[wildcards.dataset]),
    script:
        "../scripts/prepare_dataset.py"
