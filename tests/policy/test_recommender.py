from __future__ import annotations

import math

import pytest

from policy.knowledge_base import load_knowledge_base
from policy.recommender import (
    Driver,
    LeverChange,
    Levers,
    Scoring,
    build_portfolio,
    rank_instruments,
    recommend,
    score_instrument,
)
from tests.policy.helpers import case, instrument, kb

DRIVERS = (
    Driver("exit_rate", 0.12, 91.0, 0.6, "towards"),
    Driver("rd_intensity", 0.001, 12.0, -0.3, "away from"),
    Driver("productivity", 40.0, 50.0, 0.1, "towards"),
)


def test_driver_fit_is_the_matched_share_of_contribution() -> None:
    inst = instrument(
        "exit_help",
        stages=("decline",),
        triggers=(("exit_rate", "high"), ("rd_intensity", "low"), ("productivity", "low")),
    )
    score, because = score_instrument(inst, case(stage="decline", drivers=DRIVERS))
    # exit_rate (P91 >= 60) and rd_intensity (P12 <= 40) match; productivity at P50 does not.
    assert score == pytest.approx(1.0 + (0.6 + 0.3) / 1.0)
    assert because == (
        "top driver exit_rate is high (P91 among comparative clusters; pushes towards decline)"
    )


def test_a_lagged_driver_matches_the_trigger_of_its_feature() -> None:
    inst = instrument("exit_help", stages=("decline",), triggers=(("exit_rate", "high"),))
    drivers = (
        Driver("exit_rate_lag2", 0.12, 88.0, 0.4, "towards"),
        Driver("exit_rate_late", 0.12, 88.0, 0.6, "towards"),  # not a lag: no match
    )
    score, because = score_instrument(inst, case(stage="decline", drivers=drivers))
    assert score == pytest.approx(1.0 + 0.4 / 1.0)
    assert because.startswith("top driver exit_rate_lag2 is high (P88")


def test_trigger_direction_and_thresholds() -> None:
    high = instrument("h", stages=("decline",), triggers=(("productivity", "high"),))
    low = instrument("l", stages=("decline",), triggers=(("productivity", "low"),))
    for pct, high_fit, low_fit in [(60.0, 1, 0), (59.9, 0, 0), (40.0, 0, 1), (40.1, 0, 0)]:
        drivers = (Driver("productivity", 1.0, pct, -0.5, "away from"),)
        c = case(stage="decline", drivers=drivers)
        assert score_instrument(high, c)[0] == pytest.approx(1 + high_fit), pct
        assert score_instrument(low, c)[0] == pytest.approx(1 + low_fit), pct
    missing = case(stage="decline", drivers=(Driver("productivity", None, None, 0.5, "towards"),))
    assert score_instrument(low, missing)[0] == 1.0
    strict = Scoring(high_percentile=95.0)
    c = case(stage="decline", drivers=(Driver("productivity", 1.0, 91.0, 0.5, "towards"),))
    assert score_instrument(high, c, strict)[0] == 1.0


def test_lever_fit_needs_the_kpi_feature_moving_the_kpi_way() -> None:
    raise_rd = instrument("vouchers", stages=("decline",), kpi="rd_intensity")
    cut_rd = instrument("odd", stages=("decline",), kpi="rd_intensity", kpi_direction="decrease")
    other = instrument("other", stages=("decline",), kpi="productivity")
    lever = Levers("renewal", True, (LeverChange("rd_intensity", 0.001, 0.011),), "renewal", 0.55)
    c = case(stage="decline", levers=lever)
    score, because = score_instrument(raise_rd, c)
    assert score == 2.0
    assert (
        because == "lever: moving rd_intensity from 0.001 to 0.011 makes the model predict renewal"
    )
    assert score_instrument(cut_rd, c)[0] == 1.0
    assert score_instrument(other, c)[0] == 1.0
    unreachable = Levers("renewal", False, (LeverChange("rd_intensity", 0.001, 0.011),))
    assert score_instrument(raise_rd, case(stage="decline", levers=unreachable))[0] == 1.0
    weighted = Scoring(lever_weight=0.5, driver_weight=2.0)
    assert score_instrument(raise_rd, c, weighted)[0] == 1.5


def test_ranking_keeps_only_the_stage_and_breaks_ties_by_specificity() -> None:
    base = kb(
        instrument("broad", stages=("mature", "decline", "growth")),
        instrument("specific", stages=("mature",)),
        instrument("driven", stages=("mature", "growth"), triggers=(("exit_rate", "high"),)),
        instrument("elsewhere", stages=("growth",), triggers=(("exit_rate", "high"),)),
    )
    c = case(stage="mature", drivers=(Driver("exit_rate", 0.2, 80.0, 1.0, "towards"),))
    ranked = rank_instruments(c, base)
    assert [r.id for r in ranked] == ["driven", "specific", "broad"]
    assert [r.score for r in ranked] == [2.0, 1.0, 1.0]
    assert ranked[1].because == "fits the mature stage"
    assert [r.id for r in recommend(c, base, k=2)] == ["driven", "specific"]
    with pytest.raises(ValueError, match="k must be at least 1"):
        recommend(c, base, k=0)


def test_recommendation_carries_kpi_and_todays_baseline() -> None:
    base = kb(
        instrument("a", kpi="productivity"),
        instrument("b", kpi="rd_intensity", kpi_direction="increase"),
        instrument("c", kpi="exit_rate", kpi_direction="decrease", targets="smes"),
    )
    c = case(values={"productivity": 42.5, "rd_intensity": math.nan, "exit_rate": 0.08})
    recs = {r.id: r for r in recommend(c, base, k=3)}
    assert (recs["a"].kpi, recs["a"].kpi_direction, recs["a"].baseline) == (
        "productivity",
        "increase",
        42.5,
    )
    assert recs["b"].baseline is None
    assert (recs["c"].kpi_direction, recs["c"].baseline, recs["c"].targets) == (
        "decrease",
        0.08,
        "smes",
    )
    assert set(recs["a"].to_dict()) >= {
        "id", "title", "aspect", "because", "kpi", "kpi_direction", "baseline"
    }  # fmt: skip


def test_packaged_knowledge_base_recommends_for_every_stage() -> None:
    base = load_knowledge_base()
    for stage in ("emerging", "growth", "mature", "decline", "renewal"):
        recs = recommend(case(stage=stage), base, k=6)
        assert len(recs) == 6
        assert all(stage in base[r.id].stages for r in recs)


def test_decline_drivers_pull_in_exit_and_restructuring_measures() -> None:
    c = case(
        stage="decline",
        drivers=(Driver("exit_rate", 0.15, 95.0, 1.2, "towards"),),
        values={"exit_rate": 0.15, "productivity": 30.0},
    )
    top = [r.id for r in recommend(c, load_knowledge_base(), k=4)]
    assert "orderly_exit_procedure" in top
    assert "distress_early_warning" in top


def test_portfolio_one_case_per_cluster() -> None:
    base = kb(instrument("a"))
    with pytest.raises(ValueError, match="appears twice"):
        build_portfolio("R", [case("x"), case("x")], base)
    with pytest.raises(ValueError, match="of region 'Q'"):
        build_portfolio("R", [case("x", region="Q")], base)
    with pytest.raises(ValueError, match="stage must be one of"):
        rank_instruments(case(stage="boom"), base)
    portfolio = build_portfolio("R", [case("x"), case("y", stage="decline")], base, k=3)
    assert portfolio.count_by_aspect()["investment_guidance"] == 1
    assert portfolio.count_by_stage()["mature"] == {
        "clusters": 1,
        "recommendations": 1,
        "mean_per_cluster": 1.0,
    }
    assert portfolio.count_by_stage()["decline"]["recommendations"] == 0
