from __future__ import annotations

import numpy as np
import pytest

from features.stages import STAGES
from policy.guards import (
    GuardConfig,
    apply_guards,
    big_enterprise_only,
    governance_in_vain,
    holds,
    strong_over_weak,
    unbalanced_support,
)
from policy.knowledge_base import ASPECTS, catalogue_features, load_knowledge_base
from policy.recommender import Driver, Portfolio, build_portfolio, recommendation
from tests.policy.helpers import case, instrument, kb

IG, RA, MS, PS = ASPECTS


def _portfolio(base, cases, chosen: dict[str, list[str]]) -> Portfolio:
    """A portfolio whose recommendations are exactly ``chosen`` (ids per cluster)."""
    by_cluster = {c.cluster: c for c in cases}
    recs = {
        cluster: tuple(recommendation(base[i], by_cluster[cluster]) for i in ids)
        for cluster, ids in chosen.items()
    }
    return Portfolio("R", by_cluster, recs, base)


def _ids(portfolio: Portfolio, cluster: str) -> list[str]:
    return [r.id for r in portfolio.recommendations[cluster]]


# ---------------------------------------------------------------- governance_in_vain

GOV_KB = kb(
    instrument("rd_fund", RA, kpi="rd_intensity"),
    instrument("skills", RA, kpi="productivity"),
    instrument("mega_park", IG, intensity="heavy"),
    instrument("guide", IG, intensity="moderate"),
    instrument("patent_office", MS, kpi="patents_per_10k"),
)


def test_governance_in_vain_fires_and_repairs() -> None:
    shaky = case("shoes", confidence=0.45, values={"productivity": 40.0})  # no rd, no patents
    portfolio = _portfolio(GOV_KB, [shaky], {"shoes": ["rd_fund", "mega_park", "patent_office"]})
    passed, repaired, changes = governance_in_vain(portfolio)
    assert not passed
    assert _ids(repaired, "shoes") == ["skills", "guide"]
    assert changes == (
        "shoes: replaced 'rd_fund' (KPI rd_intensity has no baseline for this cluster) with "
        "'skills' (resource_assembly, light; KPI productivity, baseline 40)",
        "shoes: replaced 'mega_park' (heavy measure while the model's confidence is 0.45 < 0.6) "
        "with 'guide' (investment_guidance, moderate; KPI productivity, baseline 40)",
        "shoes: dropped 'patent_office' (KPI patents_per_10k has no baseline for this cluster; "
        "no admissible instrument fits the mature stage)",
    )
    assert all(r.baseline is not None and r.intensity != "heavy" for _, r in repaired.all())
    assert {r.added_by for _, r in repaired.all()} == {"governance_in_vain"}
    assert governance_in_vain(repaired).passed


def test_governance_in_vain_falls_back_to_another_aspect() -> None:
    base = kb(
        instrument("patent_office", MS, kpi="patents_per_10k"),
        instrument("ip_court", MS, kpi="patents_per_10k"),
        instrument("forum", PS, kpi="lq"),
    )
    thin = case("shoes", values={"lq": 1.4})
    portfolio = _portfolio(base, [thin], {"shoes": ["patent_office"]})
    passed, repaired, changes = governance_in_vain(portfolio)
    assert not passed
    assert _ids(repaired, "shoes") == ["forum"]
    assert changes == (
        "shoes: replaced 'patent_office' (KPI patents_per_10k has no baseline for this cluster) "
        "with 'forum' (public_service, light; KPI lq, baseline 1.4)",
    )


def test_governance_in_vain_holds_untouched() -> None:
    sure = case("shoes", confidence=0.8, values={"productivity": 40.0, "rd_intensity": 0.02})
    portfolio = _portfolio(GOV_KB, [sure], {"shoes": ["rd_fund", "mega_park"]})
    result = governance_in_vain(portfolio)
    assert result.passed
    assert result.changes == ()
    assert result.portfolio is portfolio
    # The same heavy measure is refused once the threshold rises above the model's confidence.
    assert not governance_in_vain(portfolio, GuardConfig(min_confidence=0.85)).passed


def test_governance_in_vain_refuses_heavy_measures_where_the_stage_rests_on_missing_values() -> (
    None
):
    gaps = (
        Driver("va_share", None, None, 0.9, "towards"),
        Driver("median_firm_age", None, None, 0.4, "towards"),
        Driver("productivity", 40.0, 30.0, 0.3, "towards"),
    )
    sparse = case("shoes", confidence=0.93, values={"productivity": 40.0}, drivers=gaps)
    portfolio = _portfolio(GOV_KB, [sparse], {"shoes": ["mega_park"]})
    passed, repaired, changes = governance_in_vain(portfolio)
    assert not passed
    assert _ids(repaired, "shoes") == ["guide"]
    assert changes == (
        "shoes: replaced 'mega_park' (heavy measure while the stage rests mostly on values "
        "missing for it (va_share, median_firm_age)) with 'guide' (investment_guidance, "
        "moderate; KPI productivity, baseline 40)",
    )
    # The same cluster with its values known keeps the heavy measure.
    known = case("shoes", confidence=0.93, values={"productivity": 40.0}, drivers=gaps[2:])
    assert governance_in_vain(_portfolio(GOV_KB, [known], {"shoes": ["mega_park"]})).passed


# ---------------------------------------------------------------- big_enterprise_only

SME_KB = kb(
    instrument("anchor_grant", IG, targets="large_firms"),
    instrument("expo", IG, targets="all_firms"),
    instrument("brand", MS, targets="all_firms"),
    instrument("vouchers", IG, targets="smes"),
    instrument("lead_firm_lab", RA, targets="large_firms"),
)


def test_big_enterprise_only_without_large_firm_measure_swaps_within_the_aspect() -> None:
    sme_led = case("shoes", values={"productivity": 40.0, "sme_share": 0.9})
    portfolio = _portfolio(SME_KB, [sme_led], {"shoes": ["brand", "expo"]})
    _, repaired, _ = big_enterprise_only(portfolio)
    assert _ids(repaired, "shoes") == ["brand", "vouchers"]  # expo (IG) replaced by IG vouchers


def test_big_enterprise_only_holds_untouched() -> None:
    large_led = case("cars", values={"productivity": 40.0, "sme_share": 0.3})
    served = case("shoes", values={"productivity": 40.0, "sme_share": 0.8})
    unknown = case("toys", values={"productivity": 40.0})
    portfolio = _portfolio(
        SME_KB,
        [large_led, served, unknown],
        {"cars": ["anchor_grant"], "shoes": ["vouchers", "expo"], "toys": ["expo"]},
    )
    result = big_enterprise_only(portfolio)
    assert result.passed and result.changes == ()
    assert result.portfolio is portfolio
    assert result.notes == ("toys: sme_share unknown; not checked",)


def _shoes(**values: float):
    """A cluster whose SMEs hold 35 % of employment, not a majority, unless ``values`` say."""
    return case("shoes", values={"productivity": 40.0, "sme_share": 0.35, **values})


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"sme_share": 0.72}, "SMEs hold 72% of employment but no measure targets them"),
        (
            {"sme_share_lag3": 0.45, "cr4_change_3y": 0.06},
            "the top four firms' share rose 6.0 points in 3 years while the SME share fell from "
            "45% to 35%, yet its measures serve large firms and none SMEs",
        ),
    ],
)
def test_big_enterprise_only_fires_and_swaps_in_an_sme_measure(values, why) -> None:
    cluster = _shoes(**values)
    portfolio = _portfolio(SME_KB, [cluster], {"shoes": ["expo", "anchor_grant", "brand"]})
    passed, repaired, changes = big_enterprise_only(portfolio)
    assert not passed
    # The measure aimed at large firms goes; the best SME instrument takes its place.
    assert _ids(repaired, "shoes") == ["expo", "vouchers", "brand"]
    assert changes == (f"shoes: replaced 'anchor_grant' (large_firms) with 'vouchers' ({why})",)
    assert big_enterprise_only(repaired).passed


def test_big_enterprise_only_reads_the_hhi_where_the_top_fours_share_is_unknown() -> None:
    by_hhi = _shoes(sme_share_lag3=0.45, hhi_change_3y=0.02)
    _, _, changes = big_enterprise_only(_portfolio(SME_KB, [by_hhi], {"shoes": ["anchor_grant"]}))
    assert "concentration (HHI) rose 0.020 in 3 years" in changes[0]


@pytest.mark.parametrize(
    ("values", "chosen"),
    [
        # squeezed, but no measure serves large firms
        ({"sme_share_lag3": 0.45, "cr4_change_3y": 0.06}, ["expo", "brand"]),
        # concentration rising, the SME share rising too
        ({"sme_share_lag3": 0.30, "cr4_change_3y": 0.06}, ["anchor_grant"]),
        # the SME share falling, concentration falling too
        ({"sme_share_lag3": 0.45, "cr4_change_3y": -0.02}, ["anchor_grant"]),
        # the SME share three years before unknown
        ({"cr4_change_3y": 0.06}, ["anchor_grant"]),
    ],
)
def test_big_enterprise_only_lets_large_firm_measures_stand_without_the_squeeze(
    values, chosen
) -> None:
    portfolio = _portfolio(SME_KB, [_shoes(**values)], {"shoes": chosen})
    result = big_enterprise_only(portfolio)
    assert result.passed and result.changes == ()


# ---------------------------------------------------------------- strong_over_weak

WEAK_KB = kb(
    *(instrument(f"m{i}", ASPECTS[i % 4], stages=("mature",)) for i in range(4)),
    *(instrument(f"e{i}", ASPECTS[i % 4], stages=("emerging", "decline")) for i in range(5)),
    *(instrument(f"r{i}", ASPECTS[i % 4], stages=("renewal",)) for i in range(2)),
)


def test_strong_over_weak_fires_and_tops_up_the_weak_clusters() -> None:
    cases = [
        case("valves", "mature"),
        case("lighters", "decline"),
        case("drones", "emerging"),
        case("pens", "emerging"),
    ]
    portfolio = _portfolio(
        WEAK_KB,
        cases,
        {
            "valves": ["m0", "m1", "m2", "m3"],
            "lighters": ["e0"],
            "drones": ["e0", "e1", "e2", "e3"],
            "pens": ["e0", "e1"],
        },
    )
    passed, repaired, changes = strong_over_weak(portfolio)
    assert not passed
    counts = {c: len(r) for c, r in repaired.recommendations.items()}
    # emerging mean 3 -> 4 (pens gets two), decline 1 -> 4 (lighters gets three)
    assert counts == {"valves": 4, "lighters": 4, "drones": 4, "pens": 4}
    assert len(changes) == 5
    assert changes[0] == (
        "pens: added 'e2' (emerging clusters had fewer measures per cluster than mature ones: 4.00)"
    )
    assert strong_over_weak(repaired).passed


def test_strong_over_weak_holds_untouched() -> None:
    cases = [case("valves", "mature"), case("drones", "emerging"), case("pens", "growth")]
    portfolio = _portfolio(
        WEAK_KB, cases, {"valves": ["m0", "m1"], "drones": ["e0", "e1", "e2"], "pens": []}
    )
    result = strong_over_weak(portfolio)
    assert result.passed and result.changes == ()
    assert result.portfolio is portfolio
    no_mature = _portfolio(WEAK_KB, [case("drones", "emerging")], {"drones": []})
    assert strong_over_weak(no_mature).passed


def test_strong_over_weak_counts_renewing_clusters_among_the_weak() -> None:
    cases = [case("valves", "mature"), case("leather", "renewal")]
    portfolio = _portfolio(WEAK_KB, cases, {"valves": ["m0", "m1"], "leather": ["r0"]})
    passed, repaired, changes = strong_over_weak(portfolio)
    assert not passed
    assert len(repaired.recommendations["leather"]) == 2
    assert changes[0].startswith("leather: added ")
    assert changes[0].endswith(
        "(renewal clusters had fewer measures per cluster than mature ones: 2.00)"
    )


def test_strong_over_weak_says_when_it_runs_out_of_instruments() -> None:
    cases = [case("valves", "mature"), case("drones", "emerging")]
    few = kb(
        *(instrument(f"m{i}", stages=("mature",)) for i in range(4)),
        instrument("e0", stages=("emerging",)),
    )
    portfolio = _portfolio(few, cases, {"valves": ["m0", "m1", "m2", "m3"], "drones": []})
    result = strong_over_weak(portfolio)
    assert not result.passed
    assert _ids(result.portfolio, "drones") == ["e0"]
    assert result.notes == (
        "emerging: no admissible instrument left to add; mean stays 1.00 < 4.00",
    )


# ---------------------------------------------------------------- unbalanced_support

BAL_KB = kb(
    *(instrument(f"ig{i}", IG, triggers=(("exit_rate", "high"),)) for i in range(4)),
    instrument("ra0", RA),
    instrument("ms0", MS),
    instrument("ps0", PS),
    instrument("ps1", PS, kpi="rd_intensity"),  # not measurable here: never swapped in
)


def test_unbalanced_support_fires_and_rebalances() -> None:
    driven = (Driver("exit_rate", 0.2, 90.0, 1.0, "towards"),)
    cases = [case("valves", drivers=driven), case("pumps")]
    portfolio = _portfolio(
        BAL_KB, cases, {"valves": ["ig0", "ig1", "ig2"], "pumps": ["ig0", "ig1", "ig3"]}
    )
    passed, repaired, changes = unbalanced_support(portfolio)
    assert not passed
    counts = repaired.count_by_aspect()
    assert all(counts[a] >= 1 for a in ASPECTS)
    assert max(counts.values()) / sum(counts.values()) <= 0.4
    assert sum(counts.values()) == 6
    # The lowest-ranked IG measures go first: pumps (no driver match) before valves.
    assert changes[0] == (
        "pumps: replaced 'ig3' (investment_guidance) with 'ra0' (resource_assembly); "
        "investment_guidance now 5, resource_assembly now 1 of 6 measures"
    )
    assert all(r.id != "ps1" for _, r in repaired.all())
    assert unbalanced_support(repaired).passed


def test_unbalanced_support_holds_untouched() -> None:
    portfolio = _portfolio(
        BAL_KB, [case("valves"), case("pumps")], {"valves": ["ig0", "ra0"], "pumps": ["ms0", "ps0"]}
    )
    result = unbalanced_support(portfolio)
    assert result.passed and result.changes == ()
    assert result.portfolio is portfolio


@pytest.mark.parametrize(
    ("values", "ig_other"),
    [
        ({"sme_share": 0.9}, "ig1"),
        # squeezed: SMEs losing ground while the cluster's measures also serve large firms
        ({"sme_share": 0.35, "sme_share_lag3": 0.45, "cr4_change_3y": 0.06}, "ig_large"),
    ],
)
def test_unbalanced_support_keeps_the_only_sme_measure_of_an_sme_cluster(values, ig_other) -> None:
    base = kb(
        instrument("ig_sme", IG, targets="smes"),
        instrument("ig1", IG),
        instrument("ig_large", IG, targets="large_firms"),
        instrument("ig2", IG),
        instrument("ra0", RA),
        instrument("ra_sme", RA, targets="smes"),
        instrument("ms0", MS),
        instrument("ps0", PS),
    )
    cluster = case("shoes", values={"productivity": 40.0, **values})
    # ig_sme is the lowest-ranked IG measure (equal scores, the later one): it is swapped first,
    # and for an SME measure, although ra0 ranks above ra_sme; then ig2 for ps0
    portfolio = _portfolio(base, [cluster], {"shoes": [ig_other, "ig2", "ig_sme", "ms0"]})
    _, repaired, _ = unbalanced_support(portfolio)
    assert _ids(repaired, "shoes") == [ig_other, "ps0", "ra_sme", "ms0"]
    assert holds(repaired)["unbalanced_support"]
    assert holds(repaired)["big_enterprise_only"]


# ---------------------------------------------------------------- all four together


def test_guards_leave_every_rule_holding_on_the_packaged_knowledge_base() -> None:
    """Random regions (seeded): after apply_guards every rule holds, or the guard says why not."""
    base = load_knowledge_base()
    features = sorted(catalogue_features())
    rng = np.random.default_rng(11)
    fired: set[str] = set()
    all_held = 0
    for trial in range(30):
        cases = []
        for j in range(int(rng.integers(2, 9))):
            values = {f: float(rng.random()) for f in features if rng.random() > 0.2}
            values["sme_share"] = float(rng.random())
            drivers = tuple(
                Driver(str(f), 0.5, float(rng.uniform(0, 100)), float(rng.normal()), "towards")
                for f in rng.choice(features, size=3, replace=False)
            )
            cases.append(
                case(
                    f"c{j}",
                    str(rng.choice(STAGES)),
                    confidence=float(rng.uniform(0.3, 0.95)),
                    values=values,
                    drivers=drivers,
                )
            )
        portfolio = build_portfolio("R", cases, base, k=int(rng.integers(3, 8)))
        for c in cases:  # as if an analyst had struck out some measures
            if rng.random() < 0.3:
                kept = portfolio.recommendations[c.cluster][: int(rng.integers(1, 4))]
                portfolio = portfolio.with_recommendations(c.cluster, kept)
        repaired, results = apply_guards(portfolio)
        fired |= {r.name for r in results if not r.passed}
        final = holds(repaired)
        for result in results:
            # A rule may stay broken only where its guard said it ran out of substitutes.
            assert final[result.name] or result.notes, (trial, result.name)
        all_held += all(final.values())
    assert fired == {"governance_in_vain", "big_enterprise_only", "strong_over_weak",
                     "unbalanced_support"}  # fmt: skip
    assert all_held >= 27


@pytest.mark.parametrize("share", [0.25, 0.4, 0.6])
def test_max_aspect_share_is_a_parameter(share: float) -> None:
    portfolio = _portfolio(
        BAL_KB, [case("valves")], {"valves": ["ig0", "ig1", "ra0", "ms0", "ps0"]}
    )
    assert unbalanced_support(portfolio, GuardConfig(max_aspect_share=share)).passed == (
        share >= 0.4
    )


# ---------------------------------------------------------------- thresholds and repair order


def test_confidence_exactly_at_the_minimum_allows_heavy_measures() -> None:
    sure_enough = case("shoes", confidence=0.6, values={"productivity": 40.0})
    portfolio = _portfolio(GOV_KB, [sure_enough], {"shoes": ["mega_park"]})
    assert governance_in_vain(portfolio).passed


def test_an_sme_share_exactly_at_the_majority_is_not_sme_led() -> None:
    half = case("shoes", values={"productivity": 40.0, "sme_share": 0.5})
    portfolio = _portfolio(SME_KB, [half], {"shoes": ["expo", "anchor_grant"]})
    result = big_enterprise_only(portfolio)
    assert result.passed and result.changes == ()


def test_big_enterprise_only_replaces_the_large_firm_measure_of_another_aspect() -> None:
    # anchor_grant (resource_assembly) goes, not expo, which shares vouchers' aspect
    base = kb(
        instrument("vouchers", IG, targets="smes"),
        instrument("expo", IG),
        instrument("anchor_grant", RA, targets="large_firms"),
        instrument("brand", MS),
    )
    sme_led = case("shoes", values={"productivity": 40.0, "sme_share": 0.8})
    portfolio = _portfolio(base, [sme_led], {"shoes": ["expo", "anchor_grant", "brand"]})
    _, repaired, changes = big_enterprise_only(portfolio)
    assert _ids(repaired, "shoes") == ["expo", "vouchers", "brand"]
    assert changes[0].startswith("shoes: replaced 'anchor_grant' (large_firms) with 'vouchers'")


def test_of_equally_ranked_measures_the_later_one_is_replaced() -> None:
    base = kb(
        instrument("vouchers", IG, targets="smes"),
        instrument("lab", RA, targets="large_firms"),
        instrument("anchor", MS, targets="large_firms"),
    )
    sme_led = case("shoes", values={"productivity": 40.0, "sme_share": 0.8})
    portfolio = _portfolio(base, [sme_led], {"shoes": ["lab", "anchor"]})
    _, repaired, _ = big_enterprise_only(portfolio)
    assert _ids(repaired, "shoes") == ["lab", "vouchers"]


def test_the_most_frequent_aspect_gives_up_a_measure_first() -> None:
    # IG 3, RA 2, MS and PS missing: IG donates first (to MS, then PS), so RA keeps both
    base = kb(
        instrument("ig0", IG),
        instrument("ig1", IG),
        instrument("ig2", IG),
        instrument("ra0", RA),
        instrument("ra1", RA),
        instrument("ms0", MS),
        instrument("ps0", PS),
    )
    portfolio = _portfolio(base, [case("valves")], {"valves": ["ig0", "ig1", "ig2", "ra0", "ra1"]})
    _, repaired, changes = unbalanced_support(portfolio)
    assert repaired.count_by_aspect() == {IG: 1, RA: 2, MS: 1, PS: 1}
    assert changes[0].startswith("valves: replaced 'ig2' (investment_guidance) with 'ms0'")


def test_aspect_balance_is_checked_after_strong_over_weak_tops_up() -> None:
    # the instruments that fit emerging are mostly investment guidance; the top-up for the
    # emerging cluster unbalances the region, and only a balance check after it repairs that
    emerging = ("emerging",)
    base = kb(
        instrument("ig_e0", IG, emerging),
        instrument("ig_e1", IG, emerging),
        instrument("ig_e2", IG, emerging),
        instrument("ig_e3", IG, emerging),
        instrument("ra_e", RA, emerging),
        instrument("ms_e", MS, emerging),
        instrument("ps_e", PS, emerging),
        instrument("ig0", IG),
        instrument("ra0", RA),
        instrument("ms0", MS),
        instrument("ps0", PS),
    )
    cases = [case("old"), case("new", "emerging")]
    portfolio = _portfolio(base, cases, {"old": ["ig0", "ra0", "ms0", "ps0"], "new": []})
    repaired, results = apply_guards(portfolio)
    assert [r.name for r in results if not r.passed] == ["strong_over_weak", "unbalanced_support"]
    assert all(holds(repaired).values())
    assert repaired.count_by_aspect() == {IG: 3, RA: 2, MS: 2, PS: 1}
