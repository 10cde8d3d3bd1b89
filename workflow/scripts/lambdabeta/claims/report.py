"""Readable renderings of the claims table: Markdown for people, and for the HTML report a
verdict table (reStructuredText holding one HTML table: a row per claim and scope, the claim's
statement once per claim, each verdict marked by colour and symbol)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import pandas as pd

from ..statistics import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, VERDICTS

MARKS = {REPRODUCED: "✔", NOT_REPRODUCED: "✘", INCONCLUSIVE: "?", NOT_RUN: "–"}
"""The symbol of each verdict (beside its colour in the report)."""

COLOURS = {
    REPRODUCED: ("#1a7f37", "#dafbe1"),
    NOT_REPRODUCED: ("#cf222e", "#ffebe9"),
    INCONCLUSIVE: ("#9a6700", "#fff8c5"),
    NOT_RUN: ("#57606a", "#f6f8fa"),
}
"""(text, background) of each verdict in the report."""


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
            f"(the closed form, the sampled representation, adaptive λ): "
            f"{_counted(own['derived'])}."
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


def effect_text(row: Mapping) -> str:
    """``effect [low, high]``, the effect alone, or — where there is none."""
    if not math.isfinite(row["effect"]):
        return "—"
    if math.isfinite(row["ci_low"]) or math.isfinite(row["ci_high"]):
        return f"{row['effect']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    return f"{row['effect']:.3g}"


def error_rate_text(row: Mapping) -> str:
    """The test's largest false ``reproduced`` rate, or — for a check without sampling error."""
    rate = row.get("error_rate", math.nan)
    return f"{100 * rate:.3g} %" if isinstance(rate, float) and math.isfinite(rate) else "—"


def _whose(origin: str) -> str:
    return "the paper's" if origin == "paper" else "derived by this pipeline"


def claims_markdown(table: pd.DataFrame) -> str:
    """The claims table as Markdown: the counts, one table per claim (its statement once, a row
    per scope), then each claim's test and every row's details."""
    lines = [
        "# The paper's claims: what this run shows",
        "",
        verdict_sentence(table),
        "",
        *(f"{sentence}\n" for sentence in verdict_groups(table, "`")),
        "`error rate`: the largest probability of a false *reproduced* the claim's test allows "
        "(its one-sided level; — for checks without sampling error).",
        "",
    ]
    for claim_id, block in table.groupby("claim_id", sort=False):
        first = block.iloc[0]
        lines += [
            f"## `{claim_id}` ({_whose(first['origin'])}; {first['source']})",
            "",
            first["statement"],
            "",
            "| scope | effect [interval] | n | verdict | error rate |",
            "|---|---:|---:|---|---:|",
        ]
        lines += [
            f"| {row['scope']} | {effect_text(row)} | {row['n']} | "
            f"{MARKS[row['verdict']]} **{row['verdict']}** | {error_rate_text(row)} |"
            for row in block.to_dict("records")
        ]
        tests = [t for t in dict.fromkeys(block["test"]) if t]
        lines += [""] + [f"Test: {t}." for t in tests] + ([""] if tests else [])
        lines += [
            f"- {row['scope']}: **{row['verdict']}**. {row['detail']}".rstrip()
            for row in block.to_dict("records")
        ]
        lines.append("")
    return "\n".join(lines)


def _cell(text: str, **style: str) -> str:
    css = "; ".join(f"{key.replace('_', '-')}: {value}" for key, value in style.items())
    return f'<td style="{css}">{text}</td>'


_CELL = {"padding": "4px 6px", "border_top": "1px solid #d0d7de", "vertical_align": "top"}
_COLUMNS = (("claim", 32), ("scope (seeds or restarts)", 22), ("effect [interval]", 19),
            ("verdict (error rate)", 27))  # fmt: skip
"""The verdict table's columns and their widths in percent."""


def _breakable(identifier: str) -> str:
    """``identifier`` escaped, with line-break opportunities after its dots and underscores."""
    return html.escape(identifier).replace(".", ".<wbr>").replace("_", "_<wbr>")


def _effect_html(row: Mapping) -> str:
    """The effect over its interval, each number kept whole."""
    value, _, interval = effect_text(row).partition(" [")
    lines = [value] + ([f"[{interval}"] if interval else [])
    return "<br>".join(
        ", ".join(
            f'<span style="white-space: nowrap">{html.escape(n)}</span>' for n in v.split(", ")
        )
        for v in lines
    )


def verdict_table_html(table: pd.DataFrame) -> str:
    """The verdicts as one HTML table: a row per claim and scope; the claim (id, origin,
    source, statement) once per claim over its rows; the verdict coloured and marked; the
    effect with its interval; the test's error rate. The test and the details behind each
    verdict are in ``claims.md`` and the Claims category."""
    lines = [
        # a fixed layout keeps the table inside the report's text column (the workflow graph
        # sits beside it); the widths are the columns' shares of it
        '<table style="border-collapse: collapse; font-size: 0.85em; width: 100%; '
        'table-layout: fixed">',
        "<colgroup>"
        + "".join(f'<col style="width: {width}%">' for _, width in _COLUMNS)
        + "</colgroup>",
        "<thead><tr>"
        + "".join(f'<th style="text-align: left; padding: 4px 6px">{h}</th>' for h, _ in _COLUMNS)
        + "</tr></thead>",
        "<tbody>",
    ]
    for claim_id, block in table.groupby("claim_id", sort=False):
        first = block.iloc[0]
        claim_cell = (
            f'<td rowspan="{len(block)}" style="padding: 4px 8px; border-top: 1px solid '
            f'#d0d7de; vertical-align: top; overflow-wrap: anywhere"><span style="font-family: '
            f'monospace; font-weight: bold">{_breakable(claim_id)}</span>'
            f"<br><small>{html.escape(_whose(first['origin']))}; "
            f"{html.escape(str(first['source']))}</small><br>{html.escape(first['statement'])}"
            "</td>"
        )
        for index, row in enumerate(block.to_dict("records")):
            colour, background = COLOURS[row["verdict"]]
            verdict = (
                f'<span style="color: {colour}; background: {background}; padding: 1px 6px; '
                f'border-radius: 4px; white-space: nowrap"><b>{MARKS[row["verdict"]]} '
                f"{html.escape(row['verdict'])}</b></span>"
            )
            cells = [
                claim_cell if index == 0 else "",
                _cell(
                    f"{html.escape(str(row['scope']))}<br><small>n = {row['n']}</small>", **_CELL
                ),
                _cell(_effect_html(row), text_align="right", **_CELL),
                _cell(f"{verdict}<br><small>error rate {error_rate_text(row)}</small>", **_CELL),
            ]
            lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def claims_rst(table: pd.DataFrame) -> str:
    """The verdicts for the report's start page: the counts, a legend, and
    :func:`verdict_table_html` as a raw HTML block."""
    legend = ", ".join(f"{MARKS[v]} {v}" for v in VERDICTS)
    body = "\n".join(f"   {line}" for line in verdict_table_html(table).splitlines())
    return "\n".join(
        [
            verdict_sentence(table),
            "",
            f"Verdicts: {legend}. *error rate*: the largest probability of a false "
            "*reproduced* the claim's test allows (its one-sided level; — for checks "
            "without sampling error).",
            "",
            ".. raw:: html",
            "",
            body,
            "",
        ]
    )


def verdict_lines(table: pd.DataFrame) -> str:
    """One reStructuredText bullet per verdict, each starting ``- ``<claim id>`` `` so that a
    figure's caption can pick the lines of its claims."""
    lines = []
    for row in table.to_dict("records"):
        effect = effect_text(row)
        measured = "" if effect == "—" else f" — effect {effect}, n = {row['n']}"
        lines.append(
            f"- ``{row['claim_id']}`` ({row['scope']}): {MARKS[row['verdict']]} "
            f"**{row['verdict']}**{measured} [{row['origin']}]"
        )
    return "\n".join(lines) + "\n"
