"""The explain stage's tables on small frames and models built here: same-year comparative
clusters, coherent levers and their margin."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.stages import STAGES
from models.explain import percentile_among
from models.explanations import comparative_rows, explanation_table, latest_flags, lever_table
from tests.models.test_levers import _growth_model, _rd_model

TARGET = "Target"


def _two_year_reference(n_2024: int) -> pd.DataFrame:
    """40 comparative rows of 2000 (rd_intensity -3.0..-1.05) and ``n_2024`` of 2024 (0.05 up)."""
    old = pd.DataFrame({"rd_intensity": -3.0 + 0.05 * np.arange(40.0), "year": 2000})
    new = pd.DataFrame({"rd_intensity": 0.05 + 0.035 * np.arange(float(n_2024)), "year": 2024})
    return pd.concat([old, new], ignore_index=True).assign(entry_rate=0.0, lq=0.0)


def test_driver_percentiles_are_among_the_same_year():
    model, _ = _rd_model()
    rows = pd.DataFrame(
        {
            "region": TARGET,
            "cluster": "c0",
            "year": [2024],
            "rd_intensity": [0.5],
            "entry_rate": [0.0],
        }
    ).assign(lq=0.0)
    for n_2024, among in ((40, "same year"), (10, "both years")):
        reference = _two_year_reference(n_2024)
        (cell,) = explanation_table(model, rows, reference, top_k=1)["drivers"]
        (driver,) = json.loads(cell)
        assert driver["feature"] == "rd_intensity"
        pool = reference["rd_intensity"]
        if among == "same year":
            pool = pool[reference["year"] == 2024]
        assert driver["percentile"] == pytest.approx(percentile_among(np.array([0.5]), pool)[0])
    # 0.5 is above 13 of 2024's 40 clusters: P32.5 (pooled with 2000's it would be P66.25)
    (cell,) = explanation_table(model, rows, _two_year_reference(40), top_k=1)["drivers"]
    assert json.loads(cell)[0]["percentile"] == pytest.approx(32.5)
    # 10 rows of 2024 are too few: the window widens to 2000, and 0.5 is above all 50
    (cell,) = explanation_table(model, rows, _two_year_reference(10), top_k=1)["drivers"]
    assert json.loads(cell)[0]["percentile"] == pytest.approx(100.0)


def test_lever_table_moves_derived_features_and_shows_the_runner_up():
    model, X = _growth_model()
    reference = X.assign(year=np.where(np.arange(len(X)) % 2 == 0, 2023, 2024))
    rows = pd.DataFrame(
        {
            "region": TARGET,
            "cluster": ["c0", "c0"],
            "year": [2023, 2024],
            "productivity": [55.0, 60.0],
            "productivity_cagr_1y": [0.0, -0.1],
            "lq": [0.0, 0.0],
        }
    )
    table = lever_table(model, rows, reference, pair_features=2, actionable={"productivity": 1})
    (lever,) = table.itertuples(index=False)
    assert (lever.year, lever.stage, lever.target_stage, lever.reachable) == (
        2024,
        "decline",
        "renewal",
        True,
    )
    (change,) = json.loads(lever.changes)
    ratio = change["to"] / change["from"]
    (derived,) = change["derived"]
    assert derived["feature"] == "productivity_cagr_1y" and derived["from"] == -0.1
    assert derived["to"] == pytest.approx(0.9 * ratio - 1)
    changed = rows.iloc[[1]].assign(productivity=change["to"], productivity_cagr_1y=derived["to"])
    after = model.predict_frame(changed).iloc[0]
    assert after["stage"] == lever.predicted_after == "renewal"
    assert lever.p_target_after == pytest.approx(after["p_renewal"])
    runner_up = max(("emerging", "growth", "mature", "decline"), key=lambda s: after[f"p_{s}"])
    assert lever.runner_up_after == runner_up
    assert lever.p_runner_up_after == pytest.approx(after[f"p_{runner_up}"])
    # bounded by 2024's comparative clusters (more than MIN_YEAR_ROWS of them)
    same_year = reference.loc[reference["year"] == 2024, "productivity"]
    q = change["to_percentile"] / 100
    assert change["to"] == pytest.approx(np.quantile(same_year, q))


def _regions() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of three clusters x three years in regions A, B and the target, rows shuffled,
    and a label for every row."""
    rng = np.random.default_rng(4)
    keys = [
        (r, f"c{c}", y) for r in ("B", TARGET, "A") for c in range(3) for y in (2012, 2010, 2011)
    ]
    features = pd.DataFrame(keys, columns=["region", "cluster", "year"])
    for f in ("rd_intensity", "entry_rate", "lq", "unused"):
        features[f] = rng.normal(size=len(features))
    features = features.sample(frac=1.0, random_state=1).reset_index(drop=True)
    labels = features[["region", "cluster", "year"]].assign(
        stage=[STAGES[i % 3] for i in range(len(features))]
    )
    return features, labels


def test_comparative_rows_carry_their_year():
    model, _ = _rd_model()
    features, labels = _regions()
    ref = comparative_rows(features, labels, model, TARGET)
    assert list(ref.columns) == [*model.meta.features, "year"]
    expected = features[features["region"] != TARGET].sort_values(["region", "cluster", "year"])
    assert ref["year"].tolist() == expected["year"].tolist()
    pd.testing.assert_frame_equal(model.matrix(ref), model.matrix(expected).reset_index(drop=True))


def test_latest_flags_mark_each_clusters_latest_year():
    rows = pd.DataFrame(
        {
            "region": ["A", "A", "A", "B", "B"],
            "cluster": ["x", "x", "y", "x", "x"],
            "year": [2021, 2023, 2020, 2023, 2022],
        }
    )
    assert latest_flags(rows).tolist() == [False, True, True, True, False]
