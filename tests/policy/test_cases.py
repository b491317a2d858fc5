"""Reading the explain stage's tables back as cluster cases, on frames built in the tests."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from policy.cases import cell_records, cluster_cases, optional_text
from tests.policy.helpers import REGION, explanations_frame, features_frame, levers_frame


def test_cells_of_json_text_or_nested_records_become_lists_of_dicts() -> None:
    record = {"feature": "lq", "from": 0.5, "to": 1.0}
    assert cell_records(json.dumps([record]), "x.parquet", "changes", 1) == [record]
    # as Parquet reads a list-of-struct column back: an array of dicts
    assert cell_records(np.array([record], dtype=object), None, "changes", 1) == [record]
    assert cell_records(record, None, "changes", 1) == [record]
    assert cell_records([("lq", 0.5, 1.0)], None, "changes", 1) == [record]
    for empty in (None, math.nan, "", "  ", "[]"):
        assert cell_records(empty, None, "changes", 1) == []


def test_a_bad_cell_is_named_by_file_column_and_row() -> None:
    with pytest.raises(InputError) as info:
        cell_records("{not json", "reports/x.parquet", "drivers", 3)
    assert str(info.value) == "reports/x.parquet, column 'drivers', row 3: expected JSON text"
    for bad in (5, "[1, 2]", ["lq"]):
        with pytest.raises(InputError) as info:
            cell_records(bad, None, "changes", None)
        assert str(info.value) == "column 'changes': expected a list of records"


def test_optional_text_is_none_for_missing_cells() -> None:
    assert [optional_text(v) for v in (None, math.nan, pd.NA)] == [None, None, None]
    assert optional_text(3) == "3" and optional_text("growth") == "growth"


def test_errors_name_the_source_file_where_given() -> None:
    explanations, levers, features = explanations_frame(), levers_frame(), features_frame()
    with pytest.raises(InputError) as info:
        cluster_cases(explanations, levers, features, "Atlantis")
    assert str(info.value) == "column 'region': no rows for region 'Atlantis'"
    sources = {"explanations": "reports/explanations.parquet"}
    with pytest.raises(InputError) as info:
        cluster_cases(explanations, levers, features, "Atlantis", sources=sources)
    assert str(info.value) == (
        "reports/explanations.parquet, column 'region': no rows for region 'Atlantis'"
    )


def test_each_case_is_the_clusters_latest_year_with_its_values_and_levers() -> None:
    cases = cluster_cases(explanations_frame(), levers_frame(), features_frame(), REGION)
    assert [(c.cluster, c.year, c.stage) for c in cases] == [
        ("footwear", 2024, "decline"),
        ("eyeglasses", 2024, "mature"),
        ("drones", 2024, "emerging"),
        ("pumps", 2024, "growth"),
    ]
    footwear = cases[0]
    assert footwear.probabilities["decline"] == pytest.approx(0.55)
    assert [d.feature for d in footwear.drivers] == ["exit_rate", "rd_intensity", "productivity"]
    assert footwear.levers is not None and footwear.levers.reachable
    assert footwear.levers.runner_up_after == "decline"
    assert cases[1].levers is not None and not cases[1].levers.reachable
    assert cases[1].levers.target_stage is None
    no_levers = cluster_cases(explanations_frame(), None, features_frame(), REGION)
    assert all(c.levers is None for c in no_levers)


def test_long_format_drivers_and_tuple_changes_are_read() -> None:
    wide = explanations_frame()
    long_rows = []
    for record in wide.to_dict("records"):
        for rank, driver in enumerate(json.loads(record.pop("drivers")), start=1):
            driver.pop("stage")
            long_rows.append({**record, **driver, "rank": rank})
    levers = levers_frame()
    levers["changes"] = [[("patents_per_10k", 0.5, 2.0)], [], [], []]
    cases = cluster_cases(pd.DataFrame(long_rows), levers, features_frame(), REGION)
    footwear = cases[0]
    assert [d.feature for d in footwear.drivers] == ["exit_rate", "rd_intensity", "productivity"]
    assert footwear.levers is not None and footwear.levers.changes[0].to_value == 2.0
    assert footwear.value("sme_share") == 0.85 and footwear.value("rd_intensity") is None


def test_reads_what_the_explain_stage_writes() -> None:
    """A small real model through models.explanations' tables, then into the recommender."""
    explain = pytest.importorskip("models.explanations")
    import numpy as np
    import xgboost as xgb

    from models.bundle import ModelMeta, StageModel
    from policy.guards import apply_guards, holds
    from policy.knowledge_base import load_knowledge_base
    from policy.recommender import build_portfolio

    names = ["rd_intensity", "entry_rate", "productivity", "exit_rate", "sme_share"]
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.random((300, len(names))), columns=names)
    score = X["rd_intensity"] + X["entry_rate"] - X["exit_rate"] + 0.2 * rng.normal(size=300)
    y = np.digitize(score, np.quantile(score, [0.2, 0.4, 0.6, 0.8]))
    # The booster kind the StageModel wraps (multi:softprob), kept small and single-threaded.
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 5, "max_depth": 3, "nthread": 1, "seed": 5},
        xgb.DMatrix(X, label=y),
        num_boost_round=30,
    )
    model = StageModel(booster, ModelMeta(names, [0, 1, 2, 3, 4]))

    clusters = [f"c{i:02d}" for i in range(20)]
    rows = X.iloc[:40].copy()
    rows.insert(0, "year", [2023, 2024] * 20)
    rows.insert(0, "cluster", np.repeat(clusters, 2))
    rows.insert(0, "region", REGION)
    explanations = explain.explanation_table(model, rows, X, top_k=3)
    levers = explain.lever_table(
        model, rows, X, pair_features=2, actionable={"rd_intensity": 1, "entry_rate": 1}
    )
    cases = cluster_cases(explanations, levers, rows, REGION)
    assert [(c.cluster, c.year) for c in cases] == [(k, 2024) for k in clusters]
    predicted = model.predict_frame(rows.iloc[1::2])["stage"].tolist()
    assert [c.stage for c in cases] == predicted
    for case, (_, lever) in zip(cases, levers.iterrows(), strict=True):
        assert 1 <= len(case.drivers) <= 3
        assert all(d.feature in names and d.percentile is not None for d in case.drivers)
        assert case.levers is not None and case.levers.reachable == bool(lever["reachable"])
        if case.levers.reachable:
            assert [c.feature for c in case.levers.changes] == [
                c["feature"] for c in json.loads(lever["changes"])
            ]
        assert case.value("productivity") == pytest.approx(
            rows.loc[
                (rows["cluster"] == case.cluster) & (rows["year"] == 2024), "productivity"
            ].iloc[0]
        )
    portfolio = build_portfolio(REGION, cases, load_knowledge_base(), k=6)
    repaired, results = apply_guards(portfolio)
    final = holds(repaired)
    assert all(final[r.name] or r.notes for r in results)
    assert any(c.levers is not None and c.levers.reachable for c in cases)
