"""The policy knowledge base: instruments by aspect and stage, validated when loaded.

The data live in ``policy/instruments.yaml`` (shipped with the package). A user may point
``recommend.knowledge_base`` in params.yaml at their own file of the same shape; it is checked the
same way, so a typo stops the run with one line that names the file, the instrument and the field.

Checks beyond the per-field schema: ids are unique; every trigger and KPI feature is a feature of
the catalogue (and a KPI's direction agrees with the catalogue's ``direction_good`` where it has
one); every aspect x stage cell holds an instrument, and one that is not heavy (so the
governance_in_vain guard always has a lighter substitute); every stage has an SME-targeted
instrument (so the big_enterprise_only guard can always repair).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.errors import InputError, read_utf8
from features.stages import STAGES

Aspect = Literal["investment_guidance", "resource_assembly", "market_supervision", "public_service"]
Stage = Literal["emerging", "growth", "mature", "decline", "renewal"]
Target = Literal["smes", "all_firms", "large_firms", "institutions"]
Intensity = Literal["light", "moderate", "heavy"]
Work = Literal[
    "OECD Competitive Regional Clusters 2007",
    "World Bank Clusters for Competitiveness 2009",
    "EU cluster policy guides / European Cluster Collaboration Platform",
    "Menzel & Fornahl 2010",
    "Stough 2015 ch. 12",
    "IKED Cluster Policies Whitebook 2004",
]

ASPECTS: tuple[str, ...] = get_args(Aspect)
TARGETS: tuple[str, ...] = get_args(Target)
INTENSITIES: tuple[str, ...] = get_args(Intensity)
WORKS: tuple[str, ...] = get_args(Work)
assert get_args(Stage) == STAGES, "Stage literal must follow features.stages.STAGES"

PACKAGED_NAME = "policy/instruments.yaml"  # how the packaged file is named in messages

# The features the indicator library computes; used only while features.catalogue is absent.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Trigger(_Strict):
    feature: str
    direction: Literal["high", "low"]


class Kpi(_Strict):
    feature: str
    direction: Literal["increase", "decrease"]


class Source(_Strict):
    work: Work
    part: str | None = None  # the tool, stage or chapter of the work


class Instrument(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
    title: str = Field(min_length=3)
    aspect: Aspect
    stages: tuple[Stage, ...] = Field(min_length=1)
    triggers: tuple[Trigger, ...] = ()
    rationale: str = Field(min_length=20)
    kpi: Kpi
    targets: Target
    intensity: Intensity
    source: Source

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a stage is listed twice")
        return value

    def fits(self, stage: str) -> bool:
        return stage in self.stages


@dataclass(frozen=True)
class KnowledgeBase:
    """The validated instruments, in file order (the order breaks ties in the ranking)."""

    instruments: tuple[Instrument, ...]
    source: str = PACKAGED_NAME
    by_id: Mapping[str, Instrument] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {i.id: i for i in self.instruments})

    def __len__(self) -> int:
        return len(self.instruments)

    def __getitem__(self, instrument_id: str) -> Instrument:
        return self.by_id[instrument_id]

    def for_stage(self, stage: str) -> list[Instrument]:
        return [i for i in self.instruments if i.fits(stage)]

    def cell(self, aspect: str, stage: str) -> list[Instrument]:
        return [i for i in self.instruments if i.aspect == aspect and i.fits(stage)]


def catalogue_features() -> dict[str, int | None]:
    """Feature name -> direction_good (+1, -1 or None) from ``features.catalogue``."""
    from features.catalogue import CATALOGUE

    return {f.name: (int(f.direction_good) if f.direction_good else None) for f in CATALOGUE}


def _entry_name(raw: object, index: int) -> str:
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return f"instrument '{raw['id'].strip()}'"
    return f"instrument #{index + 1}"


def _describe(err: ValidationError) -> tuple[str, str]:
    """(field path, what was expected) of the first error, in the project's words."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<entry>"
    kind = first["type"]
    got = first.get("input")
    if kind == "literal_error":
        return loc, f"expected one of {first['ctx']['expected']} (got {got!r})"
    if kind == "missing":
        return loc, "is required"
    if kind == "extra_forbidden":
        return loc, "unknown field"
    if kind == "string_pattern_mismatch":
        return loc, f"expected a snake_case id (got {got!r})"
    message = str(first["msg"]).removeprefix("Value error, ")
    return loc, f"{message[:1].lower()}{message[1:]} (got {got!r})"


def parse_knowledge_base(
    raw: object, source: str = PACKAGED_NAME, features: Mapping[str, int | None] | None = None
) -> KnowledgeBase:
    """Validate an already-parsed knowledge base mapping (``{instruments: [...]}``)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("instruments"), list):
        raise InputError(source, "expected a mapping with a list under 'instruments'")
    known = catalogue_features() if features is None else dict(features)
    instruments: list[Instrument] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw["instruments"]):
        name = _entry_name(entry, index)
        if not isinstance(entry, Mapping):
            raise InputError(source, f"{name}: expected a mapping of fields")
        try:
            instrument = Instrument.model_validate(dict(entry))
        except ValidationError as err:
            loc, message = _describe(err)
            raise InputError(source, f"{name}, field '{loc}': {message}") from None
        if instrument.id in seen:
            raise InputError(
                source, f"{name}, field 'id': repeats instrument #{seen[instrument.id] + 1}"
            )
        seen[instrument.id] = index
        _check_features(instrument, known, source, name)
        instruments.append(instrument)
    kb = KnowledgeBase(tuple(instruments), source=source)
    _check_coverage(kb, source)
    return kb


def _check_features(
    instrument: Instrument, known: Mapping[str, int | None], source: str, name: str
) -> None:
    refs = [(f"triggers.{i}.feature", t.feature) for i, t in enumerate(instrument.triggers)]
    refs.append(("kpi.feature", instrument.kpi.feature))
    for loc, feature in refs:
        if feature not in known:
            raise InputError(
                source,
                f"{name}, field '{loc}': expected a feature of the catalogue "
                f"(features/catalogue.py), got {feature!r}",
            )
    good = known[instrument.kpi.feature]
    wanted = 1 if instrument.kpi.direction == "increase" else -1
    if good is not None and good != wanted:
        raise InputError(
            source,
            f"{name}, field 'kpi.direction': '{instrument.kpi.direction}' contradicts the "
            f"catalogue, where {instrument.kpi.feature} is better when "
            f"{'higher' if good > 0 else 'lower'}",
        )


def _check_coverage(kb: KnowledgeBase, source: str) -> None:
    for stage in STAGES:
        for aspect in ASPECTS:
            cell = kb.cell(aspect, stage)
            if not cell:
                raise InputError(source, f"no instrument of aspect '{aspect}' fits stage '{stage}'")
            if all(i.intensity == "heavy" for i in cell):
                raise InputError(
                    source,
                    f"every instrument of aspect '{aspect}' at stage '{stage}' is heavy; "
                    "expected a light or moderate one too",
                )
        if not any(i.targets == "smes" for i in kb.for_stage(stage)):
            raise InputError(source, f"no SME-targeted instrument fits stage '{stage}'")


def load_knowledge_base(path: str | Path | None = None) -> KnowledgeBase:
    """Read and validate the knowledge base; ``None``, or the packaged file's own name
    (policy/instruments.yaml, params.yaml's default), reads the packaged policy/instruments.yaml
    wherever the command runs."""
    if path is None or Path(path) == Path(PACKAGED_NAME):
        source = PACKAGED_NAME
        text = resources.files("policy").joinpath("instruments.yaml").read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = read_utf8(path, "a UTF-8 encoded YAML file")
        except OSError as err:
            raise InputError(source, f"cannot read the knowledge base ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(source, f"not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_knowledge_base(raw, source)


_HOW = """
## How a cluster's recommendations are chosen

`clusterstage recommend` ranks the instruments that fit a cluster's predicted stage
(policy/ranking.py; `clusterstage score` ranks each row it scores by the same rules and the same
`recommend.*` settings, without levers) by

    score = stage fit + driver_weight * driver fit + lever_weight * lever fit

- stage fit: 1 (only instruments listing the stage are candidates);
- driver fit: the share of the cluster's top-driver |contribution| whose feature matches one of
  the instrument's triggers: `high` when the driver's value is at or above the
  `recommend.high_percentile` (60) of the comparative clusters, `low` at or below
  `recommend.low_percentile` (40). A trigger names an indicator, so it also matches the
  indicator's lagged copies and, for a growth rate, every horizon (`est_cagr_3y` matches a
  driver `est_cagr_1y`);
- lever fit: 1 when the instrument's KPI is a feature of the cluster's lever, moved the way the
  KPI should move.

A heavy instrument is a candidate only when a driver or lever of the cluster calls for it:
heavy intervention without evidence is the governance-in-vain trap. Ties go, in turn, to an
instrument that also fits the runner-up stage when the model is torn (its top two probabilities
within `recommend.near_tie_margin`, 0.25), to the lighter intensity, to the instrument written
for fewer stages, then to file order. A measure nothing but the stage calls for says so: "stage
default for a decline cluster: no top driver or lever of this cluster calls for it". The
`recommend.k` (6) best of each cluster form the region's portfolio, which four guards then check
and repair (policy/guards.py), in this order:

1. `governance_in_vain`: every measure's KPI has today's value as a baseline, and no heavy
   measure where the model's top probability is below `recommend.min_confidence` (0.6) or where
   most of the top drivers' weight lies on values missing for the cluster; a failing
   measure is replaced by the best admissible one of the same aspect (else of any aspect), or
   dropped where none is left.
2. `big_enterprise_only`: where `sme_share` exceeds `recommend.sme_majority` (0.5), at least one
   measure targets SMEs; so too where SMEs are being squeezed (the research notes' sign: the top
   four firms' share, else the HHI, rising over three years while `sme_share` falls below its
   value three years before) and a measure serves large firms. The best SME instrument replaces
   the lowest-ranked measure aimed at large firms (else of its own aspect, else the
   lowest-ranked).
3. `strong_over_weak`: emerging, declining and renewing clusters get at least as many measures
   per cluster as mature ones; the weak clusters get the best admissible instruments added.
4. `unbalanced_support`: all four aspects appear in the region's portfolio and none holds more
   than `recommend.max_aspect_share` (40 %); the lowest-ranked measures of the most frequent
   aspect are swapped for the best ones of the rarest.

Substitutes are always admissible: they fit the stage, are not yet recommended to the cluster,
have a measurable KPI, are not heavy where the model is unsure, and never take away the only SME
measure of an SME-led or squeezed cluster. reports/portfolio.json records, per guard, whether the
portfolio passed before repair, each change in words, and whether the rule holds after all
repairs.
Drivers (models/explain.py). A driver's contribution is to the predicted stage's margin. The
probabilities weigh the stages' margins against each other, so each driver is also told against
the runner-up stage (`vs_runner_up`: its contribution to the predicted stage's margin minus that to
the runner-up's). Where that turns it, the reason says so: "pushes towards mature, yet favours
decline over it".

Levers and percentiles (models/levers.py, models/reference.py, models/explanations.py). A driver's
percentile and a lever's bounds (the P5-P95 grid; a change costs |to - from| / IQR) come from the
comparative clusters of the cluster's own year; where fewer than 30 of them have a value for a
feature, the nearest years are added (t±1, t±2, ...) until 30 have one, or all years where even
that falls short. `score` ranks its drivers the same way, through the percentile grids of each
training year saved with the model (year_quantiles.json, 1-point resolution); a year after the
last training year takes the grids of the nearest one. A lever moves a level, and the features
built from that level in the same year follow it (growth rates, 3-year changes, the net entry
rate); lagged values stay. Those followers must stay within P5-P95 of the comparative clusters as
well, so no lever rests on a one-year jump they hardly ever show. A mature cluster gets a renewal
lever only where p_decline is at least 0.25. Each lever reports the target's probability and the
runner-up stage's after the move.

Each cluster's line in reports/recommendations.jsonl names the runner-up stage and its
probability, and lists `caveats` in words: the model torn between two stages, or a stage that
rests mostly on missing values.
"""


def render_markdown(kb: KnowledgeBase) -> str:
    """The knowledge base as a Markdown page (docs/policy.md is generated by this)."""
    lines = [
        "# Policy instruments",
        "",
        f"Generated from `{PACKAGED_NAME}` by `clusterstage instruments`; do not edit by hand.",
        f"{len(kb)} instruments. Stage x aspect coverage (number of instruments):",
        "",
        "| stage | " + " | ".join(ASPECTS) + " |",
        "|---|" + "---|" * len(ASPECTS),
    ]
    for stage in STAGES:
        counts = " | ".join(str(len(kb.cell(a, stage))) for a in ASPECTS)
        lines.append(f"| {stage} | {counts} |")
    lines += ["", _HOW.strip()]
    for aspect in ASPECTS:
        lines += ["", f"## {aspect}", ""]
        for inst in (i for i in kb.instruments if i.aspect == aspect):
            triggers = ", ".join(f"{t.feature} {t.direction}" for t in inst.triggers) or "none"
            source = inst.source.work + (f", {inst.source.part}" if inst.source.part else "")
            lines += [
                f"### `{inst.id}`: {inst.title}",
                "",
                inst.rationale,
                "",
                f"- stages: {', '.join(inst.stages)}",
                f"- triggers: {triggers}",
                f"- KPI: {inst.kpi.feature} ({inst.kpi.direction})",
                f"- targets: {inst.targets}; intensity: {inst.intensity}",
                f"- source: {source}",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"
