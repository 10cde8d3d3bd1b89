"""Shared test settings, and a stand-in for the ``snakemake`` object of Snakemake's scripts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from threadpoolctl import threadpool_limits

# The tests use tiny tensors, for which one thread is fastest and timing is steady on a loaded
# machine (the suite runs its test files in parallel processes: BLAS threads spinning beside
# each other's would slow every one of them down); tests that measure threading set their own.
torch.set_num_threads(1)
threadpool_limits(1)


class Namedlist(list):
    """A list whose items may also have names, like Snakemake's ``snakemake.io.Namedlist``.

    ``Namedlist("a.log")`` or ``Namedlist(model="m.pt", curve="c.csv")``: items are read by
    position (``[0]``), by name as attributes (``.model``) or with ``.get(name, default)``; a
    missing name raises ``AttributeError`` as Snakemake's does, so ``getattr(x, name, default)``
    works too. As in Snakemake, a named list of files adds each file to the positional items.
    """

    def __init__(self, *items: Any, **named: Any):
        positional = list(items)
        for value in named.values():
            if isinstance(value, list | tuple):
                positional.extend(value)
            else:
                positional.append(value)
        super().__init__(positional)
        self._names = dict(named)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_names"][name]
        except KeyError:
            raise AttributeError(f"Namedlist has no item named {name!r}") from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._names.get(name, default)

    def keys(self):
        return self._names.keys()

    def items(self):
        return self._names.items()


def _namedlist(value: Mapping[str, Any] | Sequence[Any] | None) -> Namedlist:
    """A mapping becomes named items, any other sequence positional ones."""
    if value is None:
        return Namedlist()
    if isinstance(value, Mapping):
        return Namedlist(**value)
    return Namedlist(*value)


def snakemake_stand_in(
    *,
    input: Mapping[str, Any] | Sequence[Any] | None = None,  # Snakemake's name, shadowing input()
    output: Mapping[str, Any] | Sequence[Any] | None = None,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    log: Mapping[str, Any] | Sequence[Any] | None = None,
    wildcards: Mapping[str, Any] | None = None,
    resources: Mapping[str, Any] | None = None,
    threads: int = 1,
    config: Mapping[str, Any] | None = None,
    rule: str = "test",
) -> SimpleNamespace:
    """The object Snakemake injects as ``snakemake`` into a ``script:``, built from plain values.

    ``input``, ``output``, ``params``, ``log``, ``wildcards`` and ``resources`` become
    :class:`Namedlist` s (mappings give named items, lists positional ones); ``threads``,
    ``config`` and ``rule`` are kept as they are.
    """
    return SimpleNamespace(
        input=_namedlist(input),
        output=_namedlist(output),
        params=_namedlist(params),
        log=_namedlist(log),
        wildcards=_namedlist(wildcards),
        resources=_namedlist(resources),
        threads=threads,
        config=dict(config or {}),
        rule=rule,
    )


FIRST_GROUPS = ("slurm",)
"""xdist groups scheduled before every other test: they mostly wait (for SLURM), so the other
worker trains and plans meanwhile."""


def pytest_collection_modifyitems(items):
    def waits(item) -> bool:
        marks = item.iter_markers("xdist_group")
        return any((mark.args or [mark.kwargs.get("name")])[0] in FIRST_GROUPS for mark in marks)

    items.sort(key=lambda item: not waits(item))


@pytest.fixture(scope="session")
def finished_tiny_linear(tmp_path_factory):
    """A folder where the whole workflow of ``TINY_LINEAR`` has run, and its config file: shared
    by the tests that inspect or dry-run a finished linear study (mark them
    ``xdist_group("tiny_linear")`` so that one worker builds it once). Read it, never change it."""
    from workflow_runner import TINY_LINEAR, snakemake, write_config

    workdir = tmp_path_factory.mktemp("tiny_linear")
    config = write_config(workdir, TINY_LINEAR)
    snakemake(workdir, "--cores", "2", config=config)
    return workdir, config


@pytest.fixture
def fake_snakemake() -> Callable[..., SimpleNamespace]:
    """The factory :func:`snakemake_stand_in`, for tests that run a workflow script."""
    return snakemake_stand_in
