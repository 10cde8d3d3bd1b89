"""Every registered claim judged from its tables, and the tables read from the rule's files."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .. import grid

# each module registers its claims on import
from . import adaptive, deep, linear, qualitative, restoration, selection, theory  # noqa: F401
from .qualitative import mi_concentration
from .registry import COLUMNS, Claim, not_run, registered_claims, require_columns
from .settings import ClaimSettings
from .tables import NLL, STUDIES, TABLES

CLAIMS: dict[str, Claim] = {entry.claim_id: entry for entry in registered_claims()}
"""Every claim, by id, in the order of the claims table."""


def judge_claims(settings: ClaimSettings, **tables: pd.DataFrame | None) -> pd.DataFrame:
    """Every registered claim judged from ``tables`` (by name, ``lambdabeta.claims.tables``;
    an absent or empty table is None), in registry order (``registered_claims``).

    A claim whose study has no table at all is ``not run`` with the study's reason, one with a
    missing table with that table's reason; an optional table reaches the judge as None. A table
    that lacks a column its claims need is an error that names it.
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown claim tables {unknown}; known: {list(TABLES)}")
    given = {name: table for name, table in tables.items() if table is not None and not table.empty}
    for name, table in given.items():
        columns = [settings.nll if c == NLL else c for c in TABLES[name].columns]
        require_columns(table, columns, f"{name} claims")
    studies = {TABLES[name].study for name in given if not TABLES[name].optional}
    rows: list[dict] = []
    for entry in CLAIMS.values():
        reason = _missing(entry, given, studies)
        if reason is None:
            arguments = [given.get(name) for name in entry.tables]
            rows += entry.judge(*arguments, settings)
        else:
            scope, why = reason
            rows += entry.rows([not_run(scope, "", why)])
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["n"] = table["n"].astype(int)
    return table


def _missing(entry: Claim, given: Mapping, studies: set[str]) -> tuple[str, str] | None:
    """(scope, reason) of a claim that cannot be judged, or None."""
    for name in entry.tables:
        spec = TABLES[name]
        if spec.study not in studies:
            return STUDIES[spec.study]
        if name not in given and not spec.optional:
            scope, reason = STUDIES[spec.study]
            return scope, spec.missing or reason
    return None


# ---- reading the tables ---------------------------------------------------------------------


def read_tables(inputs: Mapping[str, str | list[str]]) -> dict[str, pd.DataFrame | None]:
    """The claim tables from the claims rule's input files (``claim_inputs``): a table whose
    files the rule does not have (its study does not run) is None."""
    tables = {}
    for name, spec in TABLES.items():
        paths = {key: inputs[key] for key in spec.keys if key in inputs}
        tables[name] = _READERS[spec.read](paths) if paths else None
    return tables


def _read_csv(paths: Mapping[str, str]) -> pd.DataFrame:
    (path,) = paths.values()
    return pd.read_csv(path)


def _read_csvs(paths: Mapping[str, list[str]]) -> pd.DataFrame | None:
    (files,) = paths.values()
    if not files:
        return None
    return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)


def _read_mi_matrices(paths: Mapping[str, list[str]]) -> pd.DataFrame | None:
    """One row per MI matrix: its run's keys, its role and representation (from the input's
    name, ``mi_<role>[_sampled]``) and its concentration (``mi_concentration``)."""
    records = [
        _run_of(path).record()
        | {
            "role": key.removeprefix("mi_").removesuffix("_sampled"),
            "representation": "sampled" if key.endswith("_sampled") else "mean",
            "concentration": mi_concentration(pd.read_csv(path, index_col="latent")),
        }
        for key, files in paths.items()
        for path in files
    ]
    return pd.DataFrame(records) if records else None


def _run_of(path: str) -> grid.Run:
    """The run whose folder holds ``path`` (``…/results/runs/<run>/<file>``)."""
    folder = str(path).rsplit("/", 1)[0]
    return grid.Run.from_name(folder.split(f"{grid.RUNS_DIR}/", 1)[1])


_READERS = {"csv": _read_csv, "csvs": _read_csvs, "mi_matrices": _read_mi_matrices}
