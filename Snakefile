# The λβ-VAE reproduction pipeline: every result of "Mutual Information Collapse Explains
# Disentanglement Failure in β-VAEs" from config/config.yaml alone. See README.md.

from snakemake.utils import min_version

min_version("9.1")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    **grid.WILDCARD_CONSTRAINTS,
    dims=r"n\d+_m\d+_s\d+",
    method="fixed_point|adamw",


include: "workflow/rules/linear.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        all_targets(),
