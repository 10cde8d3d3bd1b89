# Datasets (SPEC §3): verified downloads of the upstream files into resources/downloads/, and
# their conversion into one memory-mappable format under resources/datasets/.


def upstream_input(wildcards):
    """The fetched upstream file, for datasets that have one (the procedural one does not)."""
    source = DATASETS[wildcards.dataset]
    if source["format"] == "procedural":
        return {}
    # ancient: a re-fetched but verified identical file must not re-prepare everything
    return {"upstream": ancient(upstream_file(wildcards.dataset))}


rule fetch_dataset:
    output:
        "resources/downloads/{dataset}/{file}",
    params:
        source=lambda wildcards: DATASETS[wildcards.dataset],
    log:
        "logs/datasets/{dataset}/fetch_{file}.log",
    retries: 2
    conda:
        "../../envs/analysis.yaml"
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
    params:
        source=lambda wildcards: DATASETS[wildcards.dataset],
    threads: RESOURCES["prepare"]["threads"]
    resources:
        mem_mb=RESOURCES["prepare"]["mem_mb"],
        runtime=runtime("prepare"),
    log:
        "logs/datasets/{dataset}/prepare.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/prepare_dataset.py"
