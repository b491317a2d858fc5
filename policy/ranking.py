"""The ranking of the knowledge base's instruments, for many rows at once: the home of its rules.

``clusterstage score`` ranks every scored row with it (models/scoring.py, without levers) and
``clusterstage recommend`` ranks each cluster with it as a batch of one row, levers included
(policy.recommender.rank_instruments), so a change of a rule here changes both.

Candidates are the instruments that fit the row's stage; a heavy one (:func:`needs_evidence`) only
where a driver or lever calls for it, i.e. its score is above the bare stage fit. Each scores

    score = stage_weight * stage_fit + driver_weight * driver_fit + lever_weight * lever_fit

(:func:`score_matrix`), where driver_fit is the |contribution| share of the row's drivers that
one of the instrument's triggers matches (:func:`driver_hits`: the same indicator, see
:func:`trigger_family`, at a percentile ≥ high_percentile for a high trigger, ≤ low_percentile
for a low one) and lever_fit is given by the caller (0 without levers). Scores are compared
rounded to 6 decimals; ties go to an instrument that also fits the row's runner-up stage when
the model is torn between two (:func:`torn_stages`), then to the lighter intensity, then to
fewer stages, then to file order (:func:`tie_key`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.lags import base_feature
from features.stages import STAGES
from policy.knowledge_base import INTENSITIES, Instrument, KnowledgeBase

_HORIZON = re.compile(r"^(?P<family>.+_cagr)_\d+y$")

# Instruments recommended per cluster before the portfolio guards (params.yaml recommend.k).
DEFAULT_K = 6


@dataclass(frozen=True)
class Scoring:
    stage_weight: float = 1.0
    driver_weight: float = 1.0
    lever_weight: float = 1.0
    high_percentile: float = 60.0
    low_percentile: float = 40.0
    near_tie_margin: float = 0.25  # top two probabilities this close: prefer measures fitting both


DEFAULT_SCORING = Scoring()


def trigger_family(feature: str) -> str:
    """The indicator a trigger or driver speaks of: lags dropped, growth horizons merged.

    ``est_cagr_1y``, ``est_cagr_3y_lag1`` and ``est_cagr_5y`` all read "establishments grow
    fast/slowly", which is what an instrument's trigger asks about.
    """
    base = base_feature(feature)
    match = _HORIZON.match(base)
    return f"{match['family']}_*" if match else base


def needs_evidence(instrument: Instrument) -> bool:
    """Whether the instrument is a candidate only when a driver or lever calls for it."""
    return instrument.intensity == "heavy"


def tie_key(instrument: Instrument, order: int, torn_with: str | None) -> tuple[int, int, int, int]:
    """Sort key among equal scores: fits the runner-up too (when torn), lighter, more specific,
    earlier in the file."""
    both = 0 if torn_with is not None and instrument.fits(torn_with) else 1
    return both, INTENSITIES.index(instrument.intensity), len(instrument.stages), order


@dataclass(frozen=True)
class InstrumentTables:
    """The instruments as arrays over ``features`` (the names that driver indices point to):
    ``fits`` (stages x I), ``high`` and ``low`` triggers (I x F), each instrument's tie-break
    rank apart from the runner-up rule (which depends on the row) and whether it needs evidence."""

    fits: np.ndarray
    high: np.ndarray
    low: np.ndarray
    tie_rank: np.ndarray
    evidence: np.ndarray

    @classmethod
    def of(cls, instruments: Sequence[Instrument], features: Sequence[str]) -> InstrumentTables:
        columns: dict[str, list[int]] = {}
        for j, name in enumerate(features):
            # A lagged copy, or another horizon of a growth rate, is evidence of the same condition.
            columns.setdefault(trigger_family(name), []).append(j)
        n = len(instruments)
        fits = np.zeros((len(STAGES), n), dtype=bool)
        high = np.zeros((n, len(features)), dtype=bool)
        low = np.zeros((n, len(features)), dtype=bool)
        for i, inst in enumerate(instruments):
            for s, stage in enumerate(STAGES):
                fits[s, i] = inst.fits(stage)
            for trigger in inst.triggers:
                for j in columns.get(trigger_family(trigger.feature), ()):
                    (high if trigger.direction == "high" else low)[i, j] = True
        order = sorted(range(n), key=lambda i: tie_key(instruments[i], i, None))
        tie_rank = np.empty(n, dtype=np.int64)
        tie_rank[order] = np.arange(n)
        evidence = np.array([needs_evidence(inst) for inst in instruments], dtype=bool)
        return cls(fits, high, low, tie_rank, evidence)

    def stage_fit(self, stage: np.ndarray) -> np.ndarray:
        """(n, I): whether each instrument fits the row's stage (ids; -1: none)."""
        stage = np.asarray(stage, dtype=np.int64)
        return np.where(stage[:, None] >= 0, self.fits[np.maximum(stage, 0)], False)


def torn_stages(proba: np.ndarray, margin: float) -> np.ndarray:
    """Per row, the runner-up stage's id where the top two probabilities (columns in STAGES
    order; NaN: unknown) are within ``margin``, else -1; ties go to the earlier stage."""
    if proba.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    known = np.where(np.isnan(proba), -np.inf, proba)
    ranked = np.argsort(-known, axis=1, kind="stable")[:, :2]
    top, second = (np.take_along_axis(known, ranked[:, i : i + 1], axis=1)[:, 0] for i in (0, 1))
    with np.errstate(invalid="ignore"):  # no probability known: -inf - -inf
        close = top - second <= margin
    return np.where(close, ranked[:, 1], -1)


def driver_hits(
    tables: InstrumentTables, feature: np.ndarray, percentile: np.ndarray, scoring: Scoring
) -> tuple[np.ndarray, np.ndarray]:
    """For one driver per row (``feature``: index into the tables' features, -1: none;
    ``percentile``: NaN unknown), (n, I) whether a high, and whether a low, trigger of each
    instrument matches it."""
    present = feature >= 0
    f = np.where(present, feature, 0)
    with np.errstate(invalid="ignore"):
        is_high = present & (percentile >= scoring.high_percentile)
        is_low = present & (percentile <= scoring.low_percentile)
    return tables.high[:, f].T & is_high[:, None], tables.low[:, f].T & is_low[:, None]


def score_matrix(
    tables: InstrumentTables,
    stage: np.ndarray,
    driver_feature: np.ndarray,
    driver_contribution: np.ndarray,
    driver_percentile: np.ndarray,
    scoring: Scoring,
    lever_fit: np.ndarray | None = None,
) -> np.ndarray:
    """(n, I) every instrument's score for each row. Drivers are (n, d) arrays: feature index
    (-1: none), contribution, percentile (NaN: unknown); ``lever_fit`` (n, I) is 1 where the
    row's lever moves the instrument's KPI its way (None: no levers)."""
    present = driver_feature >= 0
    weight = np.where(present, np.abs(driver_contribution), 0.0)
    n = weight.shape[0]
    total = np.zeros(n)
    matched = np.zeros((n, tables.fits.shape[1]))
    for j in range(driver_feature.shape[1]):
        total += weight[:, j]
        high, low = driver_hits(tables, driver_feature[:, j], driver_percentile[:, j], scoring)
        matched += np.where(high | low, weight[:, j : j + 1], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = np.where(total[:, None] > 0, matched / total[:, None], 0.0)
    score = scoring.stage_weight * tables.stage_fit(stage) + scoring.driver_weight * fit
    if lever_fit is not None:
        score = score + scoring.lever_weight * lever_fit
    return score


def top_instruments(
    tables: InstrumentTables,
    stage: np.ndarray,
    score: np.ndarray,
    *,
    torn: np.ndarray | None = None,
    k: int = DEFAULT_K,
    scoring: Scoring = DEFAULT_SCORING,
) -> np.ndarray:
    """(n, k) instrument indices, best first (-1: none left): the candidates of each row
    (``stage``: ids) by ``score`` (:func:`score_matrix`) rounded to 6 decimals, ties to an
    instrument that also fits the row's ``torn`` stage (-1: none), then :func:`tie_key`'s order."""
    n, n_inst = score.shape
    micro = np.rint(score * 1e6).astype(np.int64)
    torn = np.full(n, -1, dtype=np.int64) if torn is None else np.asarray(torn, dtype=np.int64)
    both = tables.stage_fit(torn)
    key = micro * (2 * n_inst) + both * n_inst + (n_inst - 1 - tables.tie_rank)[None, :]
    bare = micro <= np.rint(scoring.stage_weight * 1e6)
    key = np.where(tables.stage_fit(stage) & ~(tables.evidence[None, :] & bare), key, -1)
    k = min(k, n_inst)
    top = np.argsort(-key, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(key, top, axis=1) >= 0, top, -1)


def recommend_ids(
    stage: np.ndarray,
    driver_feature: np.ndarray,
    driver_contribution: np.ndarray,
    driver_percentile: np.ndarray,
    kb: KnowledgeBase,
    features: Sequence[str],
    *,
    torn: np.ndarray | None = None,
    k: int = DEFAULT_K,
    scoring: Scoring = DEFAULT_SCORING,
    lever_fit: np.ndarray | None = None,
) -> np.ndarray:
    """(n, k) indices into ``kb.instruments``, best first (-1: none left), for rows of ``stage``
    ids with the drivers of :func:`score_matrix` (feature indices into ``features``)."""
    tables = InstrumentTables.of(kb.instruments, features)
    score = score_matrix(
        tables, stage, driver_feature, driver_contribution, driver_percentile, scoring, lever_fit
    )
    return top_instruments(tables, stage, score, torn=torn, k=k, scoring=scoring)
