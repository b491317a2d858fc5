"""The recommend stage's records and portfolio summary, built from cases made in the tests."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from policy.cases import cluster_cases
from policy.guards import GuardConfig
from policy.knowledge_base import ASPECTS, load_knowledge_base
from policy.recommender import ClusterCase, Driver, Scoring, build_portfolio
from policy.records import cluster_record, json_safe, recommend_region
from tests.policy.helpers import REGION, explanations_frame, features_frame, levers_frame


def test_json_safe_turns_non_finite_numbers_into_null() -> None:
    value = {1: [math.nan, 1.5, (math.inf, "x")], "b": {"c": -math.inf}}
    assert json_safe(value) == {"1": [None, 1.5, [None, "x"]], "b": {"c": None}}


def test_a_region_gets_one_record_per_case_and_its_portfolio() -> None:
    cases = cluster_cases(explanations_frame(), levers_frame(), features_frame(), REGION)
    records, summary = recommend_region(
        REGION,
        cases,
        load_knowledge_base(),
        k=6,
        scoring=Scoring(),
        guards=GuardConfig(),
        synthetic=False,
    )
    assert [r["cluster"] for r in records] == [c.cluster for c in cases]
    assert all(r["synthetic"] is False for r in records)
    assert records[0]["levers"] == [
        {"feature": "patents_per_10k", "from": 0.5, "to": 2.0, "predicted_stage_after": "renewal"}
    ]
    assert records[1]["lever_note"] == "decline is not likely: no lever target for a mature cluster"
    assert summary["synthetic"] is False
    assert summary["knowledge_base"] == "policy/instruments.yaml"
    region = summary["regions"][REGION]
    assert region["clusters"] == 4
    assert set(region["guards"]) == {
        "governance_in_vain", "big_enterprise_only", "strong_over_weak", "unbalanced_support"
    }  # fmt: skip
    assert sum(region["count_by_aspect"].values()) == region["recommendations"]
    assert region["recommendations"] == sum(len(r["recommendations"]) for r in records)
    assert set(region["share_by_aspect"]) == set(ASPECTS)


def test_each_line_names_the_runner_up_and_the_caveats_in_words() -> None:
    kb = load_knowledge_base()
    torn = ClusterCase(
        REGION, "auto parts", 2024, "mature",
        {"emerging": 0.01, "growth": 0.05, "mature": 0.57, "decline": 0.36, "renewal": 0.01},
    )  # fmt: skip
    sparse = ClusterCase(
        REGION, "apparel", 2024, "renewal",
        {"emerging": 0.02, "growth": 0.02, "mature": 0.02, "decline": 0.02, "renewal": 0.92},
        drivers=(
            Driver("va_share", None, None, 0.8, "towards"),
            Driver("exit_rate", None, None, 0.5, "towards"),
            Driver("entry_rate", 0.05, 30.0, 0.4, "towards"),
        ),
    )  # fmt: skip
    sure = replace(torn, cluster="valves", probabilities={"mature": 0.9, "decline": 0.1})
    portfolio = build_portfolio(REGION, [torn, sparse, sure], kb)
    lines = {c.cluster: cluster_record(c, portfolio, True) for c in (torn, sparse, sure)}
    assert lines["auto parts"]["runner_up"] == "decline"
    assert lines["auto parts"]["p_runner_up"] == pytest.approx(0.36)
    assert lines["auto parts"]["caveats"] == [
        "the model is torn between mature (0.57) and decline (0.36): measures that fit both are "
        "preferred; check the stage against next year's data before committing to "
        "stage-specific measures"
    ]
    # Measures that fit decline as well come first among the stage defaults.
    recs = lines["auto parts"]["recommendations"]
    assert kb[recs[0]["id"]].fits("decline")
    assert lines["apparel"]["caveats"] == [
        "the stage rests mostly on values missing for this cluster (va_share, exit_rate): treat "
        "it as provisional until they are collected; no heavy measures"
    ]
    assert lines["valves"]["caveats"] == []
    assert lines["valves"]["runner_up"] == "decline"
