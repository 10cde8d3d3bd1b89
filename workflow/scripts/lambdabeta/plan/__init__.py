"""What the workflow decides before any job runs, as pure functions: the training jobs and their
packs, the datasets' files, the claims rule's inputs, GPU discovery, the checks of the config
and the final targets. ``workflow/rules/common.smk`` wraps them in Snakemake's input functions.

Every module here uses the standard library only: the workflow definition imports them in the
Snakemake process, whose environment need not have the project's dependencies.
"""
