"""Scheduling tests: the SLURM profile on a real SLURM cluster, and GPU limits on a workstation.

The SLURM tests need a running cluster with a GPU GRES; `.ci/slurm-cluster.sh` (as root) starts a
single-node one from Debian's packages, with a stand-in GPU. Where none runs, they are skipped
with the reason. Each test runs Snakemake in a fresh copy of the workflow (as a user would, from
the repository root) on the reduced demo `tests/slurm/tiny.yaml`, with `slurm/config.yaml` whose
YOUR_* placeholders are filled in for the cluster (see `write_test_profile`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs", "slurm", "tests/slurm")
TINY_CONFIG = "tests/slurm/tiny.yaml"
RUN = "results/runs/dsprites_procedural/beta4/seed0"
"""The stabilized run of the tiny config (its only β and seed)."""
MODELS_OF_TWO_SEEDS = [
    f"results/runs/dsprites_procedural/beta4/seed{seed}/model.pt" for seed in (0, 1)
]

TABLES = (
    "linear_metrics.csv",
    "linear_summary.csv",
    "deep_metrics.csv",
    "deep_summary.csv",
    "selection.csv",
    "tchebycheff_scores.csv",
    "pareto_front.csv",
)
LOCAL_RULES = (
    "linear_instance",
    "linear_tables",
    "linear_phase_tables",
    "fig_linear_phase",
    "deep_tables",
    "select_hyperparameters",
    "fig2_linear_beta_sweep",
    "fig3_linear_lambda_heatmaps",
    "fig_linear_contraction",
    "fig4_beta_sweep",
    "fig5_lambda_heatmaps",
    "fig6_tchebycheff",
    "fig7_reconstructions",
    "fig8_mi_heatmaps",
    "all",
)

# the plugin's first status query comes this long after a submission (40 s by default, which
# only slows a run of seconds-long jobs down)
STATUS_CHECK_DELAY = 2


# ---- running Snakemake -----------------------------------------------------------------------


def copy_workflow(destination: Path) -> Path:
    """The files a user's checkout has, copied to `destination` (no results, no .snakemake)."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        target = destination / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@dataclass
class SnakemakeRun:
    """A Snakemake process started in `workdir`, its output going to `log_path`."""

    workdir: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        """The exit code; kills the process (and its SLURM jobs) after `timeout` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"snakemake ran longer than {timeout:.0f} s:\n{self.log[-6000:]}")

    def kill(self) -> None:
        """Stop Snakemake and cancel the SLURM jobs of its run (they share the run ID as name)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for run_id in re.findall(r"SLURM run ID: (\S+)", self.log):
            subprocess.run(["scancel", f"--name={run_id}"], check=False)


def start_snakemake(
    workdir: Path,
    *args: str,
    env: dict[str, str | None] | None = None,
    log_name: str = "snakemake.log",
) -> SnakemakeRun:
    """`python -m snakemake ARGS` in `workdir`, with the variables of `env` set (None: unset).
    Put targets before the options that take several values (`--configfile`, `--resources`)."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    log_path = workdir / log_name
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *args],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # so that a timeout can stop it with everything it started
        )
    return SnakemakeRun(workdir, log_path, process)


def run_snakemake(workdir: Path, *args: str, timeout: float, **kwargs) -> str:
    """Run Snakemake to completion, fail the test unless it succeeds; its output."""
    run = start_snakemake(workdir, *args, **kwargs)
    code = run.wait(timeout)
    assert code == 0, f"snakemake {' '.join(args)} exited with {code}:\n{run.log[-8000:]}"
    return run.log


def wait_until(condition: Callable[[], bool], timeout: float, what: str, run: SnakemakeRun):
    """Poll `condition` until it holds; fail (stopping `run`) if Snakemake ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if run.process.poll() is not None or time.monotonic() > deadline:
            run.kill()
            pytest.fail(f"gave up waiting for {what}:\n{run.log[-6000:]}")
        time.sleep(0.2)


# ---- the SLURM cluster ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    partition: str
    account: str
    accounting: bool
    """Whether `sacct` works (slurmdbd), which keeps what SLURM allocated to each job."""


def command_output(*command: str) -> str | None:
    """stdout of `command`, or None if it is missing, fails or hangs."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def find_cluster() -> Cluster | str:
    """The running cluster, or why the SLURM tests cannot run here."""
    hint = "start a test cluster with `.ci/slurm-cluster.sh` (as root)"
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return f"SLURM's commands (sinfo, sbatch) are not installed; {hint}"
    if "UP" not in (command_output("scontrol", "ping") or ""):
        return f"slurmctld does not answer `scontrol ping`; {hint}"
    nodes = (command_output("sinfo", "--noheader", "--Node", "--format=%T %G") or "").split("\n")
    usable = [line for line in nodes if re.match(r"(idle|mixed|allocated|completing)\b", line)]
    if not usable:
        return f"no SLURM node is up (sinfo: {nodes}); {hint}"
    if not any("gpu" in line for line in usable):
        return f"no SLURM node offers a GPU GRES, which the training jobs request; {hint}"
    partitions = (command_output("sinfo", "--noheader", "--format=%P") or "").split()
    default = next((p for p in partitions if p.endswith("*")), partitions[0])
    accounting = command_output("sacct", "--noheader", "-X", "--starttime=now") is not None
    account = "test"  # any name passes without accounting
    if accounting:
        user = os.environ.get("USER") or subprocess.getoutput("id -un")
        associations = command_output(
            "sacctmgr", "--noheader", "--parsable2", "show", "association",
            f"user={user}", "format=account",
        )  # fmt: skip
        account = next(iter((associations or "root").split()), "root")
    return Cluster(default.rstrip("*"), account, accounting)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    found = find_cluster()
    if isinstance(found, str):
        pytest.skip(found)
    return found


def write_test_profile(workdir: Path, cluster: Cluster) -> Path:
    """`slurm/config.yaml` of the copy in `workdir`, as a user fills it in for this cluster.

    Two more changes, both about this machine rather than the profile: no conda (CI has none;
    the test's Python environment has every package), and the first status query after 2 s.
    """
    text = (workdir / "slurm/config.yaml").read_text()
    fill = {
        "YOUR_ACCOUNT": cluster.account,
        "YOUR_CPU_PARTITION": cluster.partition,
        "YOUR_GPU_PARTITION": cluster.partition,
    }
    for placeholder, value in fill.items():
        assert placeholder in text, f"slurm/config.yaml lost its {placeholder} placeholder"
        text = text.replace(placeholder, value)
    profile = yaml.safe_load(text)
    assert profile.pop("software-deployment-method") == "conda"
    profile["slurm-init-seconds-before-status-checks"] = STATUS_CHECK_DELAY
    directory = workdir / "slurm-test"
    directory.mkdir()
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


@dataclass(frozen=True)
class Submission:
    label: str
    """rule_<rule> for a single job, group_<group>_<rules> for a packed group (as the SLURM
    plugin names their log folders)."""
    slurm_id: str
    sbatch: str
    """The sbatch command line, without the `--wrap` part."""


def submissions(log: str) -> list[Submission]:
    """Every SLURM job a (--verbose) Snakemake log reports, in submission order."""
    # an sbatch call names its log folder (--output), and so does the submission it leads to
    calls = re.findall(r"^sbatch call: (sbatch .*--output (\S+)/%j\.log.*)$", log, re.M)
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)/\d+\.log\)", log)
    jobs = []
    for slurm_id, folder in submitted:
        call = next(call for call, output in calls if output == folder)
        calls.remove((call, folder))
        label = folder.split("/slurm_logs/")[1].split("/")[0]
        jobs.append(Submission(label, slurm_id, call.split(" --wrap=")[0]))
    return jobs


def slurm_records(cluster: Cluster, ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """What SLURM recorded about each job ID: one record per run (a requeued job has several),
    with State, Timelimit and the allocated TRES (sacct); State only without accounting."""
    if cluster.accounting:
        fields = ("JobID", "State", "Timelimit", "AllocTRES")
        command = ["sacct", "--noheader", "--parsable2", "-X", "--duplicates"]
        command += [f"--format={','.join(fields)}", "--jobs"]
    else:
        fields = ("JobID", "State")
        command = ["squeue", "--noheader", "--states=all", "--format=%i|%T", "--jobs"]
    output = command_output(*command, ",".join(ids))
    assert output is not None, f"{command[0]} failed for jobs {ids}"
    records: dict[str, list[dict[str, str]]] = {}
    for line in output.strip().splitlines():
        record = dict(zip(fields, line.split("|"), strict=True))
        records.setdefault(record["JobID"], []).append(record)
    return records


def assert_same_numbers(produced: Path, reference: Path) -> None:
    """Two CSV tables agree exactly, apart from the columns that time a run (wall clock)."""
    ours, theirs = pd.read_csv(produced), pd.read_csv(reference)
    timing = [column for column in ours.columns if column.split("_")[-1] == "seconds"]
    pd.testing.assert_frame_equal(
        ours.drop(columns=timing), theirs.drop(columns=timing), check_exact=True, obj=produced.name
    )


def training_jobs(log: str) -> list[Submission]:
    """The SLURM jobs submitted for the stabilize rule, in order."""
    return [job for job in submissions(log) if job.label == "rule_stabilize"]


def job_state(slurm_id: str) -> str:
    """The state squeue reports for a job ("" once it has left squeue)."""
    output = command_output("squeue", "--noheader", "--states=all", "--format=%T", "-j", slurm_id)
    return (output or "").strip()


def resumed_step(train_log: Path) -> int | None:
    """The step the training run writing `train_log` resumed from, if it did."""
    text = train_log.read_text(errors="replace") if train_log.exists() else ""
    match = re.search(r"resuming from step (\d+)", text)
    return int(match[1]) if match else None


# ---- through SLURM -------------------------------------------------------------------------


# The tests through SLURM run in one worker, in order: they share the one test cluster. Most of
# their time is spent waiting for SLURM, so conftest.py schedules them first.
THROUGH_SLURM = pytest.mark.xdist_group("slurm")


@pytest.mark.slow
@pytest.mark.slurm
@THROUGH_SLURM
def test_profile_runs_the_demo_through_slurm_as_a_local_run_does(cluster, tmp_path):
    on_slurm = copy_workflow(tmp_path / "slurm")
    profile = write_test_profile(on_slurm, cluster)
    # the reference: the same tables from a local run, computed while SLURM runs the workflow
    local = copy_workflow(tmp_path / "local")
    tables = [f"results/tables/{name}" for name in TABLES]
    reference = start_snakemake(local, *tables, "--cores", "1", "--configfile", TINY_CONFIG)
    try:
        started = time.monotonic()
        log = run_snakemake(
            on_slurm, "--profile", str(profile), "--configfile", TINY_CONFIG, "--verbose",
            timeout=600,
        )  # fmt: skip
        slurm_seconds = time.monotonic() - started
        assert reference.wait(600) == 0, reference.log[-8000:]
    finally:
        reference.kill()
    jobs = submissions(log)
    by_label = {job.label: job for job in jobs}

    # compute jobs went to SLURM, the two packed groups as one job each; the rest stayed local
    assert sorted(job.label for job in jobs) == [
        "group_evaluate_evaluate",
        "group_finetune_finetune",
        "rule_linear_adamw",
        "rule_linear_contraction",
        "rule_linear_fixed_point",
        "rule_linear_phase",
        "rule_prepare_dataset",
        "rule_stabilize",
    ]
    for rule in LOCAL_RULES:
        assert f"slurm_logs/rule_{rule}/" not in log
        assert re.search(rf"^localrule {rule}:", log, re.M), f"{rule} did not run locally"

    # SLURM ran every one of them to completion; GPU jobs got the (stand-in) GPU
    records = slurm_records(cluster, [job.slurm_id for job in jobs])
    for job in jobs:
        assert [r["State"] for r in records[job.slurm_id]] == ["COMPLETED"], job
    gpu_labels = {"rule_stabilize", "group_finetune_finetune", "group_evaluate_evaluate"}
    for job in jobs:
        asks_gpu = job.label in gpu_labels
        assert ("--gpus=1" in job.sbatch) == asks_gpu, job.sbatch
        assert "--ntasks-per-gpu" not in job.sbatch  # plugins before 2.7.1 added it
        assert f"-p {cluster.partition}" in job.sbatch and f"-A {cluster.account}" in job.sbatch
        if cluster.accounting:
            assert ("gres/gpu=1" in records[job.slurm_id][0]["AllocTRES"]) == asks_gpu
    # resources come from the config (5 min, 500 MB each); a group asks for the sum of its
    # members' runtimes, but for one GPU and one job's memory and CPUs
    assert "-t 5 --mem 500" in by_label["rule_stabilize"].sbatch
    assert "-t 10 --mem 500" in by_label["group_finetune_finetune"].sbatch  # 2 finetunes
    assert "-t 15 --mem 500" in by_label["group_evaluate_evaluate"].sbatch  # 3 evaluations
    assert "--cpus-per-task=1" in by_label["group_evaluate_evaluate"].sbatch
    for figure in ("fig4_beta_sweep", "fig7_reconstructions", "fig2_linear_beta_sweep"):
        assert (on_slurm / f"results/figures/{figure}.pdf").stat().st_size > 0

    # the same numbers as the local run of the same config
    for name in TABLES:
        assert_same_numbers(on_slurm / "results/tables" / name, local / "results/tables" / name)
    print(f"\nthrough SLURM in {slurm_seconds:.0f} s; sbatch lines:")
    for job in jobs:
        print(f"  {job.label}: {job.sbatch}")


@pytest.mark.slow
@pytest.mark.slurm
@THROUGH_SLURM
def test_training_resumes_after_a_requeue_and_after_a_cancelled_attempt(cluster, tmp_path):
    workdir = copy_workflow(tmp_path / "slurm")
    profile = write_test_profile(workdir, cluster)
    # long enough to be interrupted twice, checkpointing every 20 steps
    longer = {"deep": {"train": {"stabilize_steps": 400, "checkpoint_every": 20}}}
    (workdir / "longer.yaml").write_text(yaml.safe_dump(longer))
    configs = ("--configfile", TINY_CONFIG, "longer.yaml")
    checkpoint = workdir / RUN / ".progress-stabilize/checkpoint.pt"
    train_log = workdir / "logs/train/dsprites_procedural/beta4/seed0/stabilize.log"

    # the reference: the same training, uninterrupted, locally, while SLURM runs the other
    local = copy_workflow(tmp_path / "local")
    (local / "longer.yaml").write_text(yaml.safe_dump(longer))
    reference = start_snakemake(local, f"{RUN}/model.pt", "--cores", "1", *configs)
    run = start_snakemake(
        workdir, f"{RUN}/model.pt", "--profile", str(profile), *configs, "--verbose"
    )
    try:
        wait_until(checkpoint.exists, 180, "the first checkpoint", run)
        (first,) = training_jobs(run.log)

        # SLURM requeues the job (as after preemption or a node failure): the same job runs
        # again and resumes. SLURM holds a requeued job for a while; let it start at once.
        subprocess.run(["scontrol", "requeue", first.slurm_id], check=True)
        wait_until(lambda: job_state(first.slurm_id) == "PENDING", 60, "the requeue", run)
        subprocess.run(
            ["scontrol", "update", f"JobId={first.slurm_id}", "StartTime=now"], check=True
        )
        wait_until(lambda: resumed_step(train_log) is not None, 180, "the requeued run", run)
        after_requeue = resumed_step(train_log)

        # SLURM cancels it (as a time limit would): Snakemake submits attempt 2, which resumes
        saved = checkpoint.stat().st_mtime_ns
        wait_until(lambda: checkpoint.stat().st_mtime_ns != saved, 120, "a new checkpoint", run)
        subprocess.run(["scancel", first.slurm_id], check=True)
        code = run.wait(400)
        assert reference.wait(300) == 0, reference.log[-8000:]
    finally:
        run.kill()
        reference.kill()
    assert code == 0, run.log[-8000:]

    first, retry = training_jobs(run.log)
    assert "-t 5 " in first.sbatch and "-t 10 " in retry.sbatch  # runtime × attempt
    records = slurm_records(cluster, [first.slurm_id, retry.slurm_id])
    runs_of_first = [record["State"] for record in records[first.slurm_id]]
    if cluster.accounting:  # sacct keeps one record per run of a requeued job
        assert runs_of_first[0] == "REQUEUED", runs_of_first
    assert runs_of_first[-1].startswith("CANCELLED"), runs_of_first
    assert [record["State"] for record in records[retry.slurm_id]] == ["COMPLETED"]

    summary = json.loads((workdir / RUN / "run.json").read_text())
    assert 0 < after_requeue < summary["resumed_from_step"] < 400
    assert resumed_step(train_log) == summary["resumed_from_step"]
    assert not checkpoint.parent.exists()  # removed once the phase is done

    # and the twice-interrupted run ends exactly where the uninterrupted local one does
    assert_same_numbers(workdir / RUN / "train_log.csv", local / RUN / "train_log.csv")
    uninterrupted = json.loads((local / RUN / "run.json").read_text())
    assert summary["final"] == uninterrupted["final"]


@pytest.mark.slow
@pytest.mark.slurm
@THROUGH_SLURM
def test_one_gpu_per_submission_does_not_limit_how_many_are_queued(
    cluster, prepared_workflow, tmp_path
):
    workdir = copy_workflow(tmp_path)
    shutil.copytree(prepared_workflow / "resources", workdir / "resources")
    shutil.copy2(prepared_workflow / "seeds.yaml", workdir)
    profile = write_test_profile(workdir, cluster)
    log = run_snakemake(
        workdir, *MODELS_OF_TWO_SEEDS, "--profile", str(profile),
        "--configfile", TINY_CONFIG, "seeds.yaml", "--verbose", timeout=300,
    )  # fmt: skip
    # both training jobs were submitted before either finished; SLURM runs them one after
    # the other on its single stand-in GPU
    first_finish = log.index("Finished jobid")
    assert [job.label for job in submissions(log[:first_finish])] == ["rule_stabilize"] * 2


# ---- local GPU scheduling --------------------------------------------------------------------


def concurrency(log: str, rule: str) -> int:
    """The most jobs of `rule` a local Snakemake run (its log) had running at once."""
    running = most = 0
    for line in log.splitlines():
        if line.startswith(f"localrule {rule}:"):
            running += 1
            most = max(most, running)
        elif re.match(rf"Finished jobid: \d+ \(Rule: {rule}\)", line):
            running -= 1
    return most


@pytest.fixture(scope="module")
def prepared_workflow(tmp_path_factory) -> Path:
    """A copy of the workflow with the tiny dataset prepared and two seeds to train."""
    workdir = copy_workflow(tmp_path_factory.mktemp("gpu-limit"))
    (workdir / "seeds.yaml").write_text(yaml.safe_dump({"deep": {"seeds": [0, 1]}}))
    images = "resources/datasets/dsprites_procedural/images.npy"
    run_snakemake(
        workdir, images, "--cores", "1", "--configfile", TINY_CONFIG, "seeds.yaml", timeout=300
    )
    return workdir


def fake_nvidia_smi(directory: Path, gpus: int) -> Path:
    """A folder holding an `nvidia-smi` that lists `gpus` GPUs, as the real one does."""
    directory.mkdir(exist_ok=True)
    listing = "".join(
        f"GPU {index}: NVIDIA H100 (UUID: GPU-{index:08x})\\n" for index in range(gpus)
    )
    script = directory / "nvidia-smi"
    script.write_text(f'#!/bin/sh\n[ "$1" = --list-gpus ] && printf "{listing}"\n')
    script.chmod(0o755)
    return directory


@pytest.mark.slow
@pytest.mark.xdist_group("local_gpus")  # one worker: they share the prepared workflow
@pytest.mark.parametrize(
    ("visible_devices", "listed_gpus", "jobs_per_gpu", "extra", "limit"),
    [
        ("0", 0, 1, [], 1),  # one GPU, one job on it at a time
        ("0", 0, 2, [], 2),  # one GPU shared by two jobs
        ("GPU-0a1b,GPU-2c3d", 0, 1, [], 2),  # two GPUs named by UUID
        (None, 2, 1, [], 2),  # CUDA_VISIBLE_DEVICES unset: the GPUs nvidia-smi lists
        ("", 2, 1, [], None),  # no GPU: training runs on the CPU, bounded by --cores only
        ("0", 0, 1, ["--resources", "gpu=2"], 2),  # the command line overrides the detection
    ],
)
def test_local_runs_never_put_more_jobs_on_a_gpu_than_configured(
    prepared_workflow, tmp_path, visible_devices, listed_gpus, jobs_per_gpu, extra, limit
):
    workdir = prepared_workflow
    jobs = {"resources": {"jobs_per_gpu": jobs_per_gpu}}
    (workdir / "jobs.yaml").write_text(yaml.safe_dump(jobs))
    tools = fake_nvidia_smi(tmp_path / "bin", listed_gpus)
    env = {"CUDA_VISIBLE_DEVICES": visible_devices, "PATH": f"{tools}:{os.environ['PATH']}"}
    log = run_snakemake(
        workdir, *MODELS_OF_TWO_SEEDS, "--forcerun", "stabilize", "--cores", "2", *extra,
        "--configfile", TINY_CONFIG, "seeds.yaml", "jobs.yaml", env=env, timeout=300,
    )  # fmt: skip
    provided = re.search(r"^Provided resources: (.*)$", log, re.M)
    if limit is None:
        assert provided is None or "gpu" not in provided[1]
        assert concurrency(log, "stabilize") == 2
    else:
        assert provided, f"no GPU limit was set:\n{log[-3000:]}"
        assert re.search(rf"gpu=Resource\(\"gpu\", {limit}\)|gpu={limit}\b", provided[1])
        assert concurrency(log, "stabilize") == min(limit, 2)
