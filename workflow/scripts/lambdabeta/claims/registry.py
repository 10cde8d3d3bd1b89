"""The claims registry: each claim's id, source, statement, judge and tables, defined together.

A claim is a function decorated with ``@claim(...)`` in its area's module (``linear``, ``deep``,
``restoration``, ``selection``, ``qualitative``, in ``MODULES`` order)::

    @claim("deep.nll_rises_with_beta", "§5.2 Fig 4",
           "For the β-VAE (λ = 0) the reconstruction NLL grows with β.", tables=("metrics",))
    def deep_nll_rises_with_beta(metrics, settings):
        return [row(dataset, test, verdict, interval, detail) for dataset in ...]

The judge receives the tables it names (``lambdabeta.claims.tables``), in that order, and the
``ClaimSettings``; it returns one ``row`` (or ``not_run``) per scope, and the registry adds the
claim's id, source and statement. ``judge_claims`` (``lambdabeta.claims.judge``) runs every
registered claim, and the claims rule reads every table a claim names.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from .. import scores
from ..scores import NULL_PARTS
from ..statistics import NO_INTERVAL, NOT_RUN, VERDICTS, Evidence, Interval, limitation
from .settings import ClaimSettings
from .tables import TABLES

COLUMNS = (
    "claim_id",
    "origin",
    "source",
    "statement",
    "scope",
    "test",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "verdict",
    "error_rate",
    "detail",
)
"""The claims table's columns. ``error_rate``: the largest probability of a false
``reproduced`` the claim's test allows (its one-sided level; empty for checks without sampling
error, such as a tolerance on a deterministic computation)."""

MODULES = ("linear", "theory", "deep", "restoration", "selection", "qualitative", "adaptive")
"""The modules of ``lambdabeta.claims`` that define claims, in the order of the claims table."""


PAPER, DERIVED = "paper", "derived"
ORIGINS = (PAPER, DERIVED)
"""Whose statement a claim tests: the paper's, or one this pipeline derives (the closed form of
the linear model, say) and the paper does not state."""


@dataclass(frozen=True)
class Claim:
    """A claim: its id, its origin (``ORIGINS``), where the paper makes it (or what it rests on),
    what it says, the tables its judge reads and the judge itself (which returns rows without
    the claim's own fields)."""

    claim_id: str
    origin: str
    source: str
    statement: str
    tables: tuple[str, ...]
    judge: Callable[..., list[dict]] = field(repr=False, compare=False)

    def rows(self, parts: Iterable[Mapping]) -> list[dict]:
        """Full claims-table rows (``COLUMNS``) from the judge's parts."""
        own = {
            "claim_id": self.claim_id,
            "origin": self.origin,
            "source": self.source,
            "statement": self.statement,
        }
        return [own | dict(part) for part in parts]


# claim id → (the claim, (module, name, first line) of its judge)
_REGISTERED: dict[str, tuple[Claim, tuple[str, str, int]]] = {}


PAPER_SCORES = ("mig", "sap", "im")
"""The scores the paper's deep claims are judged by (``lambdabeta.scores``)."""

Views = Callable[[pd.DataFrame], Iterable[tuple[str, pd.DataFrame]]]
"""A claim's representations: ``(representation, view)`` of its first table, the view's
metric columns being that representation's (``linear_views``, ``deep_views``)."""


def views_of(
    columns: Mapping[str, Mapping[str, str]],
    optional: Mapping[str, Mapping[str, str]] | None = None,
) -> Views:
    """The views of a table whose representation ``r`` holds metric ``k`` in column
    ``columns[r][k]``: the view writes that column under the name ``k`` (and its permutation
    null's columns, where the table has them, under ``k``'s). A representation whose columns
    the table lacks is left out. ``optional[r]`` maps more metrics the same way where the table
    has them (scores a setting may turn off)."""
    optional = optional or {}

    def views(table: pd.DataFrame) -> Iterable[tuple[str, pd.DataFrame]]:
        for representation, required in columns.items():
            if not all(column in table for column in required.values()):
                continue
            wanted = required | optional.get(representation, {})
            renamed = {k: c for k, c in wanted.items() if c in table}
            renamed |= {
                f"{k}_{part}": f"{c}_{part}"
                for k, c in wanted.items()
                for part in NULL_PARTS
                if f"{c}_{part}" in table
            }
            # another representation's column or null must not stand in for this one's
            names = [*wanted, *(f"{k}_{part}" for k in wanted for part in NULL_PARTS)]
            stale = [k for k in names if k in table and k not in renamed]
            view = table.drop(columns=stale)
            yield representation, view.assign(**{k: table[c] for k, c in renamed.items()})

    return views


def rows_by_view(rows: Iterable[dict], representation: str) -> list[dict]:
    """The rows of one view, their scope naming the representation."""
    return [row | {"scope": f"{row['scope']} ({representation})"} for row in rows]


def claim(
    claim_id: str,
    source: str,
    statement: str,
    *,
    tables: Sequence[str],
    origin: str = PAPER,
    views: Views | None = None,
) -> Callable[[Callable[..., list[dict]]], Callable[..., list[dict]]]:
    """Register the decorated judge as the claim ``claim_id``; the decorated function returns
    full claims-table rows. With ``views``, the claim reads MIG, SAP or I_m and is judged once
    per representation of its first table: the judge sees the view (and
    ``settings.representation``), and each row's scope names the representation."""
    unknown = [name for name in tables if name not in TABLES]
    if unknown:
        raise ValueError(f"claim {claim_id} reads unknown tables {unknown}; known: {list(TABLES)}")
    if origin not in ORIGINS:
        raise ValueError(f"claim {claim_id}: origin must be one of {ORIGINS}, got {origin!r}")

    def register(judge: Callable[..., list[dict]]) -> Callable[..., list[dict]]:
        @functools.wraps(judge)
        def judged(first, *rest) -> list[dict]:
            *others, settings = rest
            if views is None or first is None:
                return entry.rows(judge(first, *rest))
            rows = []
            for representation, view in views(first):
                seen = dataclasses.replace(settings, representation=representation)
                rows += rows_by_view(judge(view, *others, seen), representation)
            return entry.rows(rows)

        entry = Claim(claim_id, origin, source, statement, tuple(tables), judged)
        where = (judge.__module__, judge.__qualname__)
        if claim_id in _REGISTERED and _REGISTERED[claim_id][1][:2] != where:
            raise ValueError(
                f"claim {claim_id} is defined twice: {where} and {_REGISTERED[claim_id][1][:2]}"
            )
        _REGISTERED[claim_id] = (entry, (*where, judge.__code__.co_firstlineno))
        return judged

    return register


def registered_claims() -> list[Claim]:
    """Every registered claim, by module (``MODULES``), then in the order its module defines
    them: the order of the claims table, whatever order the modules were imported in."""

    def module(where: tuple[str, str, int]) -> str:
        return where[0].rsplit(".", 1)[-1]

    unknown = sorted({module(where) for _, where in _REGISTERED.values()} - set(MODULES))
    if unknown:
        raise ValueError(f"claims defined in unknown modules {unknown}; known: {MODULES}")
    ordered = sorted(
        _REGISTERED.values(), key=lambda item: (MODULES.index(module(item[1])), item[1][2])
    )
    return [entry for entry, _ in ordered]


# ---- rows ------------------------------------------------------------------------------------


LINEAR_VIEWS = views_of(
    {
        # the theory's and the paper's linear convention first
        "sampled": {"sap": "sap", "im": "im", "mi_total": "mi_total"},
        "mean": {"sap": "sap_mean", "im": "im_mean", "mi_total": "mi_total_mean"},
    }
)


def deep_views(table: pd.DataFrame) -> Iterable[tuple[str, pd.DataFrame]]:
    """The deep claims' views: the paper's convention (the encoder mean) first. The paper's
    scores decide; the vocabulary's other disentanglement scores come along where they were
    computed (read from ``lambdabeta.scores`` when called, so a score registered later is in)."""
    others = [q.name for q in scores.scores("sampled") if q.name not in PAPER_SCORES]
    return views_of(scores.views(PAPER_SCORES), scores.views(others))(table)


DEEP_VIEWS = deep_views


def row(
    scope: str,
    test: str,
    verdict: str,
    interval: Interval | None = None,
    detail: str = "",
    error_rate: float = math.nan,
) -> dict:
    """A judge's row for one scope; no interval leaves effect and CI empty."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    interval = interval or NO_INTERVAL
    return {
        "scope": scope,
        "test": test,
        "effect": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "n": interval.n,
        "verdict": verdict,
        "error_rate": error_rate,
        "detail": detail,
    }


def judged_row(
    scope: str, test: str, evidence: Evidence, detail: str, settings: ClaimSettings
) -> dict:
    """The row of a claim decided by a test: its verdict at ``settings.level``, the deciding
    interval, the level as the error rate, and in ``detail`` why it cannot decide, if so."""
    why = limitation(evidence, settings.level, settings.min_seeds)
    detail = f"{why}; {detail}" if why and detail else (why or detail)
    return row(scope, test, settings.verdict(evidence), evidence.interval, detail, settings.level)


def not_run(scope: str, test: str, reason: str) -> dict:
    """A judge's row for a scope whose grid lacks what the claim compares."""
    return row(scope, test, NOT_RUN, detail=reason)


def interval_text(interval: Interval) -> str:
    return f"{interval.estimate:+.3g} [{interval.low:+.3g}, {interval.high:+.3g}]"


def setting_text(beta: float, lam: float | None = None) -> str:
    return f"β={beta:g}" if lam is None else f"β={beta:g}, λ={lam:g}"


def high_betas(betas: Iterable[float], high_beta_min: float | None) -> list[float]:
    """The high β of a grid: those ≥ ``high_beta_min``, or by default its upper half
    (the ⌈k/2⌉ largest of k values: 32-256 of the paper's 1-256, 8 and 64 of 1, 8, 64)."""
    betas = sorted({float(b) for b in betas})
    if high_beta_min is None:
        return betas[len(betas) // 2 :]
    return [b for b in betas if b >= high_beta_min]


def require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"the {name} table lacks the columns {missing}")
