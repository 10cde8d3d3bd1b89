"""Snakemake entry point: the verdict on every claim of the paper (claims.csv, .md, .rst)."""

from lambdabeta.claims import (
    ClaimSettings,
    claims_markdown,
    claims_rst,
    judge_claims,
    read_tables,
    verdict_lines,
    verdict_sentence,
)
from lambdabeta.io import atomic_path, log_to_file

log = log_to_file(snakemake.log[0])
settings = ClaimSettings.from_config(**snakemake.params.settings)
claims = judge_claims(settings, **read_tables(dict(snakemake.input.items())))
with atomic_path(snakemake.output.table) as tmp:
    claims.to_csv(tmp, index=False)
with atomic_path(snakemake.output.markdown) as tmp:
    tmp.write_text(claims_markdown(claims), encoding="utf-8")
with atomic_path(snakemake.output.verdicts) as tmp:
    tmp.write_text(claims_rst(claims), encoding="utf-8")
with atomic_path(snakemake.output.lines) as tmp:
    tmp.write_text(verdict_lines(claims), encoding="utf-8")
log.info(verdict_sentence(claims))
for row in claims.to_dict("records"):
    log.info("%s (%s): %s", row["claim_id"], row["scope"], row["verdict"])
