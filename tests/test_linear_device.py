"""Where the AdamW study runs: the scheduler's GPU request (`resources.linear_adamw.gpu`), the
device a job resolves when it runs (`linear.adamw.device`), and the same results on a GPU as on
the CPU."""

from __future__ import annotations

import copy
import logging
import re
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from linear_helpers import small_instance
from snakemake.utils import validate
from workflow_runner import REPO, TINY_LINEAR, snakemake, with_setting, write_config

from lambdabeta import linear as L
from lambdabeta.devices import select_device
from lambdabeta.linear import study
from lambdabeta.linear.settings import AdamWSettings, LinearSettings
from lambdabeta.settings import job_device

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCRIPTS = REPO / "workflow" / "scripts"
EPSILON = 5.0e-5
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ---- the device a job runs on ------------------------------------------------------------------


def device_of_job(spec, granted, cuda_devices, monkeypatch, lock_dir) -> torch.device:
    """The device the AdamW script picks for ``spec`` and ``granted`` GPUs, in a process where
    torch sees ``cuda_devices`` CUDA devices."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_devices > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_devices)
    return select_device(
        job_device(spec, granted), lock_dir=lock_dir, setting="linear.adamw.device"
    )


@pytest.mark.parametrize(
    ("spec", "granted", "cuda_devices", "expected"),
    [
        ("cpu", 1, 2, "cpu"),
        ("auto", 1, 0, "cpu"),  # a GPU slot granted, but no CUDA in this process
        ("auto", 0, 2, "cpu"),  # GPUs here, but none granted to this job
        ("auto", 1, 2, "cuda:0"),  # the first free GPU slot
        ("cuda", 0, 2, "cpu"),  # the scheduler's grant wins over the config
        ("cuda", 0, 0, "cpu"),
        ("cuda", 1, 1, "cuda:0"),
        ("cuda:1", 1, 2, "cuda:1"),
    ],
)
def test_the_job_runs_on_the_configured_device_it_was_granted(
    spec, granted, cuda_devices, expected, monkeypatch, tmp_path
):
    device = device_of_job(spec, granted, cuda_devices, monkeypatch, tmp_path)
    assert device == torch.device(expected)


@pytest.mark.parametrize(("spec", "cuda_devices"), [("cuda", 0), ("cuda:0", 0), ("cuda:2", 2)])
def test_a_gpu_that_is_not_there_is_an_error_naming_the_key(
    spec, cuda_devices, monkeypatch, tmp_path
):
    with pytest.raises(RuntimeError, match=r"linear\.adamw\.device.*CUDA device"):
        device_of_job(spec, 1, cuda_devices, monkeypatch, tmp_path)


# ---- the config key ----------------------------------------------------------------------------


def validated_adamw(adamw: dict) -> dict:
    """`linear.adamw` of a tiny config as the workflow sees it: validated, defaults filled in."""
    config = with_setting(copy.deepcopy(TINY_LINEAR), "linear.adamw", adamw)
    validate(config, str(SCHEMA))
    return config["linear"]["adamw"]


def test_the_schema_accepts_the_device_forms_and_defaults_to_auto():
    assert validated_adamw({})["device"] == "auto"
    for device in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert validated_adamw({"device": device})["device"] == device


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda0", "mps", " cpu", 1])
def test_the_schema_and_the_settings_reject_other_devices(device):
    with pytest.raises(Exception, match=r"device|pattern|type"):
        validated_adamw({"device": device})
    with pytest.raises(ValueError, match=r"linear\.adamw\.device"):
        AdamWSettings(device=device)


def test_the_device_reaches_no_job_params():
    """Jobs are the same whatever the device, so changing it reruns nothing."""
    settings = {
        device: LinearSettings.from_config(TINY_LINEAR["linear"] | {"adamw": {"device": device}})
        for device in ("auto", "cpu", "cuda:1")
    }
    for method in ("fixed_point", "adamw"):
        jobs = [s.study_job("n12_m3_s2", method).science() for s in settings.values()]
        assert jobs[0] == jobs[1] == jobs[2]
        assert "device" not in yaml.safe_dump(jobs[0])


# ---- the entry script --------------------------------------------------------------------------


@pytest.fixture
def study_job_files(tmp_path, monkeypatch, fake_snakemake):
    """A factory of ``snakemake`` objects for the AdamW study script on a small instance; the
    script's redirection of the output streams and its thread count are undone afterwards."""
    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(sys, stream, getattr(sys, stream))
    monkeypatch.setattr(logging.getLogger("lambdabeta"), "handlers", [])
    threads = torch.get_num_threads()
    instance_path = tmp_path / "instance.npz"
    L.save_instance(str(instance_path), small_instance())
    linear = {"dims": [{"n": 24, "m": 3, "s": 3}], "restarts": 2, "betas": [1, 8],
              "lambdas": [0, 2], "methods": ["adamw"], "adamw": {"steps": 5}}  # fmt: skip

    def job(device: str, granted_gpus: int):
        science = LinearSettings.from_config(linear).study_job("n24_m3_s3", "adamw").science()
        return fake_snakemake(
            input={"instance": str(instance_path)},
            output=[str(tmp_path / "adamw.csv")],
            params={"science": science},
            log=[str(tmp_path / "adamw.log")],
            resources={"gpu": granted_gpus},
            config={
                "linear": linear | {"adamw": {"steps": 5, "device": device}},
                "resources": {"jobs_per_gpu": 1},
            },
        )

    yield job
    torch.set_num_threads(threads)


def test_the_script_logs_the_device_and_runs_adamw_there(study_job_files, tmp_path, monkeypatch):
    devices = []
    run_adamw, run_adamw_in_processes = study.run_adamw, study.run_adamw_in_processes

    def recording_run_adamw(*args, **kwargs):
        devices.append(kwargs["device"])
        return run_adamw(*args, **kwargs)

    def recording_run_adamw_in_processes(*args, **kwargs):
        devices.append(torch.device("cpu"))
        return run_adamw_in_processes(*args, **kwargs)

    monkeypatch.setattr(study, "run_adamw", recording_run_adamw)
    monkeypatch.setattr(study, "run_adamw_in_processes", recording_run_adamw_in_processes)
    snakemake_object = study_job_files("cuda", granted_gpus=0)  # no GPU granted: the CPU
    runpy.run_path(str(SCRIPTS / "linear_study.py"), init_globals={"snakemake": snakemake_object})
    assert devices == [torch.device("cpu")]
    assert len(pd.read_csv(tmp_path / "adamw.csv")) == 2 * 2 * 2
    log = (tmp_path / "adamw.log").read_text()
    assert "AdamW steps on cpu (linear.adamw.device: cuda, GPUs granted: 0)" in log


@no_cuda
def test_the_script_stops_when_cuda_is_asked_for_but_absent(study_job_files, tmp_path):
    snakemake_object = study_job_files("cuda", granted_gpus=1)
    with pytest.raises(RuntimeError, match=r"linear\.adamw\.device"):
        runpy.run_path(
            str(SCRIPTS / "linear_study.py"), init_globals={"snakemake": snakemake_object}
        )
    assert not (tmp_path / "adamw.csv").exists()


# ---- the same results on a GPU ----------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("parameterization", ["authors", "log_cholesky"])
def test_adamw_on_cuda_equals_adamw_on_the_cpu(parameterization):
    """A few steps on the GPU give the CPU's iterates within 1e-8 relative (float64 both)."""
    instance = small_instance()
    grid = L.grid_entries(
        instance, 4, [1.0, 16.0], [0.0, 2.0], restarts=2, seed=6, init="authors", method="adamw"
    )
    settings = {
        "steps": 40,
        "lr": 1e-3,
        "weight_decay": 0.01,
        "grad_clip": (2.0, 3.0),
        "report": "best",
        "parameterization": L.parameterization_named(parameterization, EPSILON),
    }
    on_cpu = L.run_adamw(instance, grid.init, grid.beta, grid.lam, device="cpu", **settings)
    on_gpu = L.run_adamw(instance, grid.init, grid.beta, grid.lam, device="cuda", **settings)
    for field in ("a", "b", "sigma_z", "sigma_w"):
        gpu, cpu = getattr(on_gpu.params, field), getattr(on_cpu.params, field)
        assert gpu.device.type == "cpu"
        torch.testing.assert_close(gpu, cpu, rtol=1e-8, atol=0.0)
    assert torch.equal(on_gpu.reported_iteration, on_cpu.reported_iteration)


# ---- the scheduler's request, in a dry-run -----------------------------------------------------


def planned_requests(workdir: Path, device: str, gpu: int) -> dict[str, tuple[str | None, int]]:
    """The `gpu` resource and the threads `snakemake -n --cores 8` plans for each linear study
    job under ``device`` and `resources.linear_adamw.gpu` = ``gpu``."""
    config = with_setting(TINY_LINEAR, "linear.adamw.device", device)
    config = with_setting(config, "resources.linear_adamw", {"gpu": gpu, "threads": 8})
    config = write_config(workdir, config)
    targets = [f"results/linear/n12_m3_s2/{method}.csv" for method in ("adamw", "fixed_point")]
    result = snakemake(workdir, "-n", "--cores", "8", *targets, config=config)
    requests, rule = {}, None
    for line in result.stdout.splitlines():
        if match := re.fullmatch(r"(?:local)?rule (\w+):", line.strip()):
            rule = match[1]
            requests[rule] = (None, 1)  # a single-threaded job's threads are not printed
        elif rule in ("linear_adamw", "linear_fixed_point"):
            if match := re.fullmatch(r"threads: (\d+)", line.strip()):
                requests[rule] = (requests[rule][0], int(match[1]))
            elif line.strip().startswith("resources:"):
                found = re.search(r"\bgpu=(\d+)", line)
                requests[rule] = (found[1] if found else None, requests[rule][1])
    return {rule: requests[rule] for rule in ("linear_adamw", "linear_fixed_point")}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("device", "gpu", "adamw_request"),
    # which device a granted job then uses is the unit test of `job_device` above
    [("cuda", 0, ("0", 8)), ("cpu", 1, ("1", 8)), ("auto", 1, ("1", 8))],
    ids=["cuda_without_a_request", "cpu_with_a_request", "auto_with_a_request"],
)
def test_the_adamw_job_asks_for_a_gpu_by_its_resources_entry_alone(
    tmp_path, monkeypatch, device, gpu, adamw_request
):
    """Whatever the device key and the GPUs the planning process sees, the request is
    `resources.linear_adamw.gpu`, and the job takes its 8 threads (one process each on the
    CPU); the fixed point asks for no GPU."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a GPU visible to the planning process
    assert planned_requests(tmp_path, device, gpu) == {
        "linear_adamw": adamw_request,
        "linear_fixed_point": (None, 1),
    }
