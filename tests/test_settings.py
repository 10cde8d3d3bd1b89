"""Settings: one source of defaults (the schema = the classes), and the science/logistics split
that decides what reruns a job."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from lambdabeta import settings as S
from lambdabeta.grid import Run

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEEP_SCHEMA = SCHEMA["properties"]["deep"]["properties"]


def schema_defaults(section: dict) -> dict:
    return {
        key: spec["default"] for key, spec in section["properties"].items() if "default" in spec
    }


def class_defaults(cls) -> dict:
    return {
        field.name: list(field.default) if isinstance(field.default, tuple) else field.default
        for field in dataclasses.fields(cls)
        if field.default is not dataclasses.MISSING
    }


def test_training_defaults_are_the_schemas():
    schema = schema_defaults(DEEP_SCHEMA["train"])
    defaults = class_defaults(S.TrainSettings)
    shared = set(schema) & set(defaults)
    # the step counts are chosen per phase; pack_size is read by the rules (runs per job)
    assert shared == set(schema) - {"stabilize_steps", "finetune_steps", "pack_size"}
    assert {key: defaults[key] for key in shared} == {key: schema[key] for key in shared}
    assert defaults["latent_dim"] == DEEP_SCHEMA["latent_dim"]["default"]


def test_evaluation_defaults_are_the_schemas():
    schema = schema_defaults(DEEP_SCHEMA["evaluate"])
    defaults = class_defaults(S.EvaluationSettings)
    assert defaults.pop("device") == DEEP_SCHEMA["train"]["properties"]["device"]["default"]
    assert defaults == schema


@pytest.mark.parametrize("cls", [S.TrainSettings, S.EvaluationSettings])
def test_every_field_is_either_science_or_logistics(cls):
    names = [field.name for field in dataclasses.fields(cls)]
    assert sorted(cls.SCIENCE + cls.LOGISTICS) == sorted(names)
    assert not set(cls.SCIENCE) & set(cls.LOGISTICS)


def validated_deep(**train) -> dict:
    """The `deep` section as the schema's validation fills it in."""
    return {
        "latent_dim": 15,
        "train": schema_defaults(DEEP_SCHEMA["train"]) | train,
        "evaluate": schema_defaults(DEEP_SCHEMA["evaluate"]),
    }


def test_every_config_training_key_reaches_the_settings_once():
    deep = validated_deep()
    run = Run("toy", 8, 2, 4)
    science = S.train_science(deep, run)
    logistics = S.train_logistics(deep, threads=3)
    assert not set(science) & set(logistics)
    assert set(science) == set(S.TrainSettings.SCIENCE)
    assert set(logistics) | {"run_name"} == set(S.TrainSettings.LOGISTICS)
    settings = S.TrainSettings.for_run(run, science, logistics)
    assert (settings.beta, settings.lam, settings.seed, settings.phase) == (8.0, 4.0, 2, "finetune")
    assert settings.steps == deep["train"]["finetune_steps"]
    assert settings.run_name == "toy/beta8/seed2/lambda4" and settings.threads == 3
    assert settings.science() == science


def test_logistics_never_change_the_science():
    base = S.train_science(validated_deep(), Run("toy", 8, 0))
    for change in [{"checkpoint_every": 7}, {"device": "cuda:1"}, {"channels_last": False},
                   {"compile": True}, {"cuda_graphs": True}, {"pack_size": 4}]:  # fmt: skip
        assert S.train_science(validated_deep(**change), Run("toy", 8, 0)) == base
    assert S.train_science(validated_deep(lr=3e-4), Run("toy", 8, 0)) != base
    deep = validated_deep()
    evaluation = S.evaluation_science(deep)
    deep["evaluate"]["batch_size"] = 7
    assert S.evaluation_science(deep) == evaluation
    assert S.evaluation_logistics(deep) == {"batch_size": 7, "device": "auto"}


def test_dataset_science_ignores_where_a_file_comes_from():
    source = {"format": "dsprites_npz", "file": "d.npz", "checksum": "md5:" + "0" * 32,
              "urls": ["https://a/d.npz"], "local_path": None}  # fmt: skip
    mirrored = {**source, "urls": ["https://a/d.npz", "https://b/d.npz"], "local_path": "/x/d.npz"}
    assert S.download_science(source) == S.download_science(mirrored)
    assert S.preparation_science(source) == S.preparation_science(mirrored)
    assert S.preparation_science({**source, "factor_sizes": [3, 6]}) != S.preparation_science(
        source
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("num_train", 1), ("num_bins", 1), ("sap_c", 0.0), ("device", "tpu"), ("seed", -1),
     ("reconstruction_images", 99)],
)  # fmt: skip
def test_bad_evaluation_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        S.EvaluationSettings(num_test=10, **{key: value})


def test_unknown_and_missing_keys_are_named():
    with pytest.raises(ValueError, match="typo"):
        S.EvaluationSettings.from_dict({"typo": 1})
    with pytest.raises(ValueError, match="beta"):
        S.TrainSettings.from_dict({"steps": 1, "lam": 0, "seed": 0, "phase": "stabilize",
                                   "run_name": "r"})  # fmt: skip
