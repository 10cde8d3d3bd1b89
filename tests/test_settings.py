"""Settings: one source of defaults (the schema = the classes), and the science/logistics split
that decides what reruns a job."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from lambdabeta import settings as S
from lambdabeta.evaluation.settings import EvaluationSettings
from lambdabeta.grid import Run

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEEP_SCHEMA = SCHEMA["properties"]["deep"]["properties"]


def schema_defaults(section: dict) -> dict:
    """The defaults the schema fills in, nested objects with their own properties' defaults."""
    return {
        key: schema_defaults(spec)
        if "properties" in spec and "default" in spec
        else spec["default"]
        for key, spec in section["properties"].items()
        if "default" in spec
    }


def class_defaults(cls) -> dict:
    defaults = {}
    for field in dataclasses.fields(cls):
        if field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = dataclasses.asdict(field.default_factory())
        elif field.default is not dataclasses.MISSING:
            default = field.default
            defaults[field.name] = list(default) if isinstance(default, tuple) else default
    return defaults


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
    defaults = class_defaults(EvaluationSettings)
    assert defaults.pop("device") == DEEP_SCHEMA["train"]["properties"]["device"]["default"]
    assert defaults == schema


@pytest.mark.parametrize("cls", [S.TrainSettings, EvaluationSettings])
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
    deep = S.DeepSettings.from_config(validated_deep(device="cuda"))
    run = Run("toy", 8, 2, 4)
    science = deep.train_science(run)
    phase = deep.phase_science("finetune")
    # a static run's science has no controller (its cache key is the one it always had)
    assert set(science) == set(S.TrainSettings.SCIENCE) - {"controller"}
    assert set(science) - set(phase) == {"beta", "lam", "seed"}
    settings = deep.train_settings(run, phase, threads=3, granted_gpus=1)
    assert (settings.beta, settings.lam, settings.seed, settings.phase) == (8.0, 4.0, 2, "finetune")
    assert settings.steps == deep.section["train"]["finetune_steps"]
    assert settings.run_name == "toy/beta8/seed2/lambda4" and settings.threads == 3
    assert settings.device == "cuda"
    assert settings.science() == science
    # every deep.train key but the step counts and pack_size reaches the settings
    keys = set(deep.section["train"]) - {"stabilize_steps", "finetune_steps", "pack_size"}
    assert keys <= set(settings.to_dict())


def test_logistics_never_change_the_science():
    def science(**change):
        return S.DeepSettings.from_config(validated_deep(**change)).train_science(Run("toy", 8, 0))

    base = science()
    for change in [{"checkpoint_every": 7}, {"device": "cuda:1"}, {"channels_last": False},
                   {"compile": True}, {"cuda_graphs": True}, {"pack_size": 4}]:  # fmt: skip
        assert science(**change) == base
    assert science(lr=3e-4) != base
    deep = validated_deep()
    evaluation = S.DeepSettings.from_config(deep).evaluation_science()
    deep["evaluate"]["batch_size"] = 7
    assert S.DeepSettings.from_config(deep).evaluation_science() == evaluation
    settings = S.DeepSettings.from_config(deep).evaluation_settings(evaluation, granted_gpus=1)
    assert (settings.batch_size, settings.device) == (7, "auto")


def test_an_adaptive_finetune_reruns_only_for_what_sets_its_target():
    def science(**adaptive):
        deep = validated_deep()
        deep["adaptive"] = schema_defaults(DEEP_SCHEMA["adaptive"]) | {"enabled": True} | adaptive
        return S.DeepSettings.from_config(deep).adaptive_science()

    by_reference = science(target=None, reference_beta=16)
    assert (
        by_reference["adaptive"]["reference_window"]
        == DEEP_SCHEMA["evaluate"]["properties"]["bce_window"]["default"]
    )
    assert science(target=None, reference_beta=4) != by_reference
    assert science(target=None, reference_beta=16, betas=[64]) == by_reference
    by_number = science(target=5.0, reference_beta=16)
    assert "reference_beta" not in by_number["adaptive"]
    assert "reference_window" not in by_number["adaptive"]
    assert science(target=5.0, reference_beta=4) == by_number
    assert science(target=6.0) != by_number


@pytest.mark.parametrize(
    ("spec", "granted", "device"),
    [("auto", 1, "auto"), ("cuda:1", 2, "cuda:1"), ("cuda", 0, "cpu"), ("auto", 0, "cpu"),
     ("cpu", 1, "cpu")],
)  # fmt: skip
def test_a_job_uses_the_configured_device_only_with_a_granted_gpu(spec, granted, device):
    """One policy for every job kind (training, evaluation, linear AdamW)."""
    assert S.job_device(spec, granted) == device
    deep = S.DeepSettings.from_config(validated_deep(device=spec))
    settings = deep.train_settings(Run("toy", 8, 0), deep.phase_science("stabilize"), 1, granted)
    assert settings.device == device
    assert deep.evaluation_settings(deep.evaluation_science(), granted).device == device


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
     ("reconstruction_images", 99), ("dci", {"num_test": 11}), ("dci", {"num_train": 1}),
     ("dci", {"typo": 1}), ("factor_vae", {"batch_size": 1}), ("factor_vae", {"num_eval": 0})],
)  # fmt: skip
def test_bad_evaluation_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        EvaluationSettings(num_test=10, **{key: value})


def test_unknown_and_missing_keys_are_named():
    with pytest.raises(ValueError, match="typo"):
        EvaluationSettings.from_dict({"typo": 1})
    with pytest.raises(ValueError, match="beta"):
        S.TrainSettings.from_dict({"steps": 1, "lam": 0, "seed": 0, "phase": "stabilize",
                                   "run_name": "r"})  # fmt: skip


def test_dci_and_factor_vae_samples_follow_the_evaluations_unless_given():
    small = EvaluationSettings(num_train=40, num_test=10)
    assert small.dci_sample == (40, 10)
    assert dataclasses.astuple(small.factor_vae_sample) == (64, 40, 10, 40)
    # the evaluation's defaults give disentanglement_lib's
    assert EvaluationSettings().dci_sample == (10000, 5000)
    assert dataclasses.astuple(EvaluationSettings().factor_vae_sample) == (64, 10000, 5000, 10000)
    given = EvaluationSettings(num_train=40, num_test=10, dci={"num_train": 20},
                               factor_vae={"num_eval": 3})  # fmt: skip
    assert given.dci_sample == (20, 10)
    assert dataclasses.astuple(given.factor_vae_sample) == (64, 40, 3, 40)
    off = EvaluationSettings(dci={"num_train": 0}, factor_vae={"num_train": 0})
    assert not off.dci.enabled and not off.factor_vae.enabled
