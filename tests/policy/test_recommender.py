from __future__ import annotations

import math
from dataclasses import replace

import pytest

from policy.knowledge_base import load_knowledge_base
from policy.ranking import trigger_family
from policy.recommender import (
    ClusterCase,
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
    assert ranked[1].because == (
        "stage default for a mature cluster: no top driver or lever of this cluster calls for it"
    )
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


# --- matching across horizons, evidence for heavy measures, ties, near-ties ---------------------


@pytest.mark.parametrize(
    ("feature", "family"),
    [
        ("est_cagr_1y", "est_cagr_*"),
        ("est_cagr_5y_lag2", "est_cagr_*"),
        ("productivity_cagr_3y", "productivity_cagr_*"),
        ("entry_rate_lag1", "entry_rate"),
        ("rd_intensity_change_3y", "rd_intensity_change_3y"),
    ],
)
def test_trigger_family_merges_lags_and_growth_horizons(feature: str, family: str) -> None:
    assert trigger_family(feature) == family


def test_a_growth_trigger_matches_every_horizon_of_that_growth() -> None:
    inst = instrument("exit_help", stages=("decline",), triggers=(("est_cagr_3y", "low"),))
    drivers = (
        Driver("est_cagr_1y", -0.08, 3.0, 0.75, "towards"),
        Driver("emp_cagr_1y", -0.02, 10.0, 0.25, "towards"),  # another indicator: no match
    )
    score, because = score_instrument(inst, case(stage="decline", drivers=drivers))
    assert score == pytest.approx(1.75)
    assert because.startswith("top driver est_cagr_1y is low (P3")


def test_a_heavy_instrument_needs_a_driver_or_lever_that_calls_for_it() -> None:
    base = kb(
        instrument("fund", intensity="heavy", triggers=(("productivity", "low"),)),
        instrument("signal", intensity="light"),
    )
    plain = case(stage="mature", drivers=(Driver("productivity", 9.0, 55.0, 0.5, "towards"),))
    assert [r.id for r in rank_instruments(plain, base)] == ["signal"]
    called = case(stage="mature", drivers=(Driver("productivity", 9.0, 20.0, 0.5, "towards"),))
    assert [r.id for r in rank_instruments(called, base)] == ["fund", "signal"]


def test_equal_scores_go_to_the_lighter_instrument_first() -> None:
    base = kb(
        instrument("moderate_one", intensity="moderate"),
        instrument("light_broad", stages=("mature", "decline", "renewal")),
        instrument("light_one"),
    )
    ranked = rank_instruments(case(stage="mature"), base)
    assert [r.id for r in ranked] == ["light_one", "light_broad", "moderate_one"]


def test_a_torn_model_prefers_measures_that_fit_the_runner_up_and_says_so() -> None:
    base = kb(
        instrument("mature_only"),
        instrument("mature_or_decline", stages=("mature", "decline")),
    )
    torn = ClusterCase("R", "shoes", 2024, "mature", {"mature": 0.5, "decline": 0.4, "growth": 0.1})
    ranked = rank_instruments(torn, base, Scoring(near_tie_margin=0.25))
    assert [r.id for r in ranked] == ["mature_or_decline", "mature_only"]
    assert ranked[0].because.endswith(
        "also fits decline, the stage the model nearly chose (p 0.40)"
    )
    assert "nearly chose" not in ranked[1].because  # mature_only does not fit decline
    sure = replace(torn, probabilities={"mature": 0.8, "decline": 0.1, "growth": 0.1})
    ranked = rank_instruments(sure, base, Scoring(near_tie_margin=0.25))
    assert [r.id for r in ranked] == ["mature_only", "mature_or_decline"]
    assert "nearly chose" not in ranked[1].because


def test_runner_up_and_torn_with() -> None:
    c = ClusterCase("R", "s", 2024, "mature", {"mature": 0.57, "decline": 0.36, "growth": 0.07})
    assert c.runner_up == ("decline", 0.36)
    assert c.torn_with(0.25) == "decline"
    assert c.torn_with(0.2) is None
    assert ClusterCase("R", "s", 2024, "mature", {"mature": 1.0}).runner_up is None


def test_rests_on_gaps_weighs_the_drivers_with_missing_values() -> None:
    gaps = (
        Driver("va_share", None, None, 0.9, "towards"),
        Driver("exit_rate", 0.1, 50.0, 0.5, "towards"),
        Driver("median_firm_age", None, None, -0.2, "away from"),
    )
    c = case(stage="renewal", drivers=gaps)
    assert c.missing_drivers == ("va_share", "median_firm_age")
    assert c.rests_on_gaps  # 1.1 of 1.6
    assert not case(stage="renewal", drivers=gaps[:2] + (gaps[1],)).rests_on_gaps  # 0.9 of 1.9
    assert not case(stage="renewal").rests_on_gaps


def test_a_driver_is_told_against_the_runner_up_where_that_turns_it() -> None:
    """Auto parts: entry_rate raises mature's margin by 0.44 and decline's by 0.80."""
    inst = instrument("entry", stages=("mature",), triggers=(("entry_rate", "low"),))
    turned = Driver("entry_rate", 0.02, 20.0, 0.44, "towards", "decline", 0.44 - 0.80)
    _, because = score_instrument(inst, case(stage="mature", drivers=(turned,)))
    assert because == (
        "top driver entry_rate is low (P20 among comparative clusters; pushes towards mature, "
        "yet favours decline over it)"
    )
    away = Driver("entry_rate", 0.02, 20.0, -0.3, "away from", "decline", 0.5)
    assert away.pull("mature") == "pushes away from mature, yet favours it over decline"
    agreeing = Driver("entry_rate", 0.02, 20.0, 0.44, "towards", "decline", 0.2)
    assert agreeing.pull("mature") == "pushes towards mature"
    assert Driver("entry_rate", 0.02, 20.0, 0.44, "towards").pull("mature") == (
        "pushes towards mature"
    )


def test_driver_weight_scales_the_driver_fit() -> None:
    inst = instrument("vouchers", stages=("decline",), triggers=(("rd_intensity", "low"),))
    c = case(stage="decline", drivers=(Driver("rd_intensity", 0.001, 10.0, 0.8, "towards"),))
    assert score_instrument(inst, c, Scoring(driver_weight=2.0))[0] == pytest.approx(3.0)
    assert score_instrument(inst, c, Scoring(driver_weight=0.0))[0] == pytest.approx(1.0)


def test_a_record_without_direction_reads_its_sign_from_the_contribution() -> None:
    record = {"feature": "entry_rate", "value": 0.1, "percentile": 20.0}
    assert Driver.from_record({**record, "contribution": -0.4}).direction == "away from"
    assert Driver.from_record({**record, "contribution": 0.4}).direction == "towards"


def test_half_the_weight_on_missing_values_does_not_rest_on_gaps() -> None:
    half = (
        Driver("va_share", None, None, 1.0, "towards"),
        Driver("exit_rate", 0.1, 50.0, 1.0, "towards"),
    )
    assert not case(stage="renewal", drivers=half).rests_on_gaps


def test_a_runner_up_exactly_the_margin_behind_is_torn() -> None:
    c = ClusterCase(
        "R", "s", 2024, "mature", {"mature": 0.5, "decline": 0.25, "growth": 0.2, "renewal": 0.05}
    )
    assert c.torn_with(0.25) == "decline"
