"""The dataset formats behind ``lambdabeta.formats.READERS``: the config schema accepts exactly
the formats ``prepare`` has a reader for, and the workflow's standard-library copy of their
published grids (``lambdabeta.plan.datasets.FORMAT_GRIDS``) agrees with the readers'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lambdabeta import procedural
from lambdabeta.formats import FORMATS, READERS
from lambdabeta.formats.dsprites import DSPRITES_FACTORS, DSPRITES_SIZES
from lambdabeta.formats.mpi3d import MPI3D_FACTORS, MPI3D_SIZES
from lambdabeta.formats.shapes3d import SHAPES3D_FACTORS, SHAPES3D_SIZES
from lambdabeta.plan.datasets import FORMAT_GRIDS

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or the definition its local ``$ref`` ("#/a/b") points to."""
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    for key in ref.removeprefix("#/").split("/"):
        schema = schema[key]
    return schema


def schema_formats_by_entry() -> list[set[str]]:
    """The ``format`` values each kind of ``datasets:`` entry of the schema accepts (its
    ``enum``, or its ``const``), one set per ``oneOf`` alternative."""
    schema = yaml.safe_load(SCHEMA.read_text())
    alternatives = schema["properties"]["datasets"]["additionalProperties"]["oneOf"]
    accepted = []
    for alternative in alternatives:
        fmt = resolve(schema, alternative)["properties"]["format"]
        assert ("enum" in fmt) != ("const" in fmt), f"format is neither an enum nor a const: {fmt}"
        accepted.append(set(fmt["enum"]) if "enum" in fmt else {fmt["const"]})
    return accepted


def test_the_schema_accepts_exactly_the_formats_with_a_reader():
    accepted = schema_formats_by_entry()
    # the entries the schema walks to: downloaded formats (an enum) and the procedural one
    assert {"dsprites_npz", "shapes3d_h5", "mpi3d_npz"} in accepted
    assert {"procedural"} in accepted
    assert set().union(*accepted) == set(READERS)
    # a format under two kinds of entry would match both, which oneOf refuses
    assert sum(len(formats) for formats in accepted) == len(READERS)
    assert tuple(READERS) == FORMATS


def test_formats_that_render_are_the_ones_the_schema_lets_go_without_a_file():
    schema = yaml.safe_load(SCHEMA.read_text())
    for alternative in schema["properties"]["datasets"]["additionalProperties"]["oneOf"]:
        entry = resolve(schema, alternative)
        fmt = entry["properties"]["format"]
        for name in fmt.get("enum", [fmt.get("const")]):
            assert READERS[name].renders == ("file" not in entry.get("required", [])), name


def test_the_workflow_knows_the_published_grid_of_every_format():
    published = {
        "dsprites_npz": (DSPRITES_FACTORS, DSPRITES_SIZES),
        "shapes3d_h5": (SHAPES3D_FACTORS, SHAPES3D_SIZES),
        "mpi3d_npz": (MPI3D_FACTORS, MPI3D_SIZES),
        "procedural": (procedural.FACTOR_NAMES, procedural.FULL_FACTOR_SIZES),
    }
    assert set(published) == set(READERS)
    assert published == FORMAT_GRIDS
