"""Lever targets, the bounded search, and that every lever re-predicts as it claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.stages import STAGES
from models.levers import (
    QUANTILES,
    Change,
    catalogue_levers,
    direction_sign,
    find_levers,
    lever_target,
)
from tests.models.test_explain import FEATURES, toy_model

ACTIONABLE = ["rd_intensity", "entry_rate", "productivity", "sme_share", "export_intensity"]
UP = {"rd_intensity": 1, "entry_rate": 1, "productivity": 1}


@pytest.fixture(scope="module")
def toy():
    return toy_model()


def _proba(**p: float) -> list[float]:
    return [p.get(s, 0.0) for s in STAGES]


@pytest.mark.parametrize(
    ("stage", "proba", "target"),
    [
        ("emerging", _proba(emerging=0.6, growth=0.4), "growth"),
        ("growth", _proba(growth=0.9, mature=0.1), None),
        ("decline", _proba(decline=0.5, renewal=0.5), "renewal"),
        ("renewal", _proba(renewal=0.7, decline=0.3), "growth"),
        ("mature", _proba(mature=0.5, decline=0.2, growth=0.15, renewal=0.15), "renewal"),
        ("mature", _proba(mature=0.4, growth=0.3, decline=0.25, renewal=0.05), "renewal"),
        ("mature", _proba(mature=0.6, growth=0.3, decline=0.1), None),
    ],
)
def test_lever_targets(stage, proba, target):
    assert lever_target(stage, proba) == target
    assert lever_target(stage, dict(zip(STAGES, proba, strict=True))) == target


def test_direction_sign():
    assert [direction_sign(v) for v in (1, -1, None, "+1", "down", 0, float("nan"))] == [
        1,
        -1,
        0,
        1,
        -1,
        0,
        0,
    ]
    with pytest.raises(ValueError):
        direction_sign("sideways")


def test_catalogue_levers_come_from_the_catalogue():
    from features.catalogue import CATALOGUE

    levers = catalogue_levers()
    assert set(levers) == {f.name for f in CATALOGUE if f.actionable}
    assert all(levers[f.name] == f.direction_good for f in CATALOGUE if f.actionable)


def _apply(row: pd.DataFrame, changes: list[Change]) -> pd.DataFrame:
    out = row.copy()
    for c in changes:
        assert out[c.feature].iloc[0] == pytest.approx(c.from_value)
        out[c.feature] = c.to_value
    return out


def test_every_lever_repredicts_as_claimed_within_bounds(toy):
    model, X, _ = toy
    rows = X.iloc[:80].reset_index(drop=True)
    results = find_levers(model, rows, X, ACTIONABLE, UP)
    assert len(results) == len(rows)
    predicted = model.predict_frame(rows)
    p5, p95 = X.quantile(0.05), X.quantile(0.95)
    reached = 0
    for i, r in enumerate(results):
        assert r.stage == predicted.loc[i, "stage"]
        assert r.target_stage == lever_target(r.stage, predicted.loc[i, [f"p_{s}" for s in STAGES]])
        if not r.reachable:
            assert r.reason
            assert r.changes == [] or r.predicted_after != r.target_stage
            continue
        reached += 1
        assert 1 <= len(r.changes) <= 2
        after = model.predict_frame(_apply(rows.iloc[[i]], r.changes))
        assert after.loc[0, "stage"] == r.predicted_after == r.target_stage
        assert after.loc[0, f"p_{r.target_stage}"] == pytest.approx(r.p_target_after)
        for c, q in zip(r.changes, r.to_quantiles, strict=True):
            assert c.feature in ACTIONABLE
            assert p5[c.feature] - 1e-12 <= c.to_value <= p95[c.feature] + 1e-12
            assert c.to_value == pytest.approx(X[c.feature].quantile(q))
            if c.feature in UP:
                assert c.to_value > c.from_value
        assert r.cost == pytest.approx(sum(r.change_costs))
    assert reached >= 10  # the toy model has levers for many clusters


def test_levers_are_no_dearer_than_the_best_single_move(toy):
    """Brute force over the singles grid: the search never returns something dearer."""
    model, X, _ = toy
    rows = X.iloc[:40].reset_index(drop=True)
    results = find_levers(model, rows, X, ACTIONABLE, UP)
    iqr = X.quantile(0.75) - X.quantile(0.25)
    trials, owner, costs = [], [], []
    for i, r in enumerate(results):
        if r.target_stage is None:
            continue
        for f in ACTIONABLE:
            x = rows.loc[i, f]
            if np.isnan(x):
                continue
            for v in np.unique(X[f].dropna().quantile(list(QUANTILES)).to_numpy()):
                if v == x or (f in UP and v <= x):
                    continue
                trials.append(rows.iloc[i].to_dict() | {f: v})
                owner.append(i)
                costs.append(abs(v - x) / iqr[f])
    stage = model.predict_frame(pd.DataFrame(trials))["stage"].to_numpy()
    owner, costs = np.asarray(owner), np.asarray(costs)
    for i, r in enumerate(results):
        if r.target_stage is None:
            continue
        hits = (owner == i) & (stage == r.target_stage)
        best = costs[hits].min() if hits.any() else np.inf
        if np.isfinite(best):
            assert r.reachable
            assert r.cost <= best + 1e-9
        elif r.reachable:
            assert len(r.changes) == 2  # only a pair reaches the target


def _rd_model():
    """A model whose stage follows rd_intensity alone: emerging < 0 < growth < 1.5 < mature."""
    from models.bundle import ModelMeta, StageModel
    from models.estimators import StageClassifier

    rng = np.random.default_rng(5)
    n = 500
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["rd_intensity", "entry_rate", "lq"])
    y = np.digitize(X["rd_intensity"], [0.0, 1.5])  # emerging, growth, mature
    clf = StageClassifier(tuning_budget=0, calibrate=False, n_estimators=30, n_jobs=1).fit(
        X, y, np.arange(n) % 3
    )
    meta = ModelMeta(features=list(X.columns), classes=[0, 1, 2])
    return StageModel(clf.booster, meta), X


def test_a_known_lever_is_found_and_the_cheapest_grid_point():
    model, X = _rd_model()
    row = pd.DataFrame({"rd_intensity": [-0.8], "entry_rate": [0.0], "lq": [0.0]})
    (r,) = find_levers(model, row, X, ["rd_intensity", "entry_rate"], {"rd_intensity": 1})
    assert (r.stage, r.target_stage, r.reachable) == ("emerging", "growth", True)
    assert [c.feature for c in r.changes] == ["rd_intensity"]
    to = r.changes[0].to_value
    grid = X["rd_intensity"].quantile(list(QUANTILES)).to_numpy()
    # the first grid point above the learnt split near 0 that the model calls growth
    assert to > 0 and (grid[(grid > -0.8) & (grid < to)] <= 0.05).all()
    assert r.predicted_after == "growth" and r.p_target_after > 0.5
    assert "raise rd_intensity" in r.reason


def test_direction_and_missing_values_block_levers():
    model, X = _rd_model()
    row = pd.DataFrame({"rd_intensity": [-0.8], "entry_rate": [0.0], "lq": [0.0]})
    (down,) = find_levers(model, row, X, ["rd_intensity"], {"rd_intensity": -1})
    assert not down.reachable and down.target_stage == "growth"
    assert "no move" in down.reason and down.changes == []
    missing = row.assign(entry_rate=np.nan)  # a missing value is never moved
    (r,) = find_levers(model, missing, X, ["entry_rate"], {})
    assert r.target_stage == "growth" and not r.reachable
    assert "no actionable feature can move" in r.reason


def test_targets_the_model_never_saw_and_desirable_stages():
    model, X = _rd_model()
    growth = pd.DataFrame({"rd_intensity": [0.9], "entry_rate": [0.0], "lq": [0.0]})
    (g,) = find_levers(model, growth, X, ["rd_intensity"], {})
    assert g.stage == "growth" and g.target_stage is None and not g.reachable
    assert "already" in g.reason
    # the same trees read as a model of mature, decline and growth: no renewal to aim at
    model.meta.classes = [2, 3, 1]
    (d,) = find_levers(model, growth, X, ["rd_intensity"], {})
    assert d.stage == "decline" and d.target_stage == "renewal" and not d.reachable
    assert "not trained on stage 'renewal'" in d.reason


def test_features_outside_the_model_are_ignored(toy):
    model, X, _ = toy
    rows = X.iloc[:5]
    results = find_levers(model, rows, X, ["not_a_feature", *ACTIONABLE], UP)
    assert all(c.feature in FEATURES for r in results for c in r.changes)


def test_search_time_per_cluster(toy):
    import time

    model, X, _ = toy
    rows = X.iloc[:50]
    start = time.perf_counter()
    find_levers(model, rows, X, ACTIONABLE, UP)
    per_cluster = (time.perf_counter() - start) / len(rows)
    assert per_cluster < 0.5  # generous: a shared CI machine; ~10 ms when idle
