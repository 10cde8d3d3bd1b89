"""Snakemake entry point: the verdict on every claim of the paper (claims.csv, .md, .rst)."""

import pandas as pd

from lambdabeta.claims import (
    ClaimSettings,
    claims_markdown,
    claims_rst,
    judge_claims,
    mi_concentration,
    verdict_sentence,
)
from lambdabeta.io import atomic_path, log_to_file

log = log_to_file(snakemake.log[0])
params = snakemake.params
settings = ClaimSettings.from_config(params.claims, params.reconstruction_metric)


def table(name):
    """The input table ``name``, or None when the config does not run its study."""
    path = snakemake.input.get(name)
    return None if path is None else pd.read_csv(path)


traces = None
if snakemake.input.get("traces"):
    # a trace file holds n only: m and s come from the linear.dims entry it was made for
    traces = pd.concat(
        [
            pd.read_csv(path).assign(m=dims["m"], s=dims["s"])
            for path, dims in zip(snakemake.input.traces, params.linear_dims, strict=True)
        ],
        ignore_index=True,
    )

concentration = None
if snakemake.input.get("mi_matrices"):
    concentration = pd.DataFrame(
        [
            run | {"concentration": mi_concentration(pd.read_csv(path, index_col="latent"))}
            for path, run in zip(snakemake.input.mi_matrices, params.mi_runs, strict=True)
        ]
    )

claims = judge_claims(
    settings,
    linear=table("linear"),
    traces=traces,
    metrics=table("metrics"),
    selection=table("selection"),
    concentration=concentration,
    mpi3d_dataset=params.mpi3d_dataset,
    rho=float(params.rho),
    figure_seed=params.figure_seed,
)
with atomic_path(snakemake.output.table) as tmp:
    claims.to_csv(tmp, index=False)
with atomic_path(snakemake.output.markdown) as tmp:
    tmp.write_text(claims_markdown(claims), encoding="utf-8")
with atomic_path(snakemake.output.verdicts) as tmp:
    tmp.write_text(claims_rst(claims), encoding="utf-8")
log.info(verdict_sentence(claims))
for row in claims.to_dict("records"):
    log.info("%s (%s): %s", row["claim_id"], row["scope"], row["verdict"])
