"""This workflow as a module of another (Snakemake's `module` directive, the way the Snakemake
workflow catalog deploys workflows): planned and run from an outer workflow, with its config."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from workflow_runner import REPO, TINY_LINEAR, write_config

from lambdabeta.plan.costs import benchmark_file

pytestmark = pytest.mark.slow

OUTER_SNAKEFILE = """\
configfile: "{repo}/config/config.yaml"
configfile: "own.yaml"


module lambdabeta:
    snakefile:
        "{repo}/Snakefile"
    config:
        config


use rule * from lambdabeta as lambdabeta_*


rule instance_shape:
    input:
        "results/linear/{dims}/instance.npz",
    output:
        "instance_shape.txt",
    run:
        import numpy

        with numpy.load(input[0]) as instance, open(output[0], "w") as shape:
            shape.write(" ".join(map(str, instance["Gamma"].shape)))
"""


def outer_snakemake(workdir, *args):
    """Snakemake on the outer workflow in ``workdir``, from a folder that is not this one."""
    command = [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=workdir, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_an_outer_workflow_imports_this_one_and_runs_it_with_its_own_config(tmp_path):
    # the outer workflow's own config: a linear study of other dimensions, no deep runs
    linear = TINY_LINEAR["linear"]
    own = {
        **TINY_LINEAR,
        "linear": {
            **linear,
            "dims": [{"n": 10, "m": 3, "s": 2}],
            # the paper config's clip is per n (50, 100); one value for this n
            "adamw": {**linear["adamw"], "grad_clip": 1.0},
        },
    }
    write_config(tmp_path, own, name="own.yaml")
    dims = "n10_m3_s2"
    (tmp_path / "Snakefile").write_text(OUTER_SNAKEFILE.format(repo=REPO, dims=dims))

    # the whole linear study plans under the importing workflow's names
    planned = outer_snakemake(tmp_path, "-n", "--quiet", "rules")
    for rule in ("lambdabeta_linear_instance", "lambdabeta_linear_adamw", "lambdabeta_claims"):
        assert rule in planned
    assert "lambdabeta_stabilize" not in planned  # its config runs no deep study

    # the smallest target, and a rule of the outer workflow reading it
    outer_snakemake(tmp_path, "--cores", "1", "instance_shape.txt")
    log = f"logs/linear/{dims}/instance.log"
    assert (tmp_path / log).exists() and (tmp_path / benchmark_file(log)).exists()
    assert (tmp_path / "instance_shape.txt").read_text().split() == ["10", "2"]  # Γ: n × s
    with np.load(tmp_path / f"results/linear/{dims}/instance.npz") as instance:
        assert np.isfinite(instance["Gamma"]).all()
