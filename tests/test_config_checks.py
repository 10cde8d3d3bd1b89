"""Every bad setting is refused when the workflow is parsed, by a dry run, before any job: the
message names the dotted config key, the value, the rule it breaks and the config file."""

from __future__ import annotations

import math

import pytest
import yaml
from workflow_runner import REPO, TINY_LINEAR, snakemake, with_setting, write_config

from lambdabeta.plan import checks

VALID = {
    **TINY_LINEAR,
    "datasets": {"toy": {"format": "procedural",
                         "subgrid": {"scale": 2, "orientation": 2, "pos_x": 4, "pos_y": 4}}},
    "deep": {
        "datasets": ["toy"], "betas": [1, 4], "lambdas": [0, 8], "seeds": [0], "latent_dim": 4,
        "train": {"batch_size": 16, "stabilize_steps": 20, "finetune_steps": 10, "log_every": 5,
                  "checkpoint_every": 10, "device": "cpu"},
        "adaptive": {"enabled": True, "betas": [4], "reference_beta": 1},
        "evaluate": {"num_train": 40, "num_test": 16, "batch_size": 16, "bce_window": 5,
                     "reconstruction_images": 2},
    },
    "figures": {"seed": 0, "reconstructions": [[1, 0]], "mi_heatmaps": [[1, 0], [4, 8]]},
}  # fmt: skip
"""A small valid config: 3 × 2 × 2 × 4 × 4 = 192 toy images."""

BAD = [
    # (changes: dotted key → value, the key the error must name)
    ({"deep.train.lr": math.nan}, "deep.train.lr"),
    ({"deep.train.lr": -1.0}, "deep.train.lr"),
    ({"deep.train.batch_size": 500}, "deep.train.batch_size"),  # more than the 192 images
    ({"deep.train.adam_eps": 0.0}, "deep.train.adam_eps"),
    ({"deep.train.adam_betas": [0.9, 1.5]}, "deep.train.adam_betas[1]"),
    ({"deep.train.compile": True, "deep.train.cuda_graphs": True}, "deep.train.compile"),
    ({"deep.train.precision": "fp16"}, "deep.train.precision"),
    ({"deep.train.finetune_steps": 0}, "deep.train.finetune_steps"),
    ({"deep.evaluate.num_train": 180}, "deep.evaluate.num_train"),  # 180 + 16 > 192
    ({"deep.evaluate.bce_window": 15}, "deep.evaluate.bce_window"),  # finetunes run 10 steps
    ({"deep.evaluate.representations": ["sampled"]}, "deep.evaluate.representations"),
    ({"deep.evaluate.reconstruction_images": 17}, "deep.evaluate.reconstruction_images"),
    ({"deep.evaluate.nll_images": 17}, "deep.evaluate.nll_images"),
    ({"deep.evaluate.null_shuffles": 5}, "deep.evaluate.null_shuffles"),
    ({"deep.evaluate.dci.num_test": 17}, "deep.evaluate.dci.num_test"),  # more than num_test
    ({"deep.evaluate.dci.num_train": 1}, "deep.evaluate.dci.num_train"),
    ({"deep.evaluate.factor_vae.batch_size": 1}, "deep.evaluate.factor_vae.batch_size"),
    ({"deep.adaptive.lambda_min": 10.0, "deep.adaptive.lambda_max": 1.0},
     "deep.adaptive.lambda_min"),
    ({"deep.adaptive.initial_lambda": 1.0e5}, "deep.adaptive.initial_lambda"),
    ({"deep.adaptive.reference_beta": 7}, "deep.adaptive.reference_beta"),
    ({"deep.adaptive.betas": [3]}, "deep.adaptive.betas"),
    # a value that fits none of the schema's alternatives: named by its key all the same
    ({"deep.adaptive.betas": "all"}, "deep.adaptive.betas"),
    ({"deep.datasets": ["celeba"]}, "deep.datasets"),
    ({"linear.dims": [{"n": 5, "m": 6, "s": 2}]}, "linear.dims[0].m"),
    ({"linear.dims": [{"n": 8, "m": 1, "s": 2}]}, "linear.dims[0].m"),
    ({"linear.dims": [{"n": 8, "m": 3, "s": 2}] * 2}, "linear.dims"),
    ({"linear.instance_file": "no/{n}.npz"}, "linear.instance_file"),
    ({"linear.dims": [{"n": 5, "m": 3, "s": 7}]}, "linear.dims[0].s"),
    ({"linear.fixed_point": {"tol": math.inf}}, "linear.fixed_point.tol"),
    ({"linear.noise_var": math.nan}, "linear.noise_var"),
    ({"linear.betas": [-1, 4]}, "linear.betas[0]"),
    ({"linear.lambdas": []}, "linear.lambdas"),
    ({"linear.methods": ["newton"]}, "linear.methods[0]"),
    ({"linear.restarts": 0}, "linear.restarts"),
    ({"selection.rho": math.nan}, "selection.rho"),
    ({"figures.seed": 9}, "figures.seed"),
    ({"resources.evaluate": {"mem_mb": 100}}, "resources.evaluate.mem_mb"),
]  # fmt: skip


def bad_config(changes: dict) -> dict:
    config = VALID
    for key, value in changes.items():
        config = with_setting(config, key, value)
    return config


# through a real Snakemake process (each costs a Snakemake start-up): the values that used to
# reach a job or pass silently, one per rule; the in-process test below covers every entry of BAD
DRY_RUN = (
    "deep.train.lr0", "deep.train.batch_size", "deep.train.adam_eps", "deep.train.adam_betas[1]",
    "deep.train.compile", "deep.train.precision", "deep.train.finetune_steps",
    "deep.evaluate.num_train", "deep.evaluate.bce_window", "deep.evaluate.representations",
    "deep.evaluate.null_shuffles", "deep.evaluate.dci.num_test", "deep.adaptive.lambda_min",
    "deep.adaptive.initial_lambda",
    "deep.adaptive.reference_beta", "deep.adaptive.betas0", "linear.dims[0].m0", "linear.dims",
    "linear.instance_file", "linear.dims[0].s", "linear.fixed_point.tol", "linear.noise_var",
    "figures.seed", "resources.evaluate.mem_mb",
)  # fmt: skip


def case_ids(cases) -> list[str]:
    """pytest's ids for ``cases``: the key, numbered where several cases share it."""
    keys = [key for _, key in cases]
    shared = {key for key in keys if keys.count(key) > 1}
    return [f"{key}{keys[:i].count(key)}" if key in shared else key for i, key in enumerate(keys)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "key"),
    [case for case, name in zip(BAD, case_ids(BAD), strict=True) if name in DRY_RUN],
    ids=[name for name in case_ids(BAD) if name in DRY_RUN],
)
def test_a_dry_run_refuses_the_bad_value_naming_its_key(tmp_path, changes, key):
    path = write_config(tmp_path, bad_config(changes), name="mine.yaml")
    result = snakemake(tmp_path, "-n", config=path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"config key {key}" in output, output[-3000:]
    assert "mine.yaml" in output  # the file the value came from
    assert "Job stats" not in output and not (tmp_path / "results").exists()


def test_the_dry_run_cases_are_bad_values():
    assert set(DRY_RUN) <= set(case_ids(BAD)) and len(DRY_RUN) >= 20


@pytest.mark.parametrize(("changes", "key"), BAD, ids=case_ids(BAD))
def test_the_checks_name_the_key_value_and_rule(tmp_path, changes, key):
    """The same refusals, from the checks the workflow runs (without a Snakemake process)."""
    from snakemake.utils import validate

    config = bad_config(changes)
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    with pytest.raises(checks.ConfigError) as refused:
        checks.check_schema(config, str(schema), ["mine.yaml"])
        validate(config, schema=str(schema))
        checks.check_config(config, ["mine.yaml"])
    problem = next(p for p in refused.value.problems if p.key == key)
    assert problem.rule and str(problem).startswith(f"{key} = ")
    assert "(from mine.yaml)" in str(refused.value)


def test_a_valid_config_passes_every_check():
    from snakemake.utils import validate

    config = bad_config({})
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    checks.check_schema(config, str(schema))
    validate(config, schema=str(schema))
    checks.check_config(config)


def test_every_problem_is_reported_at_once():
    from snakemake.utils import validate

    config = bad_config({"deep.train.lr": math.nan, "deep.train.batch_size": 500,
                         "deep.evaluate.bce_window": 15})  # fmt: skip
    validate(config, schema=str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    with pytest.raises(checks.ConfigError, match="has 3 problems") as refused:
        checks.check_config(config, ["a.yaml", "b.yaml"])
    message = str(refused.value)
    assert "(from a.yaml, b.yaml)" in message
    assert "deep.train.batch_size = 500: is larger than dataset 'toy' (192 images)" in message


def test_a_yaml_error_names_the_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("deep:\n  train:\n    lr: [1e-4\n  seeds: [0]\n")
    with pytest.raises(ValueError, match=r"broken.yaml, line \d+, column \d+ is not valid YAML"):
        checks.check_config_file(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping of config keys"):
        checks.check_config_file(listed)


@pytest.mark.slow
def test_a_dry_run_names_a_broken_workflow_config_file(tmp_path):
    """The workflow's own config/config.yaml is read by the Snakefile; a YAML error in it is
    named by file and line (a --configfile is read by Snakemake before the workflow starts)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("deep:\n  seeds: [0\n")
    result = snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "config/config.yaml, line" in result.stdout + result.stderr


def test_the_paper_and_demo_configs_pass():
    from snakemake.utils import validate

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for config in (paper, merge(paper, demo)):
        checks.check_schema(config, str(schema))
        validate(config, schema=str(schema))
        checks.check_config(config)


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        is_section = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = merge(base[key], value) if is_section else value
    return merged


def test_dataset_sizes_follow_the_grid_and_subgrid():
    from lambdabeta.plan.datasets import dataset_size

    assert dataset_size({"format": "mpi3d_npz"}) == 1_036_800
    assert dataset_size({"format": "shapes3d_h5"}) == 480_000
    assert dataset_size({"format": "dsprites_npz"}) == 737_280
    assert dataset_size(VALID["datasets"]["toy"]) == 192
    assert dataset_size({"format": "unknown"}) is None
