"""The score table (models.scoring).

``small_panel`` and ``small_model`` build a made-up panel and a small model on its features; the
pipeline and pyfunc tests import them.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_NAMES, build_features
from features.errors import InputError
from features.row_checks import ERROR, ROW
from features.stages import STAGES
from models.bundle import (
    ModelMeta,
    StageModel,
    feature_quantiles,
    feature_ranges,
    year_quantiles,
)
from models.dataset import model_features
from models.estimators import StageClassifier
from models.explain import contributions, percentile_among, top_drivers
from models.scoring import (
    DRIVER_FIELDS,
    conform,
    driver_columns,
    output_columns,
    percentiles,
    range_bounds,
    score_features,
    score_rows,
)
from policy.knowledge_base import load_knowledge_base

YEARS = range(2010, 2020)


def small_panel(seed: int = 0, n_regions: int = 6, n_clusters: int = 5) -> pd.DataFrame:
    """Regions x clusters x years with growth trends, every optional panel number, no gaps."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_regions):
        for c in range(n_clusters):
            level = rng.lognormal(7, 1)
            trend = rng.normal(0, 0.06)
            size = rng.uniform(5, 60)
            wage = rng.uniform(20e3, 60e3)
            for year in YEARS:
                level *= np.exp(rng.normal(trend, 0.05))
                emp = round(level)
                est = max(1, round(emp / size))
                rows.append(
                    {
                        "region": f"Region {r}",
                        "cluster": f"Cluster {c}",
                        "year": year,
                        "employment": float(emp),
                        "establishments": est,
                        "payroll": emp * wage * rng.uniform(0.9, 1.1),
                        "output": emp * wage * rng.uniform(2, 4),
                        "value_added": emp * wage * rng.uniform(0.8, 1.5),
                        "exports": emp * wage * rng.uniform(0, 2),
                        "rd_expenditure": emp * wage * rng.uniform(0, 0.1),
                        "patents": float(rng.poisson(emp / 500)),
                        "entries": float(rng.poisson(est * 0.1)),
                        "exits": float(rng.poisson(est * 0.08)),
                        "sme_employment": emp * rng.uniform(0.3, 1.0),
                        "top4_employment": emp * rng.uniform(0.1, 0.6),
                        "institutions": float(rng.poisson(3)),
                    }
                )
    panel = pd.DataFrame(rows)
    totals = panel.groupby(["region", "year"])["employment"].transform("sum")
    panel["region_employment_total"] = (totals * 4).round()
    return panel


def small_labels(features: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Stages from growth and specialisation with noise, every stage present."""
    rng = np.random.default_rng(seed)
    score = (
        features["emp_cagr_1y"].fillna(0).to_numpy()
        + 0.05 * np.log(features["lq"].to_numpy())
        + rng.normal(0, 0.02, len(features))
    )
    return np.digitize(score, np.quantile(score, [0.2, 0.4, 0.6, 0.8]))


def small_model(panel: pd.DataFrame, seed: int = 0) -> StageModel:
    features = build_features(panel)
    names = model_features(features, FEATURE_NAMES)
    X = features[names].astype("float64")
    y = small_labels(features, seed)
    # 128 bins: the model the expected stages, drivers and messages of the tests were read from
    clf = StageClassifier(
        n_estimators=25,
        max_depth=3,
        max_bin=128,
        tuning_budget=0,
        calibrate=False,
        seed=seed,
        n_jobs=1,
    )
    clf.fit(X, y, features["region"].to_numpy())
    meta = ModelMeta(
        features=names,
        classes=[int(c) for c in clf.classes_],
        temperature=1.3,
        ranges=feature_ranges(X),
        quantiles=feature_quantiles(X),
        max_missing=int(X.isna().sum(axis=1).max()),
    )
    return StageModel(clf.booster, meta)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return small_panel()


@pytest.fixture(scope="module")
def model(panel) -> StageModel:
    return small_model(panel)


@pytest.fixture(scope="module")
def kb():
    return load_knowledge_base()


# --- the score table --------------------------------------------------------------------------


def test_scores_are_the_models_and_drivers_its_exact_treeshap(panel, model, kb):
    features = build_features(panel)
    scored = score_features(features, model, top_k=3, kb=kb)
    np.testing.assert_allclose(
        scored[[f"p_{s}" for s in STAGES]].to_numpy(), model.predict_proba(features), atol=1e-6
    )
    assert scored["stage"].tolist() == model.predict_frame(features)["stage"].tolist()
    X = model.matrix(features)
    expected = top_drivers(contributions(model, X), X, X, k=3)
    for i in (0, 17, 123, len(features) - 1):
        for j, driver in enumerate(expected[i], start=1):
            assert scored.at[i, f"driver_{j}_feature"] == driver["feature"]
            assert scored.at[i, f"driver_{j}_contribution"] == pytest.approx(
                driver["contribution"], abs=1e-5
            )
            value = scored.at[i, f"driver_{j}_value"]
            assert (np.isnan(value) and driver["value"] is None) or value == driver["value"]
    assert (scored["n_missing_features"] == X.isna().sum(axis=1)).all()
    # Every recommended instrument fits the row's stage.
    for stage, recs in zip(scored["stage"], scored["recommendations"], strict=True):
        ids = recs.split(";")
        assert len(ids) == 6 and all(kb[i].fits(stage) for i in ids)


def test_percentiles_rank_a_row_among_the_clusters_of_its_year():
    meta = ModelMeta(
        features=["wage", "lq"],
        classes=[0, 1, 2, 3, 4],
        quantiles={"wage": np.linspace(0.0, 200.0, 101).tolist()},
        year_quantiles={
            "2010": {"wage": np.linspace(0.0, 100.0, 101).tolist()},
            "2020": {"wage": np.linspace(100.0, 200.0, 101).tolist()},
        },
    )
    model = StageModel(None, meta)  # percentiles read the metadata only
    values = np.tile([50.0, 1.0], (5, 1))
    # own year; a later year; after the last training year; as near to both (the earlier);
    # no year (pooled)
    years = np.array([2010, 2020, 2030, 2015, np.nan])
    got = percentiles(model, values, years)
    # (a grid of 101 points counts a tie half: 50 in 0..200 is P25.2)
    np.testing.assert_allclose(got[:, 0], [50.0, 0.0, 0.0, 50.0, 25.0], atol=0.25)
    assert np.isnan(got[:, 1]).all()  # no grid for lq
    np.testing.assert_allclose(percentiles(model, values)[:, 0], 25.0, atol=0.25)
    # only the features a row shows: the same numbers, gathered
    columns = np.array([[1, 0], [0, 0], [0, 1], [1, 1], [0, 1]])
    np.testing.assert_array_equal(
        percentiles(model, values, years, columns=columns),
        np.take_along_axis(got, columns, axis=1),
    )
    assert percentiles(model, values[:0], years[:0], columns=columns[:0]).shape == (0, 2)
    model.meta.year_quantiles = {}
    np.testing.assert_allclose(percentiles(model, values, years)[:, 0], 25.0, atol=0.25)


def test_score_gives_each_drivers_percentile_among_its_years_clusters(panel, model, kb):
    features = build_features(panel)
    X = model.matrix(features)
    years = features["year"].to_numpy()
    grids = year_quantiles(X, years)
    by_year = StageModel(model.booster, replace(model.meta, year_quantiles=grids))
    scored = score_features(features, by_year, top_k=2, kb=kb)
    pooled = score_features(features, model, top_k=2, kb=kb)
    checked = 0
    for i in (3, 57, 158, len(features) - 1):
        for j in (1, 2):
            feature = scored.at[i, f"driver_{j}_feature"]
            if feature is None or np.isnan(X.at[i, feature]):
                continue
            same_year = X.loc[years == years[i], feature].to_numpy()
            exact = percentile_among(np.array([X.at[i, feature]]), same_year)[0]
            assert scored.at[i, f"driver_{j}_percentile"] == pytest.approx(exact, abs=3.0)
            grid = np.asarray(model.meta.quantiles[feature])
            assert pooled.at[i, f"driver_{j}_percentile"] == pytest.approx(
                percentile_among(np.array([X.at[i, feature]]), grid)[0]
            )
            checked += 1
    assert checked >= 4
    # same drivers either way; the percentiles differ where a level drifts over the years
    assert scored["driver_1_feature"].equals(pooled["driver_1_feature"])
    assert (scored["driver_1_percentile"] - pooled["driver_1_percentile"]).abs().max() > 5


def test_values_far_outside_the_training_range_are_flagged(panel, model, kb):
    features = build_features(panel).head(3).copy()
    low, high = range_bounds(model)
    j = model.meta.features.index("avg_firm_size")
    p1, p99 = model.meta.ranges["avg_firm_size"]
    assert (
        high[j] >= p99 + 0.5 * (p99 - p1) and high[j] >= model.meta.quantiles["avg_firm_size"][-1]
    )
    features.loc[0, "avg_firm_size"] = high[j] * 10
    features.loc[1, "avg_firm_size"] = model.meta.quantiles["avg_firm_size"][-1]  # the max seen
    features.loc[2, "avg_firm_size"] = np.nan
    scored = score_features(features, model, kb=kb)
    assert bool(scored["out_of_range"].iloc[0])
    assert "avg_firm_size" in scored["out_of_range_features"].iloc[0].split(";")
    for i in (1, 2):
        assert "avg_firm_size" not in scored["out_of_range_features"].iloc[i].split(";")
    # Training rows themselves are almost never flagged.
    every = score_features(build_features(panel), model, kb=kb)
    assert every["out_of_range"].mean() < 0.01


def test_rows_missing_more_features_than_any_training_row_are_flagged(panel, model, kb):
    features = build_features(panel).head(2).copy()
    sparse = [f for f in model.meta.features if f not in {"lq", "avg_firm_size"}]
    features.loc[1, sparse] = np.nan  # a cross-section without history, say
    scored = score_features(features, model, kb=kb)
    assert scored["n_missing_features"].iloc[1] > model.meta.max_missing
    assert bool(scored["out_of_range"].iloc[1])
    assert scored["out_of_range_features"].iloc[1].split(";")[0] == "n_missing_features"
    assert "n_missing_features" not in scored["out_of_range_features"].iloc[0]


def test_every_input_row_comes_back_in_order(panel, model, kb):
    frame = panel.head(40).astype(str).copy()
    frame.loc[3, "employment"] = "n/a?"
    frame.loc[5, "cluster"] = ""
    table = score_rows(frame, model, kb=kb)
    assert list(table.columns) == output_columns(3)
    assert table[ROW].tolist() == list(range(1, 41))
    failed = table[table[ERROR].notna()]
    # Rows 1, 11, 21 and 31 open a cluster's history: no change known, so no stage either.
    assert failed[ROW].tolist() == [1, 4, 6, 11, 21, 31]
    assert failed["error"].tolist()[1:3] == [
        "column 'employment': expected a number, found 'n/a?'",
        "column 'cluster': expected a value, found an empty cell",
    ]
    assert failed["stage"].isna().all() and failed["p_growth"].isna().all()
    assert table.loc[table[ERROR].isna(), "stage"].isin(STAGES).all()


def test_the_table_types_do_not_depend_on_its_rows():
    empty = conform(pd.DataFrame(), 2)
    one = conform(pd.DataFrame({"row": [1], "region": ["A"], "error": ["bad"]}), 2)
    assert list(empty.dtypes.astype(str)) == list(one.dtypes.astype(str))
    assert str(one["out_of_range"].dtype) == "boolean" and pd.isna(one["stage"].iloc[0])


def test_a_model_with_lagged_features_gets_them_computed_when_scoring(panel, kb):
    from features.lags import add_lags, lag_names

    lags = lag_names(["emp_cagr_1y", "entry_rate"], 2)
    features = add_lags(build_features(panel), lags)
    names = [*model_features(features, FEATURE_NAMES), *lags]
    X = features[names].astype("float64")
    clf = StageClassifier(n_estimators=15, max_depth=3, tuning_budget=0, calibrate=False)
    clf.fit(X, small_labels(features), features["region"].to_numpy())
    meta = ModelMeta(features=names, classes=[int(c) for c in clf.classes_], temperature=1.0)
    lagged = StageModel(clf.booster, meta)
    scored = score_rows(panel, lagged, top_k=3, kb=kb)
    staged = (features["year"] > min(YEARS)).to_numpy()  # the first year has no change known
    np.testing.assert_allclose(
        scored.loc[staged, [f"p_{s}" for s in STAGES]].to_numpy(),
        lagged.predict_proba(features[staged]),
        atol=1e-6,
    )
    # The second years have no lag of their growth; the model sees it as missing, as in training.
    second = (features["year"] == min(YEARS) + 1).to_numpy()
    assert scored.loc[second, "n_missing_features"].min() >= 2


def test_a_large_top_k_builds_the_table_without_fragmenting_it(panel, model, kb):
    with warnings.catch_warnings():
        # pandas warns once per column added past the hundredth to a fragmented frame.
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        wide = score_rows(panel, model, top_k=100, kb=kb)
    narrow = score_rows(panel, model, top_k=3, kb=kb)
    assert list(wide.columns) == output_columns(100)
    # The same scores and first drivers (recommendations weigh every driver, so they may differ).
    same = [c for c in narrow.columns if c != "recommendations"]
    pd.testing.assert_frame_equal(wide[same], narrow[same])
    assert wide["driver_10_feature"].notna().any()
    # Past the model's features there can be no more drivers: those columns are empty.
    n = len(model.meta.features)
    assert n < 100 and wide[driver_columns(100)[len(DRIVER_FIELDS) * n :]].isna().all().all()


NO_CHANGE = "no year-on-year change known (needs the year before): cannot judge a stage"
PROBAS = [f"p_{s}" for s in STAGES]


def test_a_row_without_any_change_known_gets_no_stage(panel, model, kb):
    table = score_rows(panel, model, kb=kb)
    assert table[ROW].tolist() == list(range(1, len(panel) + 1))
    assert table["region"].tolist() == panel["region"].tolist()
    assert table["year"].tolist() == panel["year"].tolist()
    first = (panel["year"] == min(YEARS)).to_numpy()
    assert first.sum() == 30
    unscored = table[first]
    assert (unscored[ERROR] == NO_CHANGE).all()
    empty = ["stage", *PROBAS, "driver_1_feature", "recommendations", "n_missing_features"]
    assert unscored[empty].isna().all().all() and unscored["out_of_range"].isna().all()
    # Every other row is scored as before: the model's own probabilities for its features.
    features = build_features(panel)
    assert table.loc[~first, ERROR].isna().all()
    np.testing.assert_allclose(
        table.loc[~first, PROBAS].to_numpy(dtype=float),
        model.predict_proba(features[~first]),
        atol=1e-6,
    )


def test_some_change_known_is_enough_for_a_stage(panel, model, kb):
    # Region 0's Cluster 0 misses 2014: its 2015 has no one-year change, but a three-year one.
    hole = (panel["region"] == "Region 0") & (panel["cluster"] == "Cluster 0")
    rows = panel[~(hole & (panel["year"] == 2014))].reset_index(drop=True)
    after = (
        (rows["region"] == "Region 0") & (rows["cluster"] == "Cluster 0") & (rows["year"] == 2015)
    ).to_numpy()
    features = build_features(rows)
    assert features.loc[after, "emp_cagr_1y"].isna().all()
    assert features.loc[after, "emp_cagr_3y"].notna().all()
    table = score_rows(rows, model, kb=kb)
    assert table.loc[after, "stage"].isin(STAGES).all() and table.loc[after, ERROR].isna().all()
    assert (table[ERROR] == NO_CHANGE).sum() == 30  # only the first years


def test_a_one_year_input_stages_nothing(panel, model, kb):
    one_year = panel[panel["year"] == 2015].reset_index(drop=True)
    table = score_rows(one_year, model, kb=kb)
    assert len(table) == len(one_year) == 30
    assert (table[ERROR] == NO_CHANGE).all()
    assert table[["stage", *PROBAS, "recommendations"]].isna().all().all()
    assert table["region"].tolist() == one_year["region"].tolist()


def test_in_memory_rows_need_a_total_for_every_region_year_or_none(panel, model, kb):
    clusters = panel.drop(columns="region_employment_total")
    region_0 = clusters[clusters["region"] == "Region 0"]
    totals = region_0.groupby(["region", "year"], as_index=False)[
        ["employment", "establishments"]
    ].sum()
    with_totals = pd.concat([clusters, totals.assign(cluster="Insgesamt")], ignore_index=True)
    with pytest.raises(InputError, match="no total row for region 'Region 1' in 2010"):
        score_rows(with_totals, model, kb=kb)
    # without any total row, region totals are the sums of the clusters
    assert score_rows(clusters, model, kb=kb)["stage"].notna().any()


@pytest.mark.parametrize("n_features", [0, 5, 62, 63, 130])
def test_flag_lists_name_each_rows_true_columns_in_order(n_features):
    from models.scoring import _joined_flags

    rng = np.random.default_rng(3)
    labels = np.array([f"f{j}" for j in range(n_features)], dtype=object)
    flags = rng.random((200, n_features)) < 0.02
    flags[:5] = False  # rows sharing a pattern
    if n_features:
        flags[5, -1] = flags[6, 0] = True  # a last and a first column on their own
    got = _joined_flags(flags, labels)
    want = [";".join(labels[row]) for row in flags]
    assert got.tolist() == want
    assert _joined_flags(flags[:0], labels).tolist() == []
