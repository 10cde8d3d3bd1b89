"""Snakemake entry point: prepare one dataset in the uniform format, and its sample sheet."""

from pathlib import Path

from lambdabeta.io import log_to_file
from lambdabeta.loader import FACTORS_FILE, IMAGES_FILE, META_FILE, load_prepared
from lambdabeta.plots.samples import sample_sheet
from lambdabeta.prepare import prepare_source

log_to_file(snakemake.log[0])
out_dir = Path(snakemake.output.meta).parent
for path, name in [
    (snakemake.output.images, IMAGES_FILE),
    (snakemake.output.factors, FACTORS_FILE),
    (snakemake.output.meta, META_FILE),
]:
    if Path(path) != out_dir / name:
        raise ValueError(f"output {path} must be {out_dir / name}: prepare writes one directory")
source = snakemake.config["datasets"][snakemake.wildcards.dataset]  # params: its science part
upstream = None if source["format"] == "procedural" else snakemake.input.upstream
prepare_source(
    source, upstream, out_dir, name=snakemake.wildcards.dataset, threads=snakemake.threads
)
sample_sheet(load_prepared(out_dir), snakemake.output.samples)
