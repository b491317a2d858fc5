"""Lever targets, the bounded search, and that every lever re-predicts as it claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.stages import STAGES
from models.levers import (
    DERIVED,
    QUANTILES,
    Change,
    _Grid,
    _grid,
    _Search,
    _within,
    apply_changes,
    catalogue_levers,
    derived_features,
    direction_sign,
    find_levers,
    lever_target,
    move,
)
from tests.models.test_explain import FEATURES, toy_model
from tests.models.test_reference import _two_years

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
        # decline the runner-up but unlikely: no renewal to aim at
        ("mature", _proba(mature=0.5, decline=0.2, growth=0.15, renewal=0.15), None),
        ("mature", [0.001, 0.003, 0.987, 0.007, 0.002], None),
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


def _apply(row: pd.DataFrame, changes: list[Change], features=FEATURES) -> pd.DataFrame:
    for c in changes:
        assert row[c.feature].iloc[0] == pytest.approx(c.from_value)
    return apply_changes(row, changes, features)


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


# --- coherent levers: what follows a moved level, checked against the feature builder ----------


def _raw_panel() -> pd.DataFrame:
    """Three regions x two clusters x six years with every raw input the levers act through."""
    rng = np.random.default_rng(3)
    rows = []
    for region in ("A", "B", "C"):
        for cluster in ("x", "y"):
            for year in range(2010, 2016):
                emp = rng.uniform(500, 2000)
                rows.append(
                    {
                        "region": region,
                        "cluster": cluster,
                        "year": year,
                        "employment": emp,
                        "establishments": rng.uniform(20, 80),
                        "entries": rng.uniform(1, 10),
                        "exits": rng.uniform(1, 10),
                        "payroll": emp * rng.uniform(30e3, 60e3),
                        "value_added": emp * rng.uniform(50e3, 90e3),
                        "output": emp * rng.uniform(150e3, 250e3),
                        "exports": emp * rng.uniform(10e3, 90e3),
                        "rd_expenditure": emp * rng.uniform(100, 3000),
                        "patents": rng.uniform(1, 20),
                        "top4_employment": emp * rng.uniform(0.1, 0.5),
                        "sme_employment": emp * rng.uniform(0.3, 0.9),
                        "hhi": rng.uniform(0.01, 0.2),
                        "institutions": rng.uniform(0.5, 5),
                    }
                )
    return pd.DataFrame(rows)


def _national(panel: pd.DataFrame) -> pd.DataFrame:
    """A national reference, so that the national wage stays what it was when payroll moves."""
    return (
        panel.groupby(["cluster", "year"], as_index=False)[["employment", "payroll"]]
        .sum()
        .assign(employment=lambda f: 3 * f["employment"], payroll=lambda f: 3 * f["payroll"])
    )


def _features(panel: pd.DataFrame, national: pd.DataFrame) -> pd.DataFrame:
    from features.build import build_features
    from features.lags import DEFAULT_LAGGED, DEFAULT_LAGS, add_lags, lag_names

    built = build_features(panel, national=national)
    return add_lags(built, lag_names(DEFAULT_LAGGED, DEFAULT_LAGS))


# lever -> the raw input it is moved through, and the factor applied to it
_THROUGH = {
    "productivity": ("value_added", 1.3),
    "relative_wage": ("payroll", 1.2),
    "entry_rate": ("entries", 1.5),
    "rd_intensity": ("rd_expenditure", 1.8),
    "patents_per_10k": ("patents", 1.6),
    "cr4": ("top4_employment", 0.8),
    "hhi": ("hhi", 0.7),
    "sme_share": ("sme_employment", 1.1),
    "export_intensity": ("exports", 1.25),
    "institutions_per_100_est": ("institutions", 2.0),
}


def test_every_actionable_feature_is_checked_against_the_builder():
    assert set(_THROUGH) == set(catalogue_levers())


@pytest.mark.parametrize("lever", sorted(_THROUGH))
def test_derived_features_follow_as_a_rebuild_does(lever):
    """Change the raw input of the last year, rebuild: ``move`` of the lever's level gives every
    feature (lags included) that the rebuild gives."""
    from features.build import FEATURE_NAMES
    from features.lags import lag_columns

    panel = _raw_panel()
    national = _national(panel)
    before = _features(panel, national)
    raw, factor = _THROUGH[lever]
    at = panel.index[(panel["region"] == "B") & (panel["cluster"] == "y") & (panel["year"] == 2015)]
    changed_panel = panel.copy()
    changed_panel.loc[at, raw] *= factor
    after = _features(changed_panel, national)

    names = [*FEATURE_NAMES, *lag_columns(before.columns)]
    column = {f: j for j, f in enumerate(names)}
    old = before.loc[at, names].to_numpy(dtype=float)
    new = after.loc[at, names].to_numpy(dtype=float)
    assert new[0, column[lever]] != pytest.approx(old[0, column[lever]])
    moved = move(old, column, lever, new[0, column[lever]])
    np.testing.assert_allclose(moved, new, rtol=1e-9, atol=1e-12, equal_nan=True)
    followed = [
        n for n in names if not np.isclose(old[0, column[n]], new[0, column[n]], equal_nan=True)
    ]
    assert sorted(followed) == sorted([lever, *derived_features(lever, names)])
    # other rows, including this cluster's earlier years, are untouched by the rebuild
    rest = before.index.difference(at)
    pd.testing.assert_frame_equal(before.loc[rest, names], after.loc[rest, names])


def test_move_values_by_hand():
    names = [
        "productivity",
        "productivity_cagr_1y",
        "productivity_cagr_3y",
        "va_share",
        "va_share_change_3y",
        "productivity_lag1",
        "entry_rate",
        "net_entry_rate",
    ]
    column = {f: j for j, f in enumerate(names)}
    row = np.array([[100.0, 0.1, 0.05, 0.4, 0.02, 90.0, 0.05, -0.01]])
    out = move(row, column, "productivity", 125.0)[0]
    assert out[0] == 125.0
    assert out[1] == pytest.approx(1.1 * 1.25 - 1)  # 0.375
    assert out[2] == pytest.approx(1.05 * 1.25 ** (1 / 3) - 1)
    assert out[3] == pytest.approx(0.5) and out[4] == pytest.approx(0.02 + 0.1)
    assert out[5] == 90.0  # a lag is last year's value
    out = move(row, column, "entry_rate", 0.08)[0]
    assert out[7] == pytest.approx(0.02) and out[0] == 100.0
    # a missing growth rate stays missing; the input is left as it was
    gap = row.copy()
    gap[0, 1] = np.nan
    assert np.isnan(move(gap, column, "productivity", 125.0)[0, 1])
    assert row[0, 0] == 100.0
    assert {d.feature for d in DERIVED["entry_rate"]} == {"net_entry_rate"}


def _growth_model():
    """A model whose stage follows productivity_cagr_1y alone: decline below 0, renewal above
    0.05; productivity itself carries no signal."""
    from models.bundle import ModelMeta, StageModel
    from models.estimators import StageClassifier

    rng = np.random.default_rng(8)
    n = 600
    X = pd.DataFrame(
        {
            "productivity": rng.uniform(50.0, 150.0, n),
            "productivity_cagr_1y": rng.uniform(-0.2, 0.3, n),
            "lq": rng.normal(size=n),
        }
    )
    y = np.where(
        X["productivity_cagr_1y"] < 0.0, 3, np.where(X["productivity_cagr_1y"] > 0.05, 4, 2)
    )
    clf = StageClassifier(tuning_budget=0, calibrate=False, n_estimators=30, n_jobs=1).fit(
        X, y, np.arange(n) % 3
    )
    meta = ModelMeta(features=list(X.columns), classes=[int(c) for c in clf.classes_])
    return StageModel(clf.booster, meta), X


def test_a_lever_on_a_level_acts_through_its_growth():
    """Raising productivity raises this year's productivity growth with it; the model sees that."""
    model, X = _growth_model()
    row = pd.DataFrame({"productivity": [60.0], "productivity_cagr_1y": [-0.1], "lq": [0.0]})
    (r,) = find_levers(model, row, X, ["productivity"], {"productivity": 1})
    assert (r.stage, r.target_stage) == ("decline", "renewal")
    assert r.reachable and [c.feature for c in r.changes] == ["productivity"]
    ratio = r.changes[0].to_value / 60.0
    # the growth needed to pass 0.05: 0.9 * ratio - 1 > 0.05, so productivity rises >= 17 %
    assert ratio > 1.05 / 0.9 - 0.02
    (d,) = r.derived[0]
    assert d == Change("productivity_cagr_1y", -0.1, pytest.approx(0.9 * ratio - 1))
    after = model.predict_frame(_apply(row, r.changes, model.meta.features))
    assert after.loc[0, "stage"] == "renewal"
    assert after.loc[0, "p_renewal"] == pytest.approx(r.p_target_after)
    assert "productivity_cagr_1y following" in r.reason


def test_a_lever_reports_the_runner_up_after_the_move(toy):
    model, X, _ = toy
    rows = X.iloc[:80].reset_index(drop=True)
    results = find_levers(model, rows, X, ACTIONABLE, UP)
    found = [(i, r) for i, r in enumerate(results) if r.reachable]
    assert found
    for i, r in found:
        after = model.predict_frame(_apply(rows.iloc[[i]], r.changes)).iloc[0]
        others = {s: after[f"p_{s}"] for s in STAGES if s != r.target_stage}
        runner_up = max(others, key=others.get)
        assert r.runner_up_after == runner_up
        assert r.p_runner_up_after == pytest.approx(others[runner_up])
        assert r.p_runner_up_after <= r.p_target_after
        assert f"runner-up {runner_up} {r.p_runner_up_after:.2f}" in r.reason
    unreached = [r for r in results if not r.reachable]
    assert all(r.runner_up_after is None for r in unreached if not r.changes)


# --- same-year comparative clusters ----------------------------------------------------------


def test_levers_are_bounded_by_the_clusters_of_their_year():
    model, _ = _rd_model()
    ref, years = _two_years()
    # 2000: -3.0..-1.05 (emerging, below the row); 2024: 0.05..1.415 (growth for _rd_model)
    rd = ref["rd_intensity"].to_numpy()
    ref["rd_intensity"] = np.where(years == 2000, (rd - 60.0) / 20.0, 0.05 + (rd - 100.0) * 0.035)
    row = pd.DataFrame({"rd_intensity": [-0.8], "entry_rate": [0.0], "lq": [0.0]})
    same_year = ref["rd_intensity"].to_numpy()[years == 2024]
    (r,) = find_levers(
        model, row, ref, ["rd_intensity"], {"rd_intensity": 1}, years=[2024], reference_years=years
    )
    assert r.reachable
    assert r.changes[0].to_value == pytest.approx(np.quantile(same_year, r.to_quantiles[0]))
    assert r.to_quantiles[0] == pytest.approx(0.05)  # the lowest same-year value already tips it
    iqr = np.subtract(*np.quantile(same_year, [0.75, 0.25]))
    assert r.cost == pytest.approx((r.changes[0].to_value + 0.8) / iqr)
    # pooled, P5 is a 2000 value below the row: the cheapest move is another grid point
    (pooled,) = find_levers(model, row, ref, ["rd_intensity"], {"rd_intensity": 1})
    pooled_q = np.quantile(ref["rd_intensity"], pooled.to_quantiles[0])
    assert pooled.changes[0].to_value == pytest.approx(pooled_q)
    assert pooled.to_quantiles[0] != r.to_quantiles[0]
    # with fewer same-year rows than min_year_rows, both years bound it, as pooled
    (wide,) = find_levers(
        model,
        row,
        ref,
        ["rd_intensity"],
        {"rd_intensity": 1},
        years=[2024],
        reference_years=years,
        min_year_rows=50,
    )
    assert wide.changes == pooled.changes and wide.to_quantiles == pooled.to_quantiles
    with pytest.raises(ValueError, match="both"):
        find_levers(model, row, ref, ["rd_intensity"], {}, years=[2024])


def test_a_lever_whose_derived_growth_no_comparative_cluster_shows_is_refused():
    """The same cluster as above, against comparative clusters whose productivity growth never
    exceeds 3 % a year: the +5 % the model needs lies beyond their P95, so there is no lever."""
    model, X = _growth_model()
    row = pd.DataFrame({"productivity": [60.0], "productivity_cagr_1y": [-0.1], "lq": [0.0]})
    tame = X.assign(productivity_cagr_1y=X["productivity_cagr_1y"] / 10)  # -0.02 .. 0.03
    (r,) = find_levers(model, row, tame, ["productivity"], {"productivity": 1})
    assert (r.stage, r.target_stage, r.reachable) == ("decline", "renewal", False)
    assert r.changes == []
    assert "staying within P5-P95 too" in r.reason
    # A cluster already outside the range may move back towards it, not past its other end.
    grid = _grid(model, tame, ["productivity"], {"productivity": 1}, QUANTILES)
    lo, hi = grid.bounds["productivity_cagr_1y"]
    j = grid.column["productivity_cagr_1y"]
    base = np.array([60.0, -0.1, 0.0])
    rows = np.repeat(base[None, :], 3, axis=0)
    rows[:, j] = [-0.05, hi, hi + 0.01]
    assert _within(grid, base, rows).tolist() == [True, True, False]
    assert lo > -0.1


def test_a_move_that_pushes_a_derived_feature_below_its_range_is_refused():
    # cr4 0.60 -> 0.30 in one year makes cr4_change_3y -0.30, below the comparative P5 of -0.05
    column = {"cr4": 0, "cr4_change_3y": 1}
    grid = _Grid(["cr4"], column, {}, {}, {}, {}, {}, {"cr4_change_3y": (-0.05, 0.05)})
    row = np.array([0.60, 0.0])
    moved = move(row, column, "cr4", 0.30)
    assert moved[0, 1] == pytest.approx(-0.30)
    assert _within(grid, row, moved).tolist() == [False]


def test_pairs_are_searched_among_the_features_that_came_closest():
    # one move per feature, none reaching the target (class 0); gaps a -3, b -1, c -2
    grid = _Grid(["a", "b", "c"], {"a": 0, "b": 1, "c": 2}, {}, {}, {}, {})
    one = (np.array([1.0]), np.array([0.5]), np.array([0.9]))
    search = _Search(0, 0, {"a": one, "b": one, "c": one}, np.zeros(3), grid)
    search.single_ok = np.ones(3, dtype=bool)
    margins = np.array([[0.0, 3.0], [0.0, 1.0], [0.0, 2.0]])
    search.take_singles(margins, pair_features=2)
    assert {(f, g) for f, _, g, _ in search.cand} == {("b", "c")}
