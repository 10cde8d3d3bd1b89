# Helpers shared by all the rule files (config validation, the experiment grid, path formatting,
# per-job resources and the lists of final targets).

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from snakemake.resources import Resource, Resources
from snakemake.utils import validate

# the project's package, importable without installing it (its grid and settings modules use
# the standard library only, so the Snakemake process needs nothing more)
sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))

from lambdabeta import grid
from lambdabeta.linear.settings import Dims as LinearDims
from lambdabeta.settings import (
    TrainSettings,
    download_science,
    evaluation_science,
    phase_science,
    preparation_science,
    train_science,
)

validate(config, schema="../schemas/config.schema.yaml")


def config_error(key, message):
    raise ValueError(f"config key '{key}': {message}")


# ---- linear-Gaussian study ----------------------------------------------------------------


LINEAR = config.get("linear")


def linear_dims_name(dims):
    """The {dims} wildcard of a `linear.dims` entry, e.g. n100_m10_s5."""
    return LinearDims(**dims).name


def check_linear_config():
    if LINEAR is None:
        return
    names = [linear_dims_name(d) for d in LINEAR["dims"]]
    if len(set(names)) != len(names):
        config_error("linear.dims", f"entries must be distinct, got {names}")
    for dims in LINEAR["dims"]:
        if dims["m"] < 2:
            config_error("linear.dims", f"m must be at least 2 for SAP's top-two gap: {dims}")
    if LINEAR["instance_file"] is not None:
        for dims in LINEAR["dims"]:
            path = LINEAR["instance_file"].format(**dims)
            if not os.path.isfile(path):
                config_error("linear.instance_file", f"{path} (for {dims}) does not exist")


# ---- deep λβ-VAE grid ---------------------------------------------------------------------


DEEP = config.get("deep", {"datasets": []})
DATASETS = config.get("datasets", {})


def check_deep_config():
    for name in DEEP["datasets"]:
        if name not in DATASETS:
            config_error(
                "deep.datasets",
                f"'{name}' is not defined under `datasets:` (defined: {sorted(DATASETS)})",
            )


def upstream_file(dataset):
    """Where the upstream file of a downloadable dataset lives under resources/."""
    return f"resources/downloads/{dataset}/{DATASETS[dataset]['file']}"


def prepared(dataset):
    """The uniform on-disk files of a prepared dataset."""
    return {
        name: f"resources/datasets/{dataset}/{name}.{ext}"
        for name, ext in (("images", "npy"), ("factors", "npy"), ("meta", "json"))
    }


def all_runs(phase):
    """Run folders of one phase over the whole grid."""
    return [run.path for run in grid.runs(DEEP, phase)]


def evaluated_run(wildcards):
    """The run record (dataset, phase, β, λ, seed) of an evaluation job."""
    return grid.Run.from_name(wildcards.run).record()


def figure_runs(pairs):
    """The runs (records with their folder) that show the requested (β, λ) pairs."""
    if not DEEP["datasets"]:
        return []
    try:
        chosen = grid.figure_runs(DEEP, pairs, config["figures"]["seed"])
    except ValueError as error:
        config_error("figures.seed", str(error))
    return [figure_run.record() for figure_run in chosen]


# ---- training jobs: one run, or a pack of runs (deep.train.pack_size) ----------------------


TRAIN_FILES = {"model": "model.pt", "curve": "train_log.csv", "summary": "run.json"}
PACK_SIZE = DEEP["train"]["pack_size"] if DEEP["datasets"] else 1


def train_outputs(folder):
    """The files a training run writes in its folder."""
    return {key: f"{folder}/{name}" for key, name in TRAIN_FILES.items()}


def train_params(phase):
    """A training job's settings (`params`): the science every run of the phase shares. A run's
    own β, λ and seed are in its path, so a run's own job and a pack holding it record the same
    params, and neither reruns the other's outputs."""
    return lambda wildcards: phase_science(DEEP, phase)


def train_member(run):
    """What the training script needs of one run: its name, its files and, beside them but not
    among them (so that Snakemake does not delete it when a job dies), its checkpoint folder."""
    return {
        "run": run.name,
        **train_outputs(run.path),
        "progress_dir": f"{run.path}/.progress-{run.phase}",
        "init": train_outputs(run.stabilized.path)["model"] if run.phase == "finetune" else None,
    }


# The `members` param lists a job's runs and their output files. Taking `output` marks it as
# derived from the outputs, so Snakemake does not record it among the job's settings.
def run_members(phase):
    """The `members` param of a one-run job, from its wildcards."""
    return lambda wildcards, output: [train_member(grid.Run.from_wildcards(wildcards, phase))]


def pack_members(pack):
    """The `members` param of a pack job."""
    return lambda wildcards, output: [train_member(run) for run in pack.runs]


def pack_input(pack):
    """A pack's input: its dataset and, for finetunes, the one stabilized model they start from
    (the input of each member's own job, so that a finished member's job stays up to date)."""
    files = {"images": ancient(prepared(pack.dataset)["images"])}
    if pack.phase == "finetune":
        files["init"] = train_member(pack.runs[0])["init"]
    return files


def pack_outputs(pack):
    """A pack's outputs: every member's files, named model_0, curve_0, summary_0, model_1, …"""
    return {
        f"{key}_{k}": path
        for k, run in enumerate(pack.runs)
        for key, path in train_outputs(run.path).items()
    }


@functools.cache
def trained(run):
    """Whether `run`'s files exist and record today's science (for a finetune, also: its
    stabilized model is trained and not newer than its files). Such a run is never put in a pack:
    a pack job rewrites all its outputs, so it would train the run again."""
    files = train_outputs(run.path)
    if not all(os.path.isfile(path) for path in files.values()):
        return False
    try:
        with open(files["summary"]) as stream:
            recorded = json.load(stream)["settings"]
        science = {key: recorded[key] for key in TrainSettings.SCIENCE}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if science != train_science(DEEP, run):
        return False
    if run.phase == "stabilize":
        return True
    oldest = min(os.path.getmtime(path) for path in files.values())
    init = train_outputs(run.stabilized.path)["model"]
    return trained(run.stabilized) and os.path.getmtime(init) <= oldest


def training_packs(phase):
    """The pack jobs of `phase` (none with pack_size 1): see lambdabeta.grid.packs."""
    if PACK_SIZE == 1:
        return []
    return grid.packs(DEEP, phase, PACK_SIZE, trained)


@dataclass(frozen=True)
class TrainingRule:
    """What differs between the training rules: the one-run rules `stabilize` and `finetune`
    (wildcards) and one rule per pack (explicit files)."""

    name: str
    phase: str
    input: dict
    output: dict
    log: str
    members: object  # the `members` param
    packed: bool


def training_rules():
    """The one-run rule of each phase, then the pack rules. train.smk defines them all with one
    `rule:` block, so that every training job records the same code (Snakemake records a script
    rule's code as the text, indentation included, of its `script:` line)."""
    log_dir = "logs/train/{dataset}/beta{beta}/seed{seed}"
    one_run = [
        TrainingRule(
            name="stabilize",
            phase="stabilize",
            input={"images": dataset_images},
            output=train_outputs(grid.STABILIZED_DIR),
            log=f"{log_dir}/stabilize.log",
            members=run_members("stabilize"),
            packed=False,
        ),
        TrainingRule(
            name="finetune",
            phase="finetune",
            input={
                "images": dataset_images,
                "init": train_outputs(grid.STABILIZED_DIR)["model"],
            },
            output=train_outputs(grid.FINETUNED_DIR),
            log=f"{log_dir}/lambda{{lam}}/finetune.log",
            members=run_members("finetune"),
            packed=False,
        ),
    ]
    packs = [
        TrainingRule(
            name=pack.name,
            phase=pack.phase,
            input=pack_input(pack),
            output=pack_outputs(pack),
            log=f"logs/train/packs/{pack.name}.log",
            members=pack_members(pack),
            packed=True,
        )
        for pack in training_packs("stabilize") + training_packs("finetune")
    ]
    return one_run + packs


def inherit_profile_settings(name, phase):
    """Give a pack rule the `set-resources` and `set-threads` (e.g. a SLURM partition) that the
    command line or profile set for its phase's rule: Snakemake applies them by rule name, and
    the pack rules have their own names."""
    settings = workflow.resource_settings
    pack_rule = workflow.get_rule(name)
    if phase in settings.overwrite_resources:
        pack_rule.resources.update(Resources.from_mapping(settings.overwrite_resources[phase]))
    if phase in settings.overwrite_threads:
        threads = settings.overwrite_threads[phase]
        if not isinstance(threads, Resource):
            threads = Resource("_cores", threads)
        pack_rule.resources["_cores"] = threads


# ---- claims ------------------------------------------------------------------------------


def mpi3d_dataset():
    """The trained dataset read from MPI3D-real's upstream file, if any."""
    names = [d for d in DEEP["datasets"] if DATASETS[d]["format"] == "mpi3d_npz"]
    return names[0] if names else None


def concentration_runs():
    """Fig 8's first (reference) and last (concentrated) settings, nearest grid points, for
    every seed: the runs whose MI matrices the claim `qualitative.mi_concentrated` compares."""
    pairs = config["figures"]["mi_heatmaps"]
    if len(pairs) < 2:
        return []
    shown = figure_runs([pairs[0], pairs[-1]])
    records = []
    for index, figure_run in enumerate(shown):
        role = "reference" if index % 2 == 0 else "concentrated"
        for seed in DEEP["seeds"]:
            run = grid.Run(figure_run["dataset"], figure_run["beta"], seed, figure_run["lambda"])
            records.append(run.record() | {"role": role, "path": f"{run.path}/mi_matrix.csv"})
    return records


def claims_inputs(wildcards):
    """The tables the claims read; a study the config does not run contributes none."""
    inputs = {}
    if LINEAR is not None:
        inputs["linear"] = "results/tables/linear_metrics.csv"
        inputs["traces"] = [
            f"results/linear/{linear_dims_name(d)}/contraction.csv" for d in LINEAR["dims"]
        ]
    if DEEP["datasets"]:
        inputs["metrics"] = "results/tables/deep_metrics.csv"
        inputs["selection"] = "results/tables/selection.csv"
        inputs["mi_matrices"] = [record["path"] for record in concentration_runs()]
    return inputs


# ---- input and output helpers of the rule files ------------------------------------------


def upstream_input(wildcards):
    """The fetched upstream file, for datasets that have one (the procedural one does not)."""
    source = DATASETS[wildcards.dataset]
    if source["format"] == "procedural":
        return {}
    # ancient: a re-fetched but verified identical file must not re-prepare everything
    return {"upstream": ancient(upstream_file(wildcards.dataset))}


def dataset_images(wildcards):
    # ancient: preparing a dataset again (new code, same data) must not retrain every model
    return ancient(prepared(wildcards.dataset)["images"])


def figure_outputs(name, caption, category):
    return {
        "pdf": f"results/figures/{name}.pdf",
        "png": report(
            f"results/figures/{name}.png",
            caption=f"../report/{caption}.rst",
            category=category,
            labels={"figure": name},
        ),
    }


# ---- the linear study ------------------------------------------------------------------


def linear_study_science(method):
    """The `params` of a study job of ``method``: that job's science."""
    return lambda w: LINEAR_SETTINGS.study_job(w.dims, method).science()


def linear_study_stage(method):
    """The `resources` entry of a study job: `linear_adamw` for AdamW (hours of CPU, split over
    its threads), `linear` for the fixed point (about a minute)."""
    return "linear_adamw" if method == "adamw" else "linear"


def linear_study_gpus(method):
    """The GPU request of a study job: the AdamW job asks for one exactly when it will use one
    (`linear.adamw.device`: `cuda`, or `auto` with a GPU visible to this process; the script then
    runs on the GPU it was granted); the fixed-point solver runs on the CPU and asks for none."""
    if method == "adamw" and LINEAR:
        return {"gpu": int(LINEAR_SETTINGS.adamw.requests_gpu(VISIBLE_GPUS))}
    return {}


def linear_study_threads(method):
    """The threads of a study job: its `resources` entry's, but one for an AdamW job on a GPU
    (its CPU only launches the GPU's work)."""
    if linear_study_gpus(method).get("gpu"):
        return 1
    return RESOURCES[linear_study_stage(method)]["threads"]


# ---- resources ----------------------------------------------------------------------------


RESOURCES = config["resources"]


def runtime(stage):
    """Minutes for a job of `stage`; a retried job gets proportionally more."""
    base = RESOURCES[stage]["runtime"]
    return lambda wildcards, attempt: base * attempt


# ---- local GPU scheduling ------------------------------------------------------------------
# Snakemake pins no GPUs to local jobs, so `gpu` is also the local scheduler's limit: at most
# `resources.jobs_per_gpu` jobs per visible GPU run at once (lambdabeta.devices then spreads them
# over the GPUs). The scope is one machine or one SLURM submission, never the whole cluster.


resource_scopes:
    gpu="local",


def visible_gpus(environ=os.environ):
    """GPUs a job started here can use: the entries of CUDA_VISIBLE_DEVICES up to the first one
    CUDA would not accept (as CUDA reads it; "" or "-1" hide all), else the GPUs `nvidia-smi`
    lists, else 0."""
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        try:
            listing = subprocess.run(
                ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
        return sum(line.startswith("GPU ") for line in listing.splitlines())
    count = 0
    for entry in listed.split(","):
        entry = entry.strip()
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        count += 1
    return count


def local_gpu_limit(gpus, jobs_per_gpu):
    """How many `gpu: 1` jobs may run at once on this machine: `jobs_per_gpu` per GPU. None (no
    limit) without a GPU: there those jobs run on the CPU and only --cores bounds them."""
    return gpus * jobs_per_gpu if gpus > 0 else None


VISIBLE_GPUS = visible_gpus()
GPU_LIMIT = local_gpu_limit(VISIBLE_GPUS, RESOURCES["jobs_per_gpu"])
# an explicit `--resources gpu=N` (the SLURM profile sets 1 per submission) takes precedence
if GPU_LIMIT is not None and "gpu" not in workflow.global_resources:
    workflow.global_resources["gpu"] = GPU_LIMIT


# ---- targets ------------------------------------------------------------------------------


LINEAR_FIGURES = ["fig2_linear_beta_sweep", "fig3_linear_lambda_heatmaps", "fig_linear_contraction"]
DEEP_FIGURES = [
    "fig4_beta_sweep",
    "fig5_lambda_heatmaps",
    "fig6_tchebycheff",
    "fig7_reconstructions",
    "fig8_mi_heatmaps",
]
DEEP_TABLES = ["deep_metrics.csv", "deep_summary.csv", "deep_summary.md", "deep_summary.tex"]
SELECTION_TABLES = ["selection.csv", "tchebycheff_scores.csv", "pareto_front.csv"]
LAMBDA_TABLES = ["lambda_effect.csv", "lambda_effect.md"]
CLAIMS_TABLES = ["claims.csv", "claims.md", "claims_verdicts.rst"]


def figure_files(names):
    return [f"results/figures/{name}.{ext}" for name in names for ext in ("pdf", "png")]


def all_targets():
    """Every final output the config asks for."""
    targets = [f"results/tables/{name}" for name in CLAIMS_TABLES]
    if LINEAR is not None:
        targets += ["results/tables/linear_metrics.csv", "results/tables/linear_summary.csv"]
        targets += figure_files(LINEAR_FIGURES)
    if DEEP["datasets"]:
        targets += [f"results/datasets/{d}_samples.png" for d in DEEP["datasets"]]
        targets += [
            f"results/tables/{name}" for name in DEEP_TABLES + SELECTION_TABLES + LAMBDA_TABLES
        ]
        targets += figure_files(DEEP_FIGURES)
    return targets


check_linear_config()
check_deep_config()
