"""The score vocabulary: every quantity a deep model is judged by, declared once.

Each :class:`Quantity` says what a column of ``deep_metrics.csv`` is: its name, its label in the
tables and figures, how many decimals the readable tables show, which way is better, and, for a
*score* of the codes, the representations it is computed on. Column names, table headers, figure
labels, the λ effect table, the claims' views and the evaluation's record are all derived from
:data:`QUANTITIES`; the functions that compute the scores are registered under the same names in
``lambdabeta.evaluation.scorers``. A new score is one entry here, one scoring function there,
and their tests.

Standard library only: the workflow definition imports it.

Representations (:data:`REPRESENTATIONS`): a score of the encoder mean μ (the paper's deep
convention) is written under the score's own name (``mig``); of one sampled z = μ + σ·ε under
``mig_sampled``; of the mean with the inactive latents held constant under ``mig_active``.
A score with a permutation null also has ``<column>_null_mean`` and ``<column>_null_upper`` on
the representations that draw one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Representation:
    """What codes a score is computed on.

    ``suffix`` is appended to a score's name to make its column; ``label`` is appended to its
    display label (in parentheses). ``optional`` representations are scored only when
    ``deep.evaluate.representations`` lists them; ``null`` ones draw the permutation null.
    """

    name: str
    suffix: str
    label: str
    description: str
    optional: bool = False
    null: bool = True


MEAN = Representation("mean", "", "", "the encoder mean μ (the paper's deep convention)")
SAMPLED = Representation(
    "sampled",
    "_sampled",
    "sampled z",
    "one draw z = μ + σ·ε per image (the theory's representation)",
    optional=True,
)
ACTIVE = Representation(
    "active",
    "_active",
    "active latents",
    "the encoder mean with the inactive latents held constant",
    null=False,
)
REPRESENTATIONS = {r.name: r for r in (MEAN, SAMPLED, ACTIVE)}
"""Every representation, the paper's first."""
CHOSEN_REPRESENTATIONS = tuple(r.name for r in REPRESENTATIONS.values() if r is not ACTIVE)
"""What ``deep.evaluate.representations`` may list: the mean (required) and the sampled z.
The active-latent scores are always computed from the mean's codes."""

NULL_PARTS = ("null_mean", "null_upper")
"""A score's permutation-null columns: ``<column>_null_mean`` and ``<column>_null_upper``."""


@dataclass(frozen=True)
class Quantity:
    """One column family of the deep tables.

    ``label`` is plain text (Markdown tables, claim texts), ``latex`` its LaTeX form, ``axis``
    the figures' axis or panel title (matplotlib mathtext, units included). ``decimals``: shown
    in the readable tables. ``higher_is_better``: the direction of a better model (None where
    neither, e.g. the number of active latents). ``representations``: for a score of the codes,
    the representations it is computed on (empty for a measure of the model itself, which has
    one column). ``null``: the permutation null is drawn for it. ``readable``: it has a column
    in the readable summaries and a row of the λ effect table. ``disentanglement``: a measure of
    disentanglement, which the claims about disentanglement may cite. ``group``: the scoring
    function that computes it (several quantities may come from one function).
    """

    name: str
    label: str
    latex: str
    axis: str
    decimals: int
    higher_is_better: bool | None
    representations: tuple[str, ...] = ()
    null: bool = False
    readable: bool = True
    disentanglement: bool = False
    group: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.representations) - set(REPRESENTATIONS)
        if unknown:
            raise ValueError(f"{self.name}: unknown representations {sorted(unknown)}")
        if self.representations and "mean" not in self.representations:
            raise ValueError(f"{self.name}: every score is computed on the encoder mean")

    @property
    def is_score(self) -> bool:
        """A score of the codes (one column per representation), not a measure of the model."""
        return bool(self.representations)

    def column(self, representation: str = "mean") -> str:
        """The column of this quantity on ``representation`` (``mig_sampled``)."""
        if representation not in (self.representations or ("mean",)):
            raise KeyError(f"{self.name} is not computed on the {representation} representation")
        return self.name + REPRESENTATIONS[representation].suffix

    def null_columns(self, representation: str = "mean") -> tuple[str, ...]:
        """Its permutation null's columns on ``representation`` (none without a null)."""
        if not (self.null and REPRESENTATIONS[representation].null):
            return ()
        return tuple(f"{self.column(representation)}_{part}" for part in NULL_PARTS)


QUANTITIES: dict[str, Quantity] = {}
"""Every quantity by name, in the tables' column order."""


def register(quantity: Quantity) -> Quantity:
    """Add ``quantity`` to :data:`QUANTITIES`; a name or column that is taken is an error."""
    if quantity.name in QUANTITIES:
        raise ValueError(f"a quantity named {quantity.name!r} is registered already")
    taken = set(all_columns())
    clash = sorted(taken & set(_columns_of(quantity)))
    if clash:
        raise ValueError(f"{quantity.name}: the columns {clash} are taken")
    QUANTITIES[quantity.name] = quantity
    return quantity


def unregister(name: str) -> None:
    """Remove a quantity (tests that register a toy score clean up with it)."""
    del QUANTITIES[name]


# ---- derived vocabulary ------------------------------------------------------------------------


def quantity(name: str) -> Quantity:
    """The quantity of a name or of any of its columns (``mig_sampled`` → MIG)."""
    if name in QUANTITIES:
        return QUANTITIES[name]
    for candidate in QUANTITIES.values():
        for representation in candidate.representations:
            if candidate.column(representation) == name:
                return candidate
    raise KeyError(f"{name!r} is no registered quantity or column")


def representation_of(column: str) -> str:
    """The representation a column is computed on (``mean`` for a model measure)."""
    found = quantity(column)
    for representation in found.representations:
        if found.column(representation) == column:
            return representation
    return "mean"


def scores(representation: str | None = None) -> list[Quantity]:
    """The scores of the codes (all, or those computed on ``representation``)."""
    return [
        q
        for q in QUANTITIES.values()
        if q.is_score and (representation is None or representation in q.representations)
    ]


def _columns_of(quantity: Quantity) -> list[str]:
    if not quantity.is_score:
        return [quantity.name]
    columns = []
    for representation in quantity.representations:
        columns += [quantity.column(representation), *quantity.null_columns(representation)]
    return columns


def all_columns() -> list[str]:
    """Every column the deep tables may hold, measures and scores with their nulls, in order."""
    return [column for q in QUANTITIES.values() for column in _columns_of(q)]


def score_columns(
    representations: Iterable[str] = ("mean",), *, readable_only: bool = False
) -> list[str]:
    """The scores' columns on ``representations`` (representation-major, registry order)."""
    return [
        q.column(r) for r in representations for q in scores(r) if not readable_only or q.readable
    ]


def readable_columns(representations: Sequence[str] = CHOSEN_REPRESENTATIONS) -> list[str]:
    """The columns of the readable summaries and the λ effect table: the measures of the model,
    then every readable score on each of ``representations`` (the mean's first)."""
    measures = [q.name for q in QUANTITIES.values() if not q.is_score and q.readable]
    return [*measures, *score_columns(representations, readable_only=True)]


def label(column: str, style: str = "text") -> str:
    """A column's label: ``text`` (plain), ``latex`` or ``axis`` (figures), the representation
    named after it (``MIG (sampled z)``)."""
    found = quantity(column)
    base = {"text": found.label, "latex": found.latex, "axis": found.axis}[style]
    suffix = REPRESENTATIONS[representation_of(column)].label
    return f"{base} ({suffix})" if suffix else base


def decimals(column: str) -> int:
    """Decimals the readable tables show for a column (3 for one outside the registry)."""
    try:
        return quantity(column).decimals
    except KeyError:
        return 3


def lower_is_better(column: str) -> bool:
    """Whether a smaller value of the column is the better model."""
    try:
        return quantity(column).higher_is_better is False
    except KeyError:
        return False


def views(names: Sequence[str]) -> dict[str, dict[str, str]]:
    """For the claims: each representation scoring every score of ``names``, mapped to the
    columns that hold them there (``{"sampled": {"mig": "mig_sampled", ...}}``)."""
    wanted = [QUANTITIES[name] for name in names]
    return {
        r: {q.name: q.column(r) for q in wanted}
        for r in CHOSEN_REPRESENTATIONS
        if all(r in q.representations for q in wanted)
    }


# ---- the registry ------------------------------------------------------------------------------

_ALL = ("mean", "sampled", "active")
# DCI and FactorVAE fit their own classifiers to the codes: pruning the inactive latents first
# would change nothing they see (their importances and variances are ~0 there), so they skip it
_CODES = ("mean", "sampled")


def _measure(name: str, label: str, axis: str, decimals: int, **options: Any) -> Quantity:
    """A measure of the model (one column); its LaTeX label is its text label."""
    return Quantity(name, label, options.pop("latex", label), axis, decimals, **options)


def _score(name: str, label: str, axis: str, group: str, **options: Any) -> Quantity:
    """A score of the codes, higher is better, shown with 3 decimals unless told."""
    options = {"decimals": 3, "latex": label, "representations": _CODES} | options
    return Quantity(
        name,
        label,
        options.pop("latex"),
        axis,
        options.pop("decimals"),
        True,
        group=group,
        **options,
    )


_REGISTERED = (
    # measures of the model: reconstruction, then the latents' information
    _measure(
        "recon_nll",
        "recon. NLL",
        "recon. NLL (nats / image)",
        1,
        higher_is_better=False,
        latex="recon.\\ NLL",
    ),
    _measure("train_bce", "train BCE", "train BCE (nats / image)", 1, higher_is_better=False),
    # the paper's scores: disentanglement_lib's MIG and SAP, and the theory's I_m
    _score("mig", "MIG", "MIG", "paper", representations=_ALL, null=True, disentanglement=True),
    _score("sap", "SAP", "SAP", "paper", representations=_ALL, null=True, disentanglement=True),
    _score(
        "im",
        "I_m",
        r"$I_m$ (nats)",
        "paper",
        representations=_ALL,
        null=True,
        decimals=2,
        latex="$I_m$",
    ),
    _measure("active_latents", "active latents", "active latents", 1, higher_is_better=None),
    _measure("kl_total", "total KL", "total KL (nats)", 1, higher_is_better=None),
    # disentanglement_lib's other scores, which Locatello et al. (2019) report
    _score("dci_disentanglement", "DCI disent.", "DCI disent.", "dci", disentanglement=True),
    _score("dci_completeness", "DCI compl.", "DCI compl.", "dci"),
    _score("dci_informativeness", "DCI inform.", "DCI inform. (test)", "dci"),
    _score(
        "dci_informativeness_train",
        "DCI inform. (train)",
        "DCI inform. (train)",
        "dci",
        readable=False,
    ),
    _score("factor_vae", "FactorVAE", "FactorVAE", "factor_vae", disentanglement=True),
    _score(
        "factor_vae_train",
        "FactorVAE (train)",
        "FactorVAE (train)",
        "factor_vae",
        readable=False,
    ),
    # the adaptive-λ controller (lambdabeta.control), where a run had one
    _measure(
        "final_lambda",
        "final λ",
        r"final $\lambda$",
        2,
        higher_is_better=None,
        latex="final $\\lambda$",
        readable=False,
    ),
    _measure(
        "control_error",
        "control error",
        "control error (nats)",
        3,
        higher_is_better=None,
        readable=False,
    ),
    _measure(
        "control_target",
        "control target",
        "target (nats)",
        3,
        higher_is_better=None,
        readable=False,
    ),
)


for _quantity in _REGISTERED:
    register(_quantity)
