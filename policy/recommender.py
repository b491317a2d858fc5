"""Rank the knowledge base's instruments for one cluster, and gather a region's portfolio.

Only instruments that fit the cluster's predicted stage are candidates. Each gets a score

    score = stage_weight * stage_fit + driver_weight * driver_fit + lever_weight * lever_fit

- ``stage_fit`` is 1 (the stage is in the instrument's ``stages``; it is 0 only for instruments
  that are not candidates, and is kept in the sum so a score reads the same everywhere);
- ``driver_fit`` is the share of the cluster's top-driver weight that the instrument's triggers
  match: a trigger matches a driver when the feature is the same (a lagged copy such as
  ``entry_rate_lag1`` counts as its feature, features.lags) and the driver's percentile
  among the comparative clusters is high (>= ``high_percentile``) for a ``high`` trigger or low
  (<= ``low_percentile``) for a ``low`` one; each matched driver counts with its
  |contribution|, divided by the sum of |contribution| over all the cluster's top drivers, so
  driver_fit lies in [0, 1] whatever the scale of the model's margins;
- ``lever_fit`` is 1 when the instrument's KPI feature is one the cluster's lever changes (and
  the lever moves it the way the KPI should move), else 0. Levers that cannot reach their target
  stage count for nothing.

Ties go to the instrument written for fewer stages (more specific), then to file order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace

from features.lags import base_feature
from features.stages import STAGES
from policy.knowledge_base import ASPECTS, Instrument, KnowledgeBase


def finite(value: object) -> float | None:
    """A finite float, or None for missing, NaN, infinite or non-numeric values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Driver:
    """One of the top features behind the predicted stage (models/explain.py)."""

    feature: str
    value: float | None
    percentile: float | None  # 0-100, among the comparative clusters
    contribution: float  # to the predicted stage's margin
    direction: str  # "towards" or "away from" the predicted stage


@dataclass(frozen=True)
class LeverChange:
    feature: str
    from_value: float | None
    to_value: float | None


@dataclass(frozen=True)
class Levers:
    """What would move the cluster on (models/levers.py)."""

    target_stage: str | None
    reachable: bool
    changes: tuple[LeverChange, ...] = ()
    predicted_after: str | None = None
    p_target_after: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ClusterCase:
    """Everything the recommender knows about one cluster in one year."""

    region: str
    cluster: str
    year: int
    stage: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    drivers: tuple[Driver, ...] = ()
    values: Mapping[str, object] = field(default_factory=dict)  # the cluster's feature values
    levers: Levers | None = None

    @property
    def confidence(self) -> float:
        """The model's probability of the predicted stage (its highest probability)."""
        probs = [p for p in map(finite, self.probabilities.values()) if p is not None]
        return max(probs, default=0.0)

    def value(self, feature: str) -> float | None:
        return finite(self.values.get(feature))


@dataclass(frozen=True)
class Recommendation:
    id: str
    title: str
    aspect: str
    because: str
    kpi: str
    kpi_direction: str
    baseline: float | None  # the cluster's current value of the KPI feature
    score: float
    targets: str
    intensity: str
    added_by: str | None = None  # the guard that put it in, if any

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Scoring:
    stage_weight: float = 1.0
    driver_weight: float = 1.0
    lever_weight: float = 1.0
    high_percentile: float = 60.0
    low_percentile: float = 40.0


DEFAULT_SCORING = Scoring()


def _num(value: float) -> str:
    return f"{value:.3g}"


def _matches(trigger_direction: str, percentile: float | None, scoring: Scoring) -> bool:
    if percentile is None:
        return False
    if trigger_direction == "high":
        return percentile >= scoring.high_percentile
    return percentile <= scoring.low_percentile


def _lever_changes(case: ClusterCase) -> dict[str, LeverChange]:
    if case.levers is None or not case.levers.reachable:
        return {}
    return {c.feature: c for c in case.levers.changes}


def _lever_agrees(change: LeverChange, kpi_direction: str) -> bool:
    start, end = finite(change.from_value), finite(change.to_value)
    if start is None or end is None or start == end:
        return True  # the lever names the feature; its sign is unknown
    return (end > start) == (kpi_direction == "increase")


def score_instrument(
    instrument: Instrument, case: ClusterCase, scoring: Scoring = DEFAULT_SCORING
) -> tuple[float, str]:
    """The instrument's score for the cluster and the words saying what called for it."""
    stage_fit = 1.0 if instrument.fits(case.stage) else 0.0
    total = sum(abs(finite(d.contribution) or 0.0) for d in case.drivers)
    matched: list[tuple[Driver, str]] = []
    for driver in case.drivers:
        pct = finite(driver.percentile)
        base = base_feature(driver.feature)
        for trigger in instrument.triggers:
            if trigger.feature == base and _matches(trigger.direction, pct, scoring):
                matched.append((driver, trigger.direction))
                break
    weight = sum(abs(finite(d.contribution) or 0.0) for d, _ in matched)
    driver_fit = weight / total if total > 0 else 0.0

    change = _lever_changes(case).get(instrument.kpi.feature)
    agrees = change is not None and _lever_agrees(change, instrument.kpi.direction)
    lever_fit = 1.0 if agrees else 0.0

    score = (
        scoring.stage_weight * stage_fit
        + scoring.driver_weight * driver_fit
        + scoring.lever_weight * lever_fit
    )
    reasons: list[str] = []
    if matched:
        driver, level = max(matched, key=lambda m: abs(finite(m[0].contribution) or 0.0))
        pct = finite(driver.percentile)
        reasons.append(
            f"top driver {driver.feature} is {level} (P{pct:.0f} among comparative clusters; "
            f"pushes {driver.direction} {case.stage})"
        )
    if lever_fit and change is not None and case.levers is not None:
        start, end = finite(change.from_value), finite(change.to_value)
        move = (
            f"from {_num(start)} to {_num(end)} " if start is not None and end is not None else ""
        )
        after = case.levers.predicted_after or case.levers.target_stage
        reasons.append(f"lever: moving {change.feature} {move}makes the model predict {after}")
    if not reasons:
        reasons.append(f"fits the {case.stage} stage" if stage_fit else "does not fit the stage")
    return score, "; ".join(reasons)


def recommendation(
    instrument: Instrument, case: ClusterCase, scoring: Scoring = DEFAULT_SCORING
) -> Recommendation:
    score, because = score_instrument(instrument, case, scoring)
    return Recommendation(
        id=instrument.id,
        title=instrument.title,
        aspect=instrument.aspect,
        because=because,
        kpi=instrument.kpi.feature,
        kpi_direction=instrument.kpi.direction,
        baseline=case.value(instrument.kpi.feature),
        score=round(score, 6),
        targets=instrument.targets,
        intensity=instrument.intensity,
    )


def rank_instruments(
    case: ClusterCase, kb: KnowledgeBase, scoring: Scoring = DEFAULT_SCORING
) -> list[Recommendation]:
    """Every instrument that fits the cluster's stage, best first."""
    if case.stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {case.stage!r}")
    ranked = [
        (recommendation(inst, case, scoring), len(inst.stages), order)
        for order, inst in enumerate(kb.instruments)
        if inst.fits(case.stage)
    ]
    ranked.sort(key=lambda item: (-item[0].score, item[1], item[2]))
    return [rec for rec, _, _ in ranked]


def recommend(
    case: ClusterCase, kb: KnowledgeBase, k: int = 6, scoring: Scoring = DEFAULT_SCORING
) -> tuple[Recommendation, ...]:
    """The k best-fitting instruments for one cluster (before the portfolio guards)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return tuple(rank_instruments(case, kb, scoring)[:k])


@dataclass(frozen=True)
class Portfolio:
    """A region's recommendations: per cluster (latest year), with what they were chosen from."""

    region: str
    cases: Mapping[str, ClusterCase]  # cluster -> case
    recommendations: Mapping[str, tuple[Recommendation, ...]]  # cluster -> recommendations
    kb: KnowledgeBase
    scoring: Scoring = DEFAULT_SCORING

    def with_recommendations(self, cluster: str, recs: Iterable[Recommendation]) -> Portfolio:
        updated = dict(self.recommendations)
        updated[cluster] = tuple(recs)
        return replace(self, recommendations=updated)

    def all(self) -> list[tuple[str, Recommendation]]:
        return [(c, r) for c, recs in self.recommendations.items() for r in recs]

    def count_by_aspect(self) -> dict[str, int]:
        counts = Counter(r.aspect for _, r in self.all())
        return {a: counts.get(a, 0) for a in ASPECTS}

    def count_by_stage(self) -> dict[str, dict[str, float]]:
        """Per stage: clusters, recommendations and mean recommendations per cluster."""
        out: dict[str, dict[str, float]] = {}
        for stage in STAGES:
            members = [c for c, case in self.cases.items() if case.stage == stage]
            n = sum(len(self.recommendations.get(c, ())) for c in members)
            out[stage] = {
                "clusters": len(members),
                "recommendations": n,
                "mean_per_cluster": round(n / len(members), 4) if members else 0.0,
            }
        return out


def build_portfolio(
    region: str,
    cases: Iterable[ClusterCase],
    kb: KnowledgeBase,
    k: int = 6,
    scoring: Scoring = DEFAULT_SCORING,
) -> Portfolio:
    """The top-k recommendations of each cluster of one region (one case per cluster)."""
    by_cluster: dict[str, ClusterCase] = {}
    for case in cases:
        if case.region != region:
            raise ValueError(f"case {case.cluster!r} is of region {case.region!r}, not {region!r}")
        if case.cluster in by_cluster:
            raise ValueError(f"cluster {case.cluster!r} appears twice; pass one year per cluster")
        by_cluster[case.cluster] = case
    recs = {c: recommend(case, kb, k, scoring) for c, case in by_cluster.items()}
    return Portfolio(region, by_cluster, recs, kb, scoring)
