"""Readable renderings of the claims table: Markdown for people, reStructuredText for the report."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from ..statistics import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, VERDICTS


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many rows have each verdict, in the order of :data:`VERDICTS`."""
    counts = table["verdict"].value_counts()
    return {verdict: int(counts.get(verdict, 0)) for verdict in VERDICTS}


def _counted(table: pd.DataFrame) -> str:
    counts = verdict_counts(table)
    return ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)


def verdict_sentence(table: pd.DataFrame) -> str:
    """``Of 18 verdicts (claim × scope): 12 reproduced, 2 not reproduced, …`` and, where the
    table has both, the same count for the paper's claims and for the pipeline's own."""
    sentence = f"Of {len(table)} verdicts (claim × scope): {_counted(table)}."
    origins = table["origin"].unique() if "origin" in table else []
    if len(origins) > 1:
        own = {origin: table[table["origin"] == origin] for origin in ("paper", "derived")}
        sentence += (
            f" The paper's claims: {_counted(own['paper'])}; claims this pipeline derives "
            f"(the closed form, the sampled representation): {_counted(own['derived'])}."
        )
    return sentence


def verdict_groups(table: pd.DataFrame, markup: str = "``") -> list[str]:
    """One sentence per verdict other than reproduced, naming its claims and their scopes:
    ``Not reproduced: ``deep.disentanglement_peaks`` (dsprites).``; none for an empty group."""
    sentences = []
    for verdict in (NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN):
        rows = table[table["verdict"] == verdict]
        if rows.empty:
            continue
        claims = [
            f"{markup}{claim_id}{markup} ({', '.join(block['scope'])})"
            for claim_id, block in rows.groupby("claim_id", sort=False)
        ]
        sentences.append(f"{verdict.capitalize()}: {'; '.join(claims)}.")
    return sentences


def _effect_cell(row: Mapping) -> str:
    if not math.isfinite(row["effect"]):
        return "—"
    if math.isfinite(row["ci_low"]):
        return f"{row['effect']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    return f"{row['effect']:.3g}"


def claims_markdown(table: pd.DataFrame) -> str:
    """The claims table as Markdown: the verdicts, then what each claim says and how it was
    tested, with every row's details."""
    lines = [
        "# The paper's claims: what this run shows",
        "",
        verdict_sentence(table),
        "",
        *(f"{sentence}\n" for sentence in verdict_groups(table, "`")),
        "| claim | origin | source | scope | effect [95 % interval] | n | verdict |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for row in table.to_dict("records"):
        lines.append(
            f"| `{row['claim_id']}` | {row['origin']} | {row['source']} | {row['scope']} "
            f"| {_effect_cell(row)} | {row['n']} | **{row['verdict']}** |"
        )
    lines += ["", "## The claims and their tests", ""]
    for claim_id, block in table.groupby("claim_id", sort=False):
        first = block.iloc[0]
        whose = "the paper's" if first["origin"] == "paper" else "derived by this pipeline"
        lines += [f"### `{claim_id}` ({whose}; {first['source']})", "", first["statement"], ""]
        tests = [t for t in dict.fromkeys(block["test"]) if t]
        lines += [f"Test: {t}." for t in tests] + ([""] if tests else [])
        lines += [
            f"- {row['scope']}: **{row['verdict']}**. {row['detail']}".rstrip()
            for row in block.to_dict("records")
        ]
        lines.append("")
    return "\n".join(lines)


def claims_rst(table: pd.DataFrame) -> str:
    """The verdicts as reStructuredText for the report: a sentence, then one bullet per row,
    each starting ``- ``<claim id>`` `` so that a caption can pick the lines of its claims."""
    lines = [verdict_sentence(table), ""]
    lines += [f"{sentence}\n" for sentence in verdict_groups(table)]
    for row in table.to_dict("records"):
        effect = _effect_cell(row)
        measured = "" if effect == "—" else f" — effect {effect}, n = {row['n']}"
        lines.append(
            f"- ``{row['claim_id']}`` ({row['scope']}): **{row['verdict']}**{measured}"
            f" [{row['origin']}]"
        )
    return "\n".join(lines) + "\n"
