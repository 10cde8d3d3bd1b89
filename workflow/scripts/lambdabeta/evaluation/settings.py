"""The settings of an evaluation job (config ``deep.evaluate``), science and logistics as in
``lambdabeta.settings``; what each number means is in ``lambdabeta.evaluate``.

Standard library only: the workflow definition imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..scores import CHOSEN_REPRESENTATIONS
from ..setting_checks import (
    SettingError,
    Settings,
    check_device_spec,
    integer_setting,
    number_setting,
)

MIN_NULL_SHUFFLES = 19
"""The fewest shuffles of a permutation null with an upper 95 % point (``metrics``)."""


@dataclass(frozen=True)
class DCISettings:
    """DCI's sample (``deep.evaluate.dci``): the first ``num_train`` evaluation train images fit
    its classifiers, the first ``num_test`` test images score them; None takes all of them (the
    evaluation's defaults are disentanglement_lib's DCI defaults, 10000 and 5000), and
    ``num_train`` 0 computes no DCI."""

    num_train: int | None = None
    num_test: int | None = None

    @property
    def enabled(self) -> bool:
        return self.num_train != 0


@dataclass(frozen=True)
class FactorVAESettings:
    """The FactorVAE score's sample (``deep.evaluate.factor_vae``): votes of ``batch_size``
    images with one factor fixed, ``num_train`` of them to fit the majority-vote classifier and
    ``num_eval`` to score it, after ``num_variance_estimate`` images estimate each latent's
    global variance. None ties a count to the evaluation's sample (``num_train`` and
    ``num_variance_estimate`` to its ``num_train``, ``num_eval`` to its ``num_test``), which with
    the evaluation's defaults gives disentanglement_lib's (64, 10000, 5000, 10000), and keeps a
    small evaluation's FactorVAE small. ``num_train`` 0 computes no score."""

    batch_size: int = 64
    num_train: int | None = None
    num_eval: int | None = None
    num_variance_estimate: int | None = None

    @property
    def enabled(self) -> bool:
        return self.num_train != 0


def _nested(name: str, kind: type, value: Any, minimums: Mapping[str, int]) -> Any:
    """``value`` (a mapping or an instance of ``kind``) as ``kind``, each field an integer at
    least its minimum (or None where that is the default); an error names ``name.<field>``."""
    if isinstance(value, kind):
        value = {key: getattr(value, key) for key in minimums}
    if not isinstance(value, Mapping):
        raise SettingError(name, f"{name} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - set(minimums))
    if unknown:
        raise SettingError(name, f"{name} has unknown keys {unknown}; known: {sorted(minimums)}")
    defaults = kind()
    checked = {}
    for key, minimum in minimums.items():
        given = value.get(key, getattr(defaults, key))
        unset = given is None and getattr(defaults, key) is None
        checked[key] = None if unset else integer_setting(f"{name}.{key}", given, minimum)
    return kind(**checked)


@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """How a checkpoint is evaluated: config ``deep.evaluate`` plus the device
    (``deep.train.device``). See ``lambdabeta.evaluate`` for what each number means."""

    num_train: int = 10000
    num_test: int = 5000
    num_bins: int = 20
    sap_c: float = 0.01
    batch_size: int = 1000
    bce_window: int = 5000
    active_kl_threshold: float = 0.01
    reconstruction_images: int = 8
    nll_images: int | None = None
    seed: int = 0
    representations: tuple[str, ...] = CHOSEN_REPRESENTATIONS
    null_shuffles: int = 19
    traversal_steps: int = 7
    traversal_range: float = 3.0
    dci: DCISettings = field(default_factory=DCISettings)
    factor_vae: FactorVAESettings = field(default_factory=FactorVAESettings)
    device: str = "auto"

    SCIENCE: ClassVar[tuple[str, ...]] = (
        "num_train",
        "num_test",
        "num_bins",
        "sap_c",
        "bce_window",
        "active_kl_threshold",
        "reconstruction_images",
        "nll_images",
        "seed",
        "representations",
        "null_shuffles",
        "traversal_steps",
        "traversal_range",
        "dci",
        "factor_vae",
    )
    LOGISTICS: ClassVar[tuple[str, ...]] = ("batch_size", "device")

    def __post_init__(self) -> None:
        for name, minimum in (("num_train", 2), ("num_test", 1), ("num_bins", 2)):
            self._set(name, integer_setting(name, getattr(self, name), minimum=minimum))
        for name in ("batch_size", "bce_window"):
            self._set(name, integer_setting(name, getattr(self, name), minimum=1))
        self._set("seed", integer_setting("seed", self.seed, minimum=0))
        self._set("sap_c", number_setting("sap_c", self.sap_c, minimum=0.0, strict=True))
        threshold = number_setting("active_kl_threshold", self.active_kl_threshold, minimum=0.0)
        self._set("active_kl_threshold", threshold)
        images = integer_setting("reconstruction_images", self.reconstruction_images, minimum=0)
        if images > self.num_test:
            raise SettingError(
                "reconstruction_images",
                f"reconstruction_images must be between 0 and num_test = {self.num_test}, "
                f"got {images}",
            )
        self._set("reconstruction_images", images)
        if self.nll_images is not None:
            nll_images = integer_setting("nll_images", self.nll_images, minimum=1)
            if nll_images > self.num_test:
                raise SettingError(
                    "nll_images",
                    f"nll_images must be at most num_test = {self.num_test} (the NLL is measured "
                    f"on test images), got {nll_images}",
                )
            self._set("nll_images", nll_images)
        check_device_spec(self.device)
        representations = tuple(self.representations)
        unknown = sorted(set(representations) - set(CHOSEN_REPRESENTATIONS))
        if (
            unknown
            or "mean" not in representations
            or len(set(representations)) != len(representations)
        ):
            raise SettingError(
                "representations",
                f"representations must list distinct entries of {CHOSEN_REPRESENTATIONS} including "
                "'mean' (the paper's convention, which the figures draw), got "
                f"{self.representations!r}",
            )
        self._set("representations", representations)
        shuffles = integer_setting("null_shuffles", self.null_shuffles, minimum=0)
        if 0 < shuffles < MIN_NULL_SHUFFLES:
            raise SettingError(
                "null_shuffles",
                f"null_shuffles must be 0 (no permutation null) or at least {MIN_NULL_SHUFFLES} "
                f"(an upper 95 % point needs them), got {shuffles}",
            )
        self._set("null_shuffles", shuffles)
        self._set(
            "traversal_steps", integer_setting("traversal_steps", self.traversal_steps, minimum=2)
        )
        self._set(
            "traversal_range",
            number_setting("traversal_range", self.traversal_range, minimum=0.0, strict=True),
        )
        dci = _nested("dci", DCISettings, self.dci, {"num_train": 0, "num_test": 1})
        for key, most in (("num_train", self.num_train), ("num_test", self.num_test)):
            if (getattr(dci, key) or 0) > most:
                raise SettingError(
                    f"dci.{key}",
                    f"dci.{key} must be at most {key} = {most} (DCI scores a part of the "
                    f"evaluation images), got {getattr(dci, key)}",
                )
        if dci.num_train == 1:
            raise SettingError(
                "dci.num_train", "dci.num_train must be 0 (no DCI), ≥ 2 or null (all)"
            )
        self._set("dci", dci)
        minimums = {"batch_size": 2, "num_train": 0, "num_eval": 1, "num_variance_estimate": 2}
        self._set("factor_vae", _nested("factor_vae", FactorVAESettings, self.factor_vae, minimums))

    @property
    def factor_vae_sample(self) -> FactorVAESettings:
        """The FactorVAE score's sample with every count tied to the evaluation's resolved."""
        sample = self.factor_vae
        return FactorVAESettings(
            batch_size=sample.batch_size,
            num_train=sample.num_train or self.num_train,
            num_eval=sample.num_eval or self.num_test,
            num_variance_estimate=sample.num_variance_estimate or self.num_train,
        )

    @property
    def dci_sample(self) -> tuple[int, int]:
        """How many evaluation train and test images DCI uses."""
        return self.dci.num_train or self.num_train, self.dci.num_test or self.num_test

    @property
    def nll_count(self) -> int:
        """How many test images the reconstruction NLL is measured on (all by default)."""
        return self.num_test if self.nll_images is None else self.nll_images
