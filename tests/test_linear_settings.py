"""Settings of the linear study: one source of defaults, per-n values, science-only job params."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml
from snakemake.utils import validate
from workflow_runner import REPO

from lambdabeta.linear.settings import (
    AdamWSettings,
    ContractionJob,
    ContractionSettings,
    Dims,
    FixedPointSettings,
    InstanceJob,
    LinearSettings,
    PhaseSettings,
    StudyJob,
)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
NESTED = {
    "fixed_point": FixedPointSettings,
    "adamw": AdamWSettings,
    "contraction": ContractionSettings,
    "phase": PhaseSettings,
}
MINIMAL = {
    "dims": [{"n": 50, "m": 10, "s": 5}, {"n": 100, "m": 10, "s": 5}],
    "restarts": 3,
    "betas": [1, 4],
    "lambdas": [0, 2],
    "methods": ["fixed_point", "adamw"],
}


def linear_schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())["properties"]["linear"]


def validated(linear: dict) -> dict:
    """The `linear` section as the workflow sees it: validated, defaults filled in."""
    config = {"linear": copy.deepcopy(linear), "deep": {"datasets": [], "betas": [1],
                                                         "lambdas": [0], "seeds": [0]}}  # fmt: skip
    validate(config, str(SCHEMA))
    return config["linear"]


def merged(base: dict, update: dict) -> dict:
    """``update`` over ``base``, nested mappings merged, as Snakemake merges config files."""
    result = dict(base)
    for key, value in update.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        result[key] = merged(base[key], value) if both else value
    return result


def test_schema_defaults_are_the_settings_defaults():
    """Every default of the schema's `linear` section, nested sections included, equals the
    default of the matching settings field (so neither can change alone)."""
    properties = linear_schema()["properties"]
    top = {f.name: f for f in dataclasses.fields(LinearSettings)}
    assert set(properties) == set(top)
    checked = 0
    for key, schema in properties.items():
        if key in NESTED:
            assert schema["default"] == {}, key
            settings_class = NESTED[key]
            sub = schema["properties"]
            assert set(sub) == {f.name for f in dataclasses.fields(settings_class)}, key
            for name, sub_schema in sub.items():
                from_schema = settings_class.from_config({name: sub_schema["default"]})
                assert from_schema == settings_class(), f"linear.{key}.{name}"
                checked += 1
        elif "default" in schema:
            from_schema = LinearSettings.from_config(MINIMAL | {key: schema["default"]})
            assert from_schema == LinearSettings.from_config(MINIMAL), f"linear.{key}"
            checked += 1
        else:  # required keys have no default on either side
            assert key in linear_schema()["required"] and top[key].default is dataclasses.MISSING
    assert checked >= 20


def test_validated_minimal_config_gives_the_default_settings():
    assert LinearSettings.from_config(validated(MINIMAL)) == LinearSettings.from_config(MINIMAL)


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_build_settings(name):
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["linear"]
    linear = yaml.safe_load((REPO / "config" / name).read_text())["linear"]
    if name != "config.yaml":  # a --configfile merges into config.yaml's nested mappings
        linear = merged(paper, linear)
    settings = LinearSettings.from_config(validated(linear))
    for dims in settings.dims:
        for method in settings.methods:
            job = settings.study_job(dims.name, method)
            assert StudyJob.from_science(job.science()) == job
    if name == "config.yaml":
        assert settings.init == "authors"
        assert settings.adamw.for_n(50).steps == 30_000
        assert settings.adamw.for_n(100).grad_clip == (2.0, 3.0)
        assert settings.adamw.for_n(100).report == "best"


def test_per_n_values_resolve_and_a_missing_n_names_the_key():
    adamw = AdamWSettings.from_config({"steps": {50: 10, 100: 20}, "grad_clip": 0.5})
    assert adamw.for_n(50).steps == 10 and adamw.for_n(100).steps == 20
    assert adamw.for_n(50).grad_clip == 0.5
    with pytest.raises(ValueError, match=r"linear\.adamw\.steps.*n = 30"):
        adamw.for_n(30)
    per_n_clip = {"steps": 100, "grad_clip": {50: [1.0, 2.0]}}
    with pytest.raises(ValueError, match=r"linear\.adamw\.grad_clip.*n = 30"):
        LinearSettings.from_config(
            MINIMAL | {"dims": [{"n": 30, "m": 4, "s": 2}], "adamw": per_n_clip}
        )
    # without AdamW among the methods its per-n settings are never needed
    LinearSettings.from_config(
        MINIMAL
        | {"dims": [{"n": 30, "m": 4, "s": 2}], "methods": ["fixed_point"], "adamw": per_n_clip}
    )


def test_schema_accepts_per_n_mappings_and_rejects_bad_ones():
    validated(MINIMAL | {"adamw": {"steps": {30: 100}, "grad_clip": {30: None}}})
    validated(MINIMAL | {"adamw": {"steps": 100, "grad_clip": [1.0, 2.0]}})
    for bad in ({"steps": {"30": 100}}, {"steps": {30: 0}}, {"grad_clip": [1.0]},
                {"grad_clip": {30: [1.0, -2.0]}}, {"report": "median"},
                {"parameterization": "exp"}):  # fmt: skip
        with pytest.raises(Exception, match=r"adamw|linear"):
            validated(MINIMAL | {"adamw": bad})


def science_of(linear: dict) -> dict:
    """Every job's params (science) of a config, keyed by job."""
    settings = LinearSettings.from_config(linear)
    jobs = {}
    for dims in settings.dims:
        jobs[("instance", dims.name)] = settings.instance_job(dims.name).science()
        jobs[("contraction", dims.name)] = settings.contraction_job(dims.name).science()
        for method in settings.methods:
            jobs[(method, dims.name)] = settings.study_job(dims.name, method).science()
    return jobs


def changed_jobs(change: dict) -> set:
    base = science_of(MINIMAL)
    other = science_of(MINIMAL | change)
    return {job for job in base if base[job] != other[job]}


def test_each_setting_changes_only_the_jobs_whose_results_it_changes():
    fifty, hundred = "n50_m10_s5", "n100_m10_s5"
    studies = {(m, d) for m in ("fixed_point", "adamw") for d in (fifty, hundred)}
    adamw = {("adamw", fifty), ("adamw", hundred)}
    contraction = {("contraction", fifty), ("contraction", hundred)}
    instances = {("instance", fifty), ("instance", hundred)}
    assert changed_jobs({"adamw": {"lr": 0.01}}) == adamw
    assert changed_jobs({"adamw": {"steps": {50: 50_000, 100: 1}}}) == {("adamw", hundred)}
    assert changed_jobs({"fixed_point": {"tol": 1e-8}}) == {("fixed_point", d)
                                                             for d in (fifty, hundred)}  # fmt: skip
    assert changed_jobs({"contraction": {"iterations": 5}}) == contraction
    assert changed_jobs({"betas": [1, 4, 8]}) == studies
    assert changed_jobs({"init": "scaled_normal"}) == studies | contraction
    assert changed_jobs({"seed": 3}) == studies | contraction | instances
    assert changed_jobs({"noise_var": 0.1}) == instances  # studies read σ² from the instance
    # settings that cannot change a result here
    assert changed_jobs({"adamw": {"check_every": 7}}) == set()  # tol = 0: no checks
    assert changed_jobs({"adamw": {"tol": 1e-9, "check_every": 7}}) == adamw
    assert changed_jobs({"adamw": {"parameterization": "log_cholesky"}}) == adamw
    log_cholesky = {"adamw": {"parameterization": "log_cholesky"}}
    assert science_of(MINIMAL | log_cholesky) == science_of(
        MINIMAL | {"adamw": {"parameterization": "log_cholesky", "epsilon": 0.1}}
    )


def test_instance_job_depends_on_the_file_or_on_the_draw():
    drawn = LinearSettings.from_config(MINIMAL).instance_job("n50_m10_s5")
    assert set(drawn.science()) == {"dims", "noise_var", "factor_var_range", "seed"}
    given = LinearSettings.from_config(MINIMAL | {"instance_file": "ref/inst_n{n}.npz"})
    job = given.instance_job("n50_m10_s5")
    assert job.science() == {"dims": {"n": 50, "m": 10, "s": 5}, "noise_var": 0.05,
                             "instance_file": "ref/inst_n50.npz"}  # fmt: skip
    for one in (drawn, job):
        assert InstanceJob.from_science(one.science()) == one


def test_jobs_round_trip_through_their_science():
    settings = LinearSettings.from_config(MINIMAL | {"adamw": {"tol": 1e-8}})
    for dims in settings.dims:
        contraction = settings.contraction_job(dims.name)
        assert ContractionJob.from_science(contraction.science()) == contraction
        for method in settings.methods:
            job = settings.study_job(dims.name, method)
            assert StudyJob.from_science(job.science()) == job
    assert Dims.from_name("n50_m10_s5") == Dims(50, 10, 5)
    with pytest.raises(ValueError, match="dims name"):
        Dims.from_name("n50_m10")
