"""What every settings class shares: construction from a mapping, the science/logistics split
(``lambdabeta.settings``), and the checks of single values that name the setting they reject.

Standard library only: the workflow definition imports it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Mapping
from typing import Any, ClassVar

DEVICE_SPEC = re.compile(r"auto|cpu|cuda(:\d+)?")
"""Accepted device specifications: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""


class SettingError(ValueError):
    """A setting's value breaks its rule; ``field`` names the setting (a field of the settings
    class), so that the workflow can name the config key it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_device_spec(spec: str) -> str:
    """Return ``spec`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; raise otherwise."""
    if not isinstance(spec, str) or DEVICE_SPEC.fullmatch(spec) is None:
        raise SettingError(
            "device", f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}"
        )
    return spec


# ---- validation helpers --------------------------------------------------------------------


def is_number(value: Any) -> bool:
    # numpy's integer and floating types register as numbers.Real
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer_setting(name: str, value: Any, minimum: int) -> int:
    if not is_number(value) or int(value) != value or value < minimum:
        raise SettingError(name, f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def number_setting(name: str, value: Any, minimum: float, *, strict: bool = False) -> float:
    if (
        not is_number(value)
        or not math.isfinite(value)
        or value < minimum
        or (strict and value == minimum)
    ):
        bound = ">" if strict else "≥"
        raise SettingError(name, f"{name} must be a finite number {bound} {minimum}, got {value!r}")
    return float(value)


def boolean_setting(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(name, f"{name} must be true or false, got {value!r}")
    return value


class Settings:
    """Shared behaviour: construction from a mapping, and the science/logistics views."""

    SCIENCE: ClassVar[tuple[str, ...]]
    LOGISTICS: ClassVar[tuple[str, ...]]

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """Settings from a mapping whose keys are field names; unknown keys and missing
        required keys are errors that name them."""
        fields = dataclasses.fields(cls)
        unknown = sorted(set(values) - {field.name for field in fields})
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} keys {unknown}; known: {sorted(f.name for f in fields)}"
            )
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in values]
        if missing:
            raise ValueError(f"{cls.__name__} lack {missing}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python (JSON-ready) view of every field."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(self).items()
        }

    def science(self) -> dict[str, Any]:
        """The fields that change results (see the module docstring)."""
        values = self.to_dict()
        return {name: values[name] for name in self.SCIENCE}

    def logistics(self) -> dict[str, Any]:
        """The fields that only change how the job runs."""
        values = self.to_dict()
        return {name: values[name] for name in self.LOGISTICS}
