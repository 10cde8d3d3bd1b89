# Input functions and targets shared by the rule files. What they compute is decided by the
# package (lambdabeta.plan, lambdabeta.grid, the settings classes); this file only wraps it in
# Snakemake's terms (ancient inputs, report entries, the workflow's resources).

import os

from snakemake.resources import Resource, Resources
from snakemake.utils import validate

# the project's package is on sys.path (the Snakefile puts it there)
from lambdabeta import grid
from lambdabeta.linear.settings import LinearSettings
from lambdabeta.plan import checks, claims, costs, datasets, figures, resources, targets, training
from lambdabeta.settings import DeepSettings, download_science, preparation_science

# Every setting is checked here, before any job is planned (lambdabeta.plan.checks): a wrong
# value that reached a job would fail there, after Snakemake had deleted the job's outputs.
# the config files in the order they apply (later ones override earlier ones)
COMMAND_LINE_CONFIGS = {os.path.abspath(path) for path in workflow.overwrite_configfiles}
CONFIG_SOURCES = [
    os.path.relpath(path)
    for path in sorted(
        workflow.configfiles, key=lambda p: os.path.abspath(p) in COMMAND_LINE_CONFIGS
    )
]
for config_file in CONFIG_SOURCES:
    checks.check_config_file(config_file)
SCHEMA = os.path.join(WORKFLOW_ROOT, "workflow", "schemas", "config.schema.yaml")
checks.check_schema(config, SCHEMA, CONFIG_SOURCES)
validate(config, schema="../schemas/config.schema.yaml")
checks.check_config(config, CONFIG_SOURCES)

LINEAR = config.get("linear")
LINEAR_SETTINGS = LinearSettings.from_config(LINEAR) if LINEAR else None
LINEAR_DIMS = [dims.name for dims in LINEAR_SETTINGS.dims] if LINEAR else []
DEEP = DeepSettings.from_config(config.get("deep"))
DATASETS = config.get("datasets", {})
RESOURCES = config["resources"]


# ---- datasets ---------------------------------------------------------------------------------


def upstream_input(wildcards):
    """The fetched upstream file, for datasets that have one (the procedural one does not)."""
    if not datasets.is_downloaded(DATASETS, wildcards.dataset):
        return {}
    # ancient: a re-fetched but verified identical file must not re-prepare everything
    return {"upstream": ancient(datasets.upstream_file(DATASETS, wildcards.dataset))}


def prepared_images(dataset):
    # ancient: preparing a dataset again (new code, same data) must not retrain every model
    return ancient(datasets.prepared_files(dataset)["images"])


# ---- deep runs ------------------------------------------------------------------------------


def all_runs(phase):
    """Run folders of one phase over the whole grid (`adaptive`: the adaptive finetunes)."""
    if phase == grid.ADAPTIVE:
        return [run.path for run in grid.adaptive_runs(DEEP.section)]
    return [run.path for run in grid.runs(DEEP.section, phase)]


def evaluated_run(wildcards):
    """The run record (dataset, phase, β, λ, seed) of an evaluation job."""
    return grid.Run.from_name(wildcards.run).record()


def evaluation_outputs():
    """The files an evaluation writes in its run folder (the sampled MI matrix when
    `deep.evaluate.representations` scores the sampled representation)."""
    files = {
        "metrics": "metrics.json",
        "mi_matrix": "mi_matrix.csv",
        "reconstructions": "reconstructions.npz",
        "traversals": "traversals.npz",
    }
    if DEEP.datasets and "sampled" in DEEP.section["evaluate"]["representations"]:
        files["mi_matrix_sampled"] = "mi_matrix_sampled.csv"
    return {key: f"{grid.RUN_DIR}/{name}" for key, name in files.items()}


TRAINING_RULES = training.training_rules(DEEP, training.Finished(DEEP))


def training_input(job):
    """A training rule's input: its dataset and, for finetunes, the one stabilized model (and
    for an adaptive λ whose target is a reference model's rate, that model's curve)."""
    files = {"images": ancient(job.images)}
    if job.init is not None:
        files["init"] = job.init
    if job.reference is not None:
        files["reference"] = job.reference
    return files


def training_science(job):
    """A training rule's `params`: the science every run of the rule shares."""
    if job.adaptive:
        return lambda wildcards: DEEP.adaptive_science()
    return lambda wildcards: DEEP.phase_science(job.phase)


def inherit_profile_settings(name, phase):
    """Give a pack rule the `set-resources` and `set-threads` (e.g. a SLURM partition) that the
    command line or profile set for its phase's rule: Snakemake applies them by rule name, and
    the pack rules have their own names. (Names as the importing workflow sees them when this
    one is a module: `use rule * from lambdabeta as lambdabeta_*` renames every rule.)"""
    settings = workflow.resource_settings
    pack_rule = workflow.get_rule(workflow.modifier.modify_rulename(name))
    phase = workflow.modifier.modify_rulename(phase)
    if phase in settings.overwrite_resources:
        pack_rule.resources.update(Resources.from_mapping(settings.overwrite_resources[phase]))
    if phase in settings.overwrite_threads:
        threads = settings.overwrite_threads[phase]
        if not isinstance(threads, Resource):
            threads = Resource("_cores", threads)
        pack_rule.resources["_cores"] = threads


# ---- resources --------------------------------------------------------------------------------


def runtime(stage):
    """Minutes for a job of `stage`; a retried job gets proportionally more."""
    return resources.runtime(RESOURCES[stage]["runtime"])


def job_resources(stage):
    """The `resources` of a job of `stage`: its memory, runtime and, for the jobs that can use
    a GPU, the request `resources.<stage>.gpu` (lambdabeta.settings.job_device)."""
    entry = RESOURCES[stage]
    gpu = {"gpu": entry["gpu"]} if stage in resources.GPU_STAGES else {}
    return gpu | {"mem_mb": entry["mem_mb"], "runtime": runtime(stage)}


resource_scopes:
    gpu="local",


GPU_LIMIT = resources.local_gpu_limit(resources.visible_gpus(), RESOURCES["jobs_per_gpu"])
# an explicit `--resources gpu=N` (the SLURM profile sets 1 per submission) takes precedence
if GPU_LIMIT is not None and "gpu" not in workflow.global_resources:
    workflow.global_resources["gpu"] = GPU_LIMIT


# ---- claims, reports and targets ----------------------------------------------------------------


def claim_inputs(wildcards):
    """The tables the claims read; a study the config does not run contributes none."""
    return claims.claim_inputs(config)


def figure_outputs(figure):
    """A figure's PDF, and its PNG as the report's entry (lambdabeta.plan.figures.Figure)."""
    return {
        "pdf": figure.outputs["pdf"],
        "png": report(
            figure.outputs["png"],
            caption=f"../report/{figure.caption}.rst",
            category=figure.category,
            labels={"figure": figure.name},
        ),
    }


def all_targets():
    """Every final output the config asks for, and the files of the runs the deep tables were
    built from that are gone from disk, a deleted metrics.json or a corrupt model moved aside
    (targets.lost_intermediates: asking for them remakes them and everything after them)."""
    per_run = [
        os.path.basename(pattern)
        for pattern in [*training.train_outputs("").values(), *evaluation_outputs().values()]
    ]
    run_files = [
        f"{run}/{name}"
        for phase in (grid.STABILIZE, grid.FINETUNE, grid.ADAPTIVE)
        for run in all_runs(phase)
        for name in per_run
    ]
    return targets.all_targets(config) + targets.lost_intermediates(
        "results/tables/deep_metrics.csv", run_files
    )


# computed once: the default target, and the input of the job cost table (workflow/rules/costs.smk)
FINAL_TARGETS = all_targets()
