# The λβ-VAE reproduction pipeline: every result of "Mutual Information Collapse Explains
# Disentanglement Failure in β-VAEs" from config/config.yaml alone. See README.md.

import os
import sys

from snakemake.utils import min_version

min_version("9.1")

# the project's package, from beside this file (not `workflow.basedir`, which is the importing
# workflow's folder when this one is its module); what the workflow definition imports of it uses
# the standard library and Snakemake's own dependencies only. A YAML error in the config file is
# named by its line, before Snakemake reads it and says only that some config file is not valid
# YAML.
WORKFLOW_ROOT = os.path.abspath(str(workflow.current_basedir))
sys.path.insert(0, os.path.join(WORKFLOW_ROOT, "workflow", "scripts"))
from lambdabeta.plan.checks import check_config_file

if os.path.exists("config/config.yaml"):
    check_config_file("config/config.yaml")


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
include: "workflow/rules/costs.smk"


rule all:
    default_target: True
    input:
        FINAL_TARGETS,
