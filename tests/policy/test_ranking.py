"""policy.ranking: the instruments' ranking for many rows at once, which the recommender uses for
one cluster at a time and `clusterstage score` for every row."""

from __future__ import annotations

import numpy as np
import pytest

from features.stages import STAGES
from policy.knowledge_base import load_knowledge_base
from policy.ranking import DEFAULT_SCORING, Scoring, recommend_ids, torn_stages
from policy.recommender import ClusterCase, Driver, recommend


@pytest.fixture(scope="module")
def kb():
    return load_knowledge_base()


@pytest.mark.parametrize(
    ("scoring", "k"),
    [
        (DEFAULT_SCORING, 6),
        (Scoring(driver_weight=0.5, high_percentile=50, low_percentile=50, near_tie_margin=0.1), 3),
    ],
)
def test_a_batch_ranks_each_row_as_the_recommender_ranks_it_alone(kb, scoring, k):
    """Many rows at once (clusterstage score) and one cluster at a time (recommend, levers
    aside) give the same ranking."""
    rng = np.random.default_rng(5)
    triggers = sorted({t.feature for inst in kb.instruments for t in inst.triggers})
    # Lagged copies of trigger features, and other horizons of a growth rate, match its triggers.
    names = [
        *triggers,
        "unused_feature",
        f"{triggers[0]}_lag1",
        f"{triggers[-1]}_lag3",
        "est_cagr_1y",
        "productivity_cagr_1y_lag2",
    ]
    n, depth = 400, 3
    stage = rng.integers(0, len(STAGES), n)
    feature = np.array([rng.choice(len(names), depth, replace=False) for _ in range(n)])
    feature[rng.random((n, depth)) < 0.1] = -1  # rows with fewer drivers
    # Percentiles on the thresholds, missing ones, and equal contributions test the edges.
    percentile = rng.choice([0.0, 10.0, 40.0, 50.0, 60.0, 95.0, np.nan], size=(n, depth))
    contribution = rng.choice([-1.0, -0.5, 0.25, 0.5, 1.0, 2.0], size=(n, depth))
    # Probabilities whose top two are sometimes within the near-tie margin, the predicted stage
    # on top (ties between the others included).
    proba = rng.choice([0.05, 0.1, 0.2, 0.3], size=(n, len(STAGES)))
    proba[np.arange(n), stage] = proba.max(axis=1) + rng.choice([0.0, 0.1, 0.5], size=n) + 1e-3
    torn = torn_stages(proba, scoring.near_tie_margin)
    assert 0 < (torn >= 0).sum() < n
    chosen = recommend_ids(
        stage, feature, contribution, percentile, kb, names, torn=torn, k=k, scoring=scoring
    )
    for i in range(n):
        drivers = tuple(
            Driver(
                feature=names[feature[i, j]],
                value=None,
                percentile=None if np.isnan(percentile[i, j]) else float(percentile[i, j]),
                contribution=float(contribution[i, j]),
                direction="towards",
            )
            for j in range(depth)
            if feature[i, j] >= 0
        )
        probabilities = dict(zip(STAGES, proba[i].tolist(), strict=True))
        case = ClusterCase("r", "c", 2020, STAGES[stage[i]], probabilities, drivers=drivers)
        expected = [rec.id for rec in recommend(case, kb, k=k, scoring=scoring)]
        got = [kb.instruments[k].id for k in chosen[i] if k >= 0]
        assert got == expected, i


def test_torn_is_the_runner_up_within_the_margin_among_known_probabilities():
    proba = np.array(
        [
            [0.1, 0.4, 0.5, np.nan, np.nan],  # growth within 0.25 of mature
            [0.0, 0.2, 0.8, np.nan, np.nan],  # too far apart
            [np.nan, np.nan, 0.9, np.nan, np.nan],  # one stage known: none to be torn with
            [np.nan] * 5,
            [0.3, 0.3, 0.3, 0.05, 0.05],  # a three-way tie: the earlier stages first
        ]
    )
    assert torn_stages(proba, 0.25).tolist() == [1, -1, -1, -1, 1]
    assert torn_stages(proba, 0.0).tolist() == [-1, -1, -1, -1, 1]
    for row, want in zip(proba, ["growth", None, None, None, "growth"], strict=True):
        known = {s: p for s, p in zip(STAGES, row, strict=True) if not np.isnan(p)}
        case = ClusterCase("r", "c", 2020, "mature", known)
        assert case.torn_with(0.25) == want
