# Helpers shared by all the rule files (config validation, the experiment grid, path formatting,
# per-job resources and the lists of final targets).

import math
import os
import re
import subprocess

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


# β, λ and seeds appear in paths; numbers are written like 8, 0.5, 1e-05 (see fmt)
NUMBER = r"[0-9][0-9.e+-]*"


def fmt(value):
    """How a grid value appears in a path: integers without a decimal point (8, not 8.0)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def config_error(key, message):
    raise ValueError(f"config key '{key}': {message}")


# ---- linear-Gaussian study ----------------------------------------------------------------


LINEAR = config.get("linear")


def linear_dims_name(dims):
    return f"n{dims['n']}_m{dims['m']}_s{dims['s']}"


def linear_dims(wildcards):
    """The `linear.dims` entry a {dims} wildcard names."""
    for dims in LINEAR["dims"]:
        if linear_dims_name(dims) == wildcards.dims:
            return dims
    raise ValueError(f"no linear.dims entry matches {wildcards.dims}")


def linear_instance_file(wildcards):
    """The user's instance file for these dims (with {n}, {m}, {s} filled in), or None."""
    template = LINEAR["instance_file"]
    return None if template is None else template.format(**linear_dims(wildcards))


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


def stabilized_run(dataset, beta, seed):
    return f"results/runs/{dataset}/beta{fmt(beta)}/seed{seed}"


def finetuned_run(dataset, beta, seed, lam):
    return f"results/runs/{dataset}/beta{fmt(beta)}/seed{seed}/lambda{fmt(lam)}"


def all_runs(phase):
    """Run directories of one phase over the whole grid."""
    runs = []
    for dataset in DEEP["datasets"]:
        for beta in DEEP["betas"]:
            for seed in DEEP["seeds"]:
                if phase == "stabilize":
                    runs.append(stabilized_run(dataset, beta, seed))
                else:
                    runs.extend(finetuned_run(dataset, beta, seed, lam) for lam in DEEP["lambdas"])
    return runs


RUN_PATTERN = re.compile(
    rf"(?P<dataset>[A-Za-z0-9_]+)/beta(?P<beta>{NUMBER})/seed(?P<seed>\d+)(/lambda(?P<lam>{NUMBER}))?"
)


def parse_run(run):
    """dataset, phase, beta, lambda and seed of a run path below results/runs/."""
    match = RUN_PATTERN.fullmatch(run)
    finetune = match["lam"] is not None
    return {
        "dataset": match["dataset"],
        "phase": "finetune" if finetune else "stabilize",
        "beta": float(match["beta"]),
        "lambda": float(match["lam"]) if finetune else 0.0,
        "seed": int(match["seed"]),
    }


def train_settings(wildcards, phase):
    """The TrainSettings of one run, from `deep.train` and the wildcards."""
    train = dict(DEEP["train"])
    steps = train.pop("stabilize_steps"), train.pop("finetune_steps")
    lam = float(wildcards.lam) if phase == "finetune" else 0.0
    if phase == "stabilize":
        run = stabilized_run(wildcards.dataset, wildcards.beta, wildcards.seed)
    else:
        run = finetuned_run(wildcards.dataset, wildcards.beta, wildcards.seed, wildcards.lam)
    return train | {
        "steps": steps[0] if phase == "stabilize" else steps[1],
        "beta": float(wildcards.beta),
        "lam": lam,
        "seed": int(wildcards.seed),
        "latent_dim": DEEP["latent_dim"],
        "phase": phase,
        "run_name": run.removeprefix("results/runs/"),
        "threads": RESOURCES[phase]["threads"],
    }


def progress_dir(phase):
    """Where a training job keeps its resumable checkpoint: beside its outputs, but not one of
    them, so Snakemake does not delete it when the job is killed."""
    return lambda wildcards, output: os.path.join(
        os.path.dirname(output.model), f".progress-{phase}"
    )


def evaluation_settings(wildcards):
    return dict(DEEP["evaluate"]) | {"device": DEEP["train"]["device"]}


def figure_runs(pairs):
    """(dataset, β, λ) runs of the figure seed for the requested (β, λ) pairs: each pair is
    replaced by the nearest grid point (nearest in log2 β, then in λ)."""
    if not DEEP["datasets"]:
        return []
    settings = []
    seed = config["figures"]["seed"]
    if seed not in DEEP["seeds"]:
        config_error("figures.seed", f"{seed} is not one of deep.seeds {DEEP['seeds']}")
    for dataset in DEEP["datasets"]:
        for beta, lam in pairs:
            near_beta = min(DEEP["betas"], key=lambda b: (abs(math.log2(b / beta)), b))
            near_lam = min(DEEP["lambdas"], key=lambda x: (abs(x - lam), x))
            settings.append(
                {
                    "dataset": dataset,
                    "phase": "finetune",
                    "beta": near_beta,
                    "lambda": near_lam,
                    "requested_beta": beta,
                    "requested_lambda": lam,
                    "run": finetuned_run(dataset, near_beta, seed, near_lam),
                }
            )
    return settings


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


GPU_LIMIT = local_gpu_limit(visible_gpus(), RESOURCES["jobs_per_gpu"])
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


def figure_files(names):
    return [f"results/figures/{name}.{ext}" for name in names for ext in ("pdf", "png")]


def all_targets():
    """Every final output the config asks for."""
    targets = []
    if LINEAR is not None:
        targets += ["results/tables/linear_metrics.csv", "results/tables/linear_summary.csv"]
        targets += figure_files(LINEAR_FIGURES)
    if DEEP["datasets"]:
        targets += [f"results/datasets/{d}_samples.png" for d in DEEP["datasets"]]
        targets += [f"results/tables/{name}" for name in DEEP_TABLES + SELECTION_TABLES]
        targets += figure_files(DEEP_FIGURES)
    return targets


check_linear_config()
check_deep_config()
