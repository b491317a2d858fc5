"""Rank the knowledge base's instruments for one cluster, and gather a region's portfolio.

Only instruments that fit the cluster's predicted stage are candidates. Each gets a score

    score = stage_weight * stage_fit + driver_weight * driver_fit + lever_weight * lever_fit

- ``stage_fit`` is 1 (the stage is in the instrument's ``stages``; it is 0 only for instruments
  that are not candidates, and is kept in the sum so a score reads the same everywhere);
- ``driver_fit`` is the share of the cluster's top-driver weight that the instrument's triggers
  match: a trigger matches a driver when it names the same indicator (a lagged copy such as
  ``entry_rate_lag1`` counts as its feature, features.lags, and a growth rate counts over every
  horizon: a trigger on ``est_cagr_3y`` matches ``est_cagr_1y`` and ``est_cagr_5y``) and the
  driver's percentile
  among the comparative clusters is high (>= ``high_percentile``) for a ``high`` trigger or low
  (<= ``low_percentile``) for a ``low`` one; each matched driver counts with its
  |contribution|, divided by the sum of |contribution| over all the cluster's top drivers, so
  driver_fit lies in [0, 1] whatever the scale of the model's margins;
- ``lever_fit`` is 1 when the instrument's KPI feature is one the cluster's lever changes (and
  the lever moves it the way the KPI should move), else 0. Levers that cannot reach their target
  stage count for nothing.

Only candidates with evidence of their own may be heavy: a heavy instrument (large public money or
binding regulation) that no driver or lever of the cluster calls for is left out, since heavy
intervention without evidence is the governance-in-vain trap (DESIGN.md). Ties go, in turn, to an
instrument that also fits the runner-up stage when the model is torn between two stages (top two
probabilities within ``near_tie_margin``), to the lighter intensity, to the instrument written for
fewer stages (more specific), then to file order. The rules live in policy/ranking.py, which ranks
many rows at once: a cluster here is ranked there as a batch of one row, levers included, and
``clusterstage score`` ranks its rows there too (models/scoring.py, without levers).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from features.stages import STAGE_ID, STAGES
from policy.knowledge_base import ASPECTS, Instrument, KnowledgeBase
from policy.ranking import (
    DEFAULT_K,
    DEFAULT_SCORING,
    InstrumentTables,
    Scoring,
    driver_hits,
    score_matrix,
    top_instruments,
    torn_stages,
)


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
    runner_up: str | None = None  # the second most likely stage
    vs_runner_up: float | None = None  # contribution to the stage's margin minus the runner-up's

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> Driver | None:
        """A driver from one record of explanations' ``drivers`` (models.explain.top_drivers);
        None without a feature name or a numeric contribution."""
        feature, contribution = record.get("feature"), finite(record.get("contribution"))
        if not isinstance(feature, str) or contribution is None:
            return None
        direction = record.get("direction")
        if direction not in ("towards", "away from"):
            direction = "towards" if contribution > 0 else "away from"
        runner_up = record.get("runner_up")
        return cls(
            feature=feature,
            value=finite(record.get("value")),
            percentile=finite(record.get("percentile")),
            contribution=contribution,
            direction=str(direction),
            runner_up=runner_up if isinstance(runner_up, str) and runner_up else None,
            vs_runner_up=finite(record.get("vs_runner_up")),
        )

    @property
    def turned(self) -> bool:
        """Whether, told against the runner-up, the driver favours the other stage than its
        contribution to the predicted stage says."""
        versus = finite(self.vs_runner_up)
        if versus is None or self.runner_up is None or versus == 0:
            return False
        return (versus > 0) != (self.contribution > 0)

    def pull(self, stage: str) -> str:
        """How the driver pushes, in words, told against the runner-up where that turns it."""
        words = f"pushes {self.direction} {stage}"
        if not self.turned:
            return words
        if self.contribution > 0:
            return f"{words}, yet favours {self.runner_up} over it"
        return f"{words}, yet favours it over {self.runner_up}"


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
    runner_up_after: str | None = None  # the best other stage after the move
    p_runner_up_after: float | None = None


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

    def ranked_stages(self) -> list[tuple[str, float]]:
        """(stage, probability), most likely first; stages without a probability left out."""
        probs = [(s, finite(p)) for s, p in self.probabilities.items()]
        known = [(s, p) for s, p in probs if p is not None]
        return sorted(known, key=lambda sp: (-sp[1], STAGES.index(sp[0])))

    @property
    def runner_up(self) -> tuple[str, float] | None:
        """The second most likely stage and its probability."""
        ranked = self.ranked_stages()
        return ranked[1] if len(ranked) > 1 else None

    def torn_with(self, margin: float) -> str | None:
        """The runner-up stage when its probability is within ``margin`` of the top one
        (policy.ranking.torn_stages)."""
        known = [finite(self.probabilities.get(s)) for s in STAGES]
        proba = np.array([[math.nan if p is None else p for p in known]])
        torn = int(torn_stages(proba, margin)[0])
        return STAGES[torn] if torn >= 0 else None

    @property
    def missing_drivers(self) -> tuple[str, ...]:
        """Top drivers whose value the cluster's data lacks: the model read the gap itself."""
        return tuple(d.feature for d in self.drivers if finite(d.value) is None)

    @property
    def rests_on_gaps(self) -> bool:
        """Most of the top drivers' weight lies on missing values: the stage is a guess."""
        total = sum(abs(finite(d.contribution) or 0.0) for d in self.drivers)
        gaps = sum(
            abs(finite(d.contribution) or 0.0) for d in self.drivers if finite(d.value) is None
        )
        return total > 0 and gaps / total > 0.5


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


def _num(value: float) -> str:
    return f"{value:.3g}"


def _lever_changes(case: ClusterCase) -> dict[str, LeverChange]:
    if case.levers is None or not case.levers.reachable:
        return {}
    return {c.feature: c for c in case.levers.changes}


def _lever_agrees(change: LeverChange, kpi_direction: str) -> bool:
    start, end = finite(change.from_value), finite(change.to_value)
    if start is None or end is None or start == end:
        return True  # the lever names the feature; its sign is unknown
    return (end > start) == (kpi_direction == "increase")


def _lever_for(instrument: Instrument, changes: Mapping[str, LeverChange]) -> LeverChange | None:
    """The cluster's lever change that moves the instrument's KPI its way, if any."""
    change = changes.get(instrument.kpi.feature)
    if change is None or not _lever_agrees(change, instrument.kpi.direction):
        return None
    return change


@dataclass(frozen=True)
class _Batch:
    """One cluster as a one-row batch of policy.ranking over ``instruments``."""

    tables: InstrumentTables
    stage: np.ndarray  # (1,) stage id, -1 for a stage outside STAGES
    feature: np.ndarray  # (1, d) driver indices into the drivers' own names
    contribution: np.ndarray  # (1, d)
    percentile: np.ndarray  # (1, d), NaN unknown
    lever_fit: np.ndarray  # (1, I)

    @classmethod
    def of(cls, case: ClusterCase, instruments: Sequence[Instrument]) -> _Batch:
        drivers = case.drivers
        changes = _lever_changes(case)
        percentiles = [finite(d.percentile) for d in drivers]
        return cls(
            tables=InstrumentTables.of(instruments, [d.feature for d in drivers]),
            stage=np.array([STAGE_ID.get(case.stage, -1)]),
            feature=np.arange(len(drivers)).reshape(1, -1),
            contribution=np.array([finite(d.contribution) or 0.0 for d in drivers]).reshape(1, -1),
            percentile=np.array([math.nan if p is None else p for p in percentiles]).reshape(1, -1),
            lever_fit=np.array(
                [_lever_for(inst, changes) is not None for inst in instruments], dtype=float
            ).reshape(1, -1),
        )

    def scores(self, scoring: Scoring) -> np.ndarray:
        """(I,) each instrument's score for the cluster."""
        return score_matrix(
            self.tables,
            self.stage,
            self.feature,
            self.contribution,
            self.percentile,
            scoring,
            self.lever_fit,
        )[0]


def score_instrument(
    instrument: Instrument, case: ClusterCase, scoring: Scoring = DEFAULT_SCORING
) -> tuple[float, str]:
    """The instrument's score for the cluster (policy.ranking.score_matrix) and the words saying
    what called for it."""
    batch = _Batch.of(case, (instrument,))
    score = float(batch.scores(scoring)[0])
    matched: list[tuple[Driver, str]] = []
    for j, driver in enumerate(case.drivers):
        high, low = driver_hits(batch.tables, batch.feature[:, j], batch.percentile[:, j], scoring)
        if high[0, 0] or low[0, 0]:
            matched.append((driver, "high" if high[0, 0] else "low"))
    stage_fit = instrument.fits(case.stage)
    change = _lever_for(instrument, _lever_changes(case))
    reasons: list[str] = []
    if matched:
        driver, level = max(matched, key=lambda m: abs(finite(m[0].contribution) or 0.0))
        pct = finite(driver.percentile)
        reasons.append(
            f"top driver {driver.feature} is {level} (P{pct:.0f} among comparative clusters; "
            f"{driver.pull(case.stage)})"
        )
    if change is not None and case.levers is not None:
        start, end = finite(change.from_value), finite(change.to_value)
        move = (
            f"from {_num(start)} to {_num(end)} " if start is not None and end is not None else ""
        )
        after = case.levers.predicted_after or case.levers.target_stage
        reasons.append(f"lever: moving {change.feature} {move}makes the model predict {after}")
    if not reasons:
        reasons.append(
            f"stage default for a {case.stage} cluster: no top driver or lever of this cluster "
            "calls for it"
            if stage_fit
            else "does not fit the stage"
        )
    torn = case.torn_with(scoring.near_tie_margin)
    if torn is not None and stage_fit and instrument.fits(torn):
        p_torn = finite(case.probabilities.get(torn))
        reasons.append(f"also fits {torn}, the stage the model nearly chose (p {p_torn:.2f})")
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
    """Every instrument that fits the cluster's stage, best first; heavy ones only with evidence
    (policy.ranking, for this one cluster)."""
    if case.stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {case.stage!r}")
    batch = _Batch.of(case, kb.instruments)
    torn = case.torn_with(scoring.near_tie_margin)
    (order,) = top_instruments(
        batch.tables,
        batch.stage,
        batch.scores(scoring)[None, :],
        torn=np.array([STAGE_ID[torn] if torn is not None else -1]),
        k=len(kb.instruments),
        scoring=scoring,
    )
    return [recommendation(kb.instruments[i], case, scoring) for i in order if i >= 0]


def recommend(
    case: ClusterCase, kb: KnowledgeBase, k: int = DEFAULT_K, scoring: Scoring = DEFAULT_SCORING
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
    k: int = DEFAULT_K,
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
