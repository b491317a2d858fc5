"""The synthetic reference world's pure parts: stage process, firm simulation, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.reference_world import TARGET_REGION, YEARS
from features.reference_world.archetypes import ARCHETYPES, NOISE, OWNERSHIPS, REGIONS, Region
from features.reference_world.calibration import (
    MEASURES,
    calibration_table,
    load_real_traded,
    specialisation_table,
)
from features.reference_world.process import UNBORN, simulate_stages, spell_length
from features.reference_world.simulate import (
    build_panel,
    region_clusters,
    region_stages,
    simulate_region,
    world_stages,
)
from features.reference_world.tables import doc_tables, render_tables
from features.stages import STAGE_ID, STAGES

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / ".." / "shared" / "data" / "us-cluster-mapping" / "states_2016.csv"
WENZHOU = (
    "Footwear",
    "Apparel",
    "Eyeglasses",
    "Lighters",
    "Low-voltage electrics",
    "Pumps and valves",
    "Auto parts",
)


# -- regions and the stage process ----------------------------------------------------------------
def test_regions_cover_every_archetype_and_the_target() -> None:
    assert len(REGIONS) >= 12
    comparative = [r for r in REGIONS if r.name != TARGET_REGION]
    counts = pd.Series([r.archetype for r in comparative]).value_counts()
    assert set(counts.index) == set(ARCHETYPES) and counts.min() >= 2
    target = [r for r in REGIONS if r.name == TARGET_REGION]
    assert len(target) == 1 and target[0].archetype == "sme_export_district"
    assert set(WENZHOU) <= set(region_clusters(REGIONS.index(target[0]), seed=1))


@pytest.mark.parametrize("seed", [0, 1, 20240601])
def test_each_region_has_ten_or_more_distinct_clusters(seed: int) -> None:
    for i in range(len(REGIONS)):
        clusters = region_clusters(i, seed)
        assert len(set(clusters)) == len(clusters) >= 10


@pytest.mark.parametrize("seed", [3, 17, 20240601])
def test_every_stage_is_at_least_ten_percent_of_region_cluster_years(seed: int) -> None:
    stages = world_stages(seed)
    clusters = stages.groupby(["region", "cluster"])["year"]
    assert clusters.ngroups == len(REGIONS) * NOISE.clusters_per_region
    # a cluster has a row every year from its first to the last
    assert (clusters.max() == YEARS[-1]).all()
    assert (clusters.count() == YEARS[-1] - clusters.min() + 1).all()
    shares = stages["stage"].value_counts(normalize=True)
    assert set(shares.index) == set(STAGES)
    assert shares.min() >= 0.10, shares.to_dict()


def test_stage_paths_follow_the_transition_rules() -> None:
    for seed in (1, 2):
        for i, region in enumerate(REGIONS):
            process = ARCHETYPES[region.archetype].process
            frame = region_stages(i, seed)
            for _, rows in frame.groupby("cluster"):
                path = rows.sort_values("year")["stage"].map(STAGE_ID).to_numpy()
                for a, b in zip(path[:-1], path[1:], strict=True):
                    # a change must be an allowed arc; staying is always possible mid-spell
                    assert a == b or process.transitions[a][b] > 0, (region.name, a, b)


def test_late_clusters_emerge_and_given_clusters_start_as_given() -> None:
    stages = world_stages(20240601)
    first = stages.sort_values("year").groupby(["region", "cluster"]).first()
    late = first[first["year"] > YEARS[0]]
    # about late_birth_share of the drawn clusters; each begins as emerging in the birth window
    drawn = first.drop(index=TARGET_REGION, level="region")
    assert 0.05 < len(late) / len(drawn) < 0.3
    assert (late["stage"] == "emerging").all()
    assert late["year"].between(*NOISE.birth_years).all()
    assert TARGET_REGION not in late.index.get_level_values("region")
    # so emerging clusters are still found at the end of the period
    recent = stages[stages["year"] >= YEARS[-4]]
    assert (recent["stage"] == "emerging").mean() > 0.02
    target = REGIONS[[r.name for r in REGIONS].index(TARGET_REGION)]
    given = first.loc[TARGET_REGION].reindex(list(target.clusters))
    assert (given["year"] == YEARS[0]).all()
    assert given["stage"].tolist() == list(target.initial_stages)


def test_births_and_given_initial_stages_in_the_chain() -> None:
    process = ARCHETYPES["italian_district"].process
    ids = simulate_stages(
        process, 3, 10, np.random.default_rng(1), births=np.array([0, 4, 0]), initial=[3, None, 4]
    )
    assert ids[0, 0] == 3 and ids[2, 0] == 4
    assert (ids[1, :4] == UNBORN).all() and ids[1, 4] == STAGE_ID["emerging"]
    assert (ids[[0, 2]] != UNBORN).all()


def test_spells_last_at_least_their_minimum() -> None:
    process = ARCHETYPES["innovation_hub"].process
    rng = np.random.default_rng(5)
    lengths = [spell_length(process, 1, rng) for _ in range(2000)]
    assert min(lengths) == process.min_years[1]
    assert np.mean(lengths) == pytest.approx(process.mean_years[1], rel=0.1)
    # a run of the chain never leaves a stage before its minimum (except the first spell)
    ids = simulate_stages(process, 50, 60, np.random.default_rng(9))
    for path in ids:
        changes = np.flatnonzero(np.diff(path)) + 1
        for start, end in zip(changes[:-1], changes[1:], strict=True):
            assert end - start >= process.min_years[path[start]]


def test_stages_do_not_depend_on_scale_and_seed_changes_them() -> None:
    small = simulate_region(0, seed=4, scale=0.02).clusters
    pd.testing.assert_frame_equal(
        small[["region", "cluster", "year", "stage"]],
        region_stages(0, seed=4).sort_values(["cluster", "year"], ignore_index=True),
    )
    assert not region_stages(0, seed=4).equals(region_stages(0, seed=5))


# -- firms ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """All regions at scale 0.2: firm rows and their panel with the true stage."""
    firms, panels = [], []
    for i in range(len(REGIONS)):
        world = simulate_region(i, seed=20240601, scale=0.2)
        f = world.firms.to_pandas()
        firms.append(f)
        panel = build_panel(f, world.clusters)
        panels.append(panel.merge(world.clusters[["region", "cluster", "year", "stage"]]))
    return pd.concat(firms, ignore_index=True), pd.concat(panels, ignore_index=True)


def test_firm_rows_are_plausible(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    firms, _ = small_world
    assert (firms["employees"] >= 1).all()
    assert not firms.duplicated(["region", "year", "firm_id"]).any()
    assert (firms["founded_year"] <= firms["year"]).all()
    assert set(firms["ownership"]) <= set(OWNERSHIPS)
    assert (firms["wages"] > 0).all()
    withheld = NOISE.missing_revenue
    for col, rate in [
        ("revenue", withheld),
        # exports and R&D are missing on their own, and wherever revenue is
        ("exports", withheld + (1 - withheld) * NOISE.missing_exports),
        ("rd_expenditure", withheld + (1 - withheld) * NOISE.missing_rd),
    ]:
        assert firms[col].isna().mean() == pytest.approx(rate, abs=0.01)
        assert (firms[col].dropna() >= 0).all()
    assert firms.loc[firms["revenue"].isna(), ["exports", "rd_expenditure"]].isna().all().all()
    assert (firms["exports"] <= firms["revenue"]).sum() > 0.9 * firms["exports"].notna().sum()
    # a firm keeps its id, cluster, founding year and ownership for life
    life = firms.groupby(["region", "firm_id"])[["cluster", "founded_year", "ownership"]].nunique()
    assert (life == 1).all().all()


def test_size_distribution_is_skewed_and_depends_on_archetype(
    small_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    firms, _ = small_world
    arch = firms["region"].map({r.name: r.archetype for r in REGIONS})
    size = firms.groupby(arch)["employees"].median()
    assert size["fdi_assembly_hub"] > 2 * size["sme_export_district"]
    assert size["fdi_assembly_hub"] > 2 * size["italian_district"]
    emp = firms["employees"]
    assert emp.mean() > 1.5 * emp.median()  # right-skewed
    own = firms.groupby(arch)["ownership"].value_counts(normalize=True)
    assert own["fdi_assembly_hub", "foreign"] > 0.4 > own["sme_export_district", "foreign"]


def _indicators(panel: pd.DataFrame) -> pd.DataFrame:
    p = panel.sort_values(["region", "cluster", "year"]).copy()
    g = p.groupby(["region", "cluster"])
    nat = p.groupby(["cluster", "year"])[["employment", "payroll"]].transform("sum")
    p["emp_growth"] = g["employment"].pct_change()
    prev_est = g["establishments"].shift(1)
    p["entry_rate"] = p["entries"] / prev_est
    p["exit_rate"] = p["exits"] / prev_est
    p["productivity"] = p["value_added"] / p["employment"]
    p["prod_growth"] = p.groupby(["region", "cluster"])["productivity"].pct_change()
    p["rel_wage"] = (p["payroll"] / p["employment"]) / (nat["payroll"] / nat["employment"])
    p["rel_wage_change"] = p.groupby(["region", "cluster"])["rel_wage"].diff()
    p["patents_10k"] = 1e4 * p["patents"] / p["employment"]
    p["patent_change"] = p.groupby(["region", "cluster"])["patents_10k"].diff(3)
    p["inst_100"] = 100 * p["institutions"] / p["establishments"]
    return p


def test_indicators_move_with_the_stage(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    by = _indicators(small_world[1]).groupby("stage")
    mean = by[
        ["emp_growth", "entry_rate", "exit_rate", "prod_growth", "rel_wage_change", "patent_change"]
    ].mean()
    med = by[["inst_100"]].median()
    assert (
        mean.loc["growth", "emp_growth"]
        > mean.loc["mature", "emp_growth"]
        > mean.loc["decline", "emp_growth"]
    )
    assert mean.loc["emerging", "emp_growth"] > 0 > mean.loc["decline", "emp_growth"]
    assert (
        mean.loc["emerging", "entry_rate"]
        > mean.loc["growth", "entry_rate"]
        > mean.loc["decline", "entry_rate"]
    )
    assert mean.loc["decline", "exit_rate"] > mean.loc["decline", "entry_rate"]
    # renewal differs from decline by productivity, wages, innovation and entry
    for col in ("prod_growth", "rel_wage_change", "patent_change", "entry_rate"):
        assert mean.loc["renewal", col] > mean.loc["decline", col], col
    assert mean.loc["renewal", "emp_growth"] < 0.02  # employment flat or falling
    assert med.loc["mature", "inst_100"] > med.loc["emerging", "inst_100"]


def test_stage_is_not_trivially_separable(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    p = _indicators(small_world[1]).dropna(subset=["emp_growth"])
    # neighbouring stages overlap: some growth years shrink, some decline years grow
    assert (p.loc[p["stage"] == "growth", "emp_growth"] < 0).mean() > 0.05
    assert (p.loc[p["stage"] == "decline", "emp_growth"] > 0).mean() > 0.02


def test_region_totals_contain_the_clusters(small_world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    panel = small_world[1]
    ry = panel.groupby(["region", "year"]).agg(
        clusters=("employment", "sum"), total=("region_employment_total", "first")
    )
    share = ry["clusters"] / ry["total"]
    # the region is more than its clusters; they start at the archetype's share and drift
    assert share.between(0.02, 0.6).all(), share.describe()
    start = share.xs(YEARS[0], level="year")
    lo = min(a.cluster_share[0] for a in ARCHETYPES.values())
    hi = max(a.cluster_share[1] for a in ARCHETYPES.values())
    assert start.between(lo - 0.01, hi + 0.01).all()
    assert panel.groupby(["region", "year"])["region_employment_total"].nunique().max() == 1


def test_scale_multiplies_firms() -> None:
    small = simulate_region(2, seed=8, scale=0.1).firms.num_rows
    large = simulate_region(2, seed=8, scale=0.4).firms.num_rows
    assert 3.0 < large / small < 5.0


def test_a_region_is_simulated_the_same_way_twice() -> None:
    a = simulate_region(5, seed=2, scale=0.05)
    b = simulate_region(5, seed=2, scale=0.05)
    assert a.firms.equals(b.firms)
    pd.testing.assert_frame_equal(a.clusters, b.clusters)


def test_build_panel_suppresses_small_cells() -> None:
    firms = pd.DataFrame(
        {
            "region": "R",
            "cluster": ["a", "a", "b", "b", "b"],
            "year": 2010,
            "firm_id": [1, 2, 3, 4, 5],
            "employees": [5, 7, 1, 2, 3],
            "revenue": [10.0, 20.0, 1.0, 2.0, 3.0],
            "exports": [1.0, 2.0, 0.0, 1.0, 1.0],
            "rd_expenditure": [0.0, 1.0, 0.0, 0.0, 0.5],
            "patents": [0, 1, 0, 0, 0],
            "wages": [100.0, 140.0, 20.0, 40.0, 60.0],
            "founded_year": 2000,
            "ownership": "private",
        }
    )
    clusters = pd.DataFrame(
        {
            "region": "R",
            "cluster": ["a", "b"],
            "year": 2010,
            "stage": "growth",
            "institutions": [1, 2],
            "va_share": [0.5, 0.25],
            "region_employment_total": 100,
        }
    )
    panel = build_panel(firms, clusters).set_index("cluster")
    assert panel.loc["a", ["payroll", "output", "value_added", "exports"]].isna().all()
    assert panel.loc["a", "employment"] == 12 and panel.loc["a", "institutions"] == 1
    assert panel.loc["b", "payroll"] == 120.0
    assert panel.loc["b", "value_added"] == pytest.approx(6.0 * 0.25)
    assert panel.loc["b", "region_employment_total"] == 100


def test_fixed_clusters_are_kept() -> None:
    regions = (Region("Test Coast", "innovation_hub", ("Software", "Biopharma")),)
    assert region_clusters(0, 1, regions) == ("Software", "Biopharma")


# -- calibration ----------------------------------------------------------------------------------
def _panel(emp: list[float], est: list[float], pay: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"employment": emp, "establishments": est, "payroll": pay})


def test_calibration_table_values() -> None:
    real = _panel([100, 1000, 10000], [10, 20, 100], [4e6, 4e7, 0])  # 0 payroll = suppressed
    world = _panel([200, 2000, 20000], [10, 20, 100], [8e6, 1.2e8, 1e9])
    table = calibration_table(world, real).set_index("measure")
    assert list(table.index) == list(MEASURES)
    assert table.loc["log_employment", "p50_ratio"] == pytest.approx(2.0)
    assert table.loc["log_employment", "real_p50"] == pytest.approx(np.log(1000))
    assert table.loc["log_establishments", "p50_ratio"] == pytest.approx(1.0)
    assert table.loc["avg_firm_size", "p50_ratio"] == pytest.approx(100 / 50)
    assert table.loc["wage", "real_p50"] == pytest.approx(40_000)  # the suppressed row is out
    assert table.loc["wage", "real_n"] == 2
    assert table.loc["wage", "world_p50"] == pytest.approx(50_000)
    assert table.loc["wage", "p50_ratio"] == pytest.approx(50_000 / 40_000)
    assert table.loc["log_employment", "real_p10"] == pytest.approx(
        np.quantile(np.log([100, 1000, 10000]), 0.1)
    )


def test_specialisation_table_values() -> None:
    world = pd.DataFrame({"lq": [0.5, 1.0, 2.0, np.nan], "national_share": [0.01, 0.02, 0.04, 0.1]})
    real = pd.DataFrame({"lq": [0.25, 0.5, 1.0], "national_share": [0.01, 0.01, 0.01]})
    table = specialisation_table(world, real).set_index("measure")
    assert table.loc["lq", "world_p50"] == 1.0 and table.loc["lq", "world_n"] == 3
    assert table.loc["lq", "p50_ratio"] == pytest.approx(2.0)
    assert table.loc["national_share", "world_p50"] == pytest.approx(0.03)
    assert table.loc["national_share", "p50_ratio"] == pytest.approx(3.0)
    assert list(table.columns) == list(
        calibration_table(_panel([1], [1], [1]), _panel([1], [1], [1])).set_index("measure").columns
    )


def test_calibration_ignores_rows_without_employment() -> None:
    world = _panel([0, 100, 100], [1, 10, 10], [0, 1e6, 1e6])
    table = calibration_table(world, world).set_index("measure")
    assert (table["world_n"] == 2).all()
    assert (table["p50_ratio"] == 1.0).all()


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data is not present")
def test_default_world_is_within_a_factor_of_two_of_real_2016_states(tmp_path: Path) -> None:
    from features.cmp import load_cmp
    from features.loaders import load_panel
    from pipeline.build_features import compute_features
    from pipeline.generate import generate_world

    generate_world(tmp_path, seed=20240601, scale=1.0)
    panel = load_panel(tmp_path / "panel.parquet")  # the national rows become the reference
    features = compute_features(panel, grain="panel")
    real = compute_features(load_cmp(REAL), grain="cmp")
    real = real[real["traded"] & (real["employment"] > 0)]
    table = pd.concat(
        [
            calibration_table(panel[panel["year"] == 2016], load_real_traded(REAL)),
            specialisation_table(features[features["year"] == 2016], real),
        ]
    )
    assert table["p50_ratio"].between(0.5, 2.0).all(), table.to_string()


# -- documentation --------------------------------------------------------------------------------
def test_doc_tables_match_the_code() -> None:
    doc = (ROOT / "docs" / "reference-world.md").read_text(encoding="utf-8")
    assert doc_tables(doc) == render_tables(), (
        "docs/reference-world.md is out of date: paste the output of "
        "`python -m features.reference_world.tables` between its markers"
    )
