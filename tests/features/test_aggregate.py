"""features.aggregate.firms_to_panel, pinned by hand on small firm tables (it was rewritten for
speed: integer codes and radix sorts instead of string groupbys)."""

import numpy as np
import pandas as pd
import pytest

from features.aggregate import firms_to_panel


def firms() -> pd.DataFrame:
    # region R, cluster "b": firms 1..3 in 2010, 1 and 2 in 2011 (3 exits), 1, 2, 4 in 2013
    # (no 2012 rows); firm 5 moves from cluster "a" (2010) to "b"... of region S.
    rows = [
        ("R", "b", 2010, 1, 300, 2000),
        ("R", "b", 2010, 2, 100, 2005),
        ("R", "b", 2010, 3, 100, 2008),
        ("R", "b", 2011, 1, 320, 2000),
        ("R", "b", 2011, 2, 80, 2005),
        ("R", "b", 2013, 1, 330, 2000),
        ("R", "b", 2013, 2, 70, 2005),
        ("R", "b", 2013, 4, 10, np.nan),
        ("S", "a", 2010, 5, 40, 2001),
        ("S", "a", 2010, 6, 60, 2001),
        ("S", "a", 2011, 6, 50, 2001),
        ("S", "b", 2011, 5, 45, 2001),
    ]
    frame = pd.DataFrame(
        rows, columns=["region", "cluster", "year", "firm_id", "employees", "founded_year"]
    )
    frame["wages"] = frame["employees"] * 10.0
    frame.loc[frame["region"] == "S", "wages"] = np.nan
    # shuffled: the result must not depend on the input order
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


def one_group(**columns: list) -> pd.DataFrame:
    """Firms of one region x cluster x year (R, x, 2020), one per value of each column."""
    n = len(next(iter(columns.values())))
    return pd.DataFrame(
        {"region": "R", "cluster": "x", "year": 2020, "firm_id": range(n), **columns}
    )


def row(panel: pd.DataFrame, region: str, cluster: str, year: int) -> pd.Series:
    hit = panel[
        (panel["region"] == region) & (panel["cluster"] == cluster) & (panel["year"] == year)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_keys_sorted_and_dtypes():
    panel = firms_to_panel(firms())
    keys = list(panel[["region", "cluster", "year"]].itertuples(index=False, name=None))
    assert keys == [
        ("R", "b", 2010), ("R", "b", 2011), ("R", "b", 2013),
        ("S", "a", 2010), ("S", "a", 2011), ("S", "b", 2011),
    ]  # fmt: skip
    assert panel["establishments"].dtype == "int64"
    assert panel["employment"].dtype == "float64"


def test_sums_shares_and_concentration_by_hand():
    p = row(firms_to_panel(firms()), "R", "b", 2010)
    assert p["employment"] == 500 and p["establishments"] == 3
    assert p["sme_employment"] == 200  # the 300-employee firm is not an SME (< 250)
    assert p["top4_employment"] == 500
    assert p["payroll"] == 5000
    assert p["hhi"] == pytest.approx((300**2 + 100**2 + 100**2) / 500**2)
    # Gini of (100, 100, 300): mean absolute difference / (2 * mean)
    x = np.array([100, 100, 300])
    gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert p["gini"] == pytest.approx(gini)
    assert p["median_firm_age"] == 5.0  # ages 10, 5, 2


def test_money_sums_are_scaled_up_for_firms_that_did_not_report():
    f = one_group(
        employees=[10.0, 30.0, 60.0],
        wages=[500.0, 1200.0, np.nan],
        revenue=[1000.0, np.nan, np.nan],
    )
    p = row(firms_to_panel(f), "R", "x", 2020)
    # wages cover 40 of 100 employees at 1700: payroll 1700 * 100 / 40, a mean wage of 42.5
    assert p["payroll"] == pytest.approx(4250.0)
    assert p["payroll"] / p["employment"] == pytest.approx(1700 / 40)
    assert p["output"] == pytest.approx(10_000.0)  # 100 per employee, from firm 1 alone
    # nobody (or only firms without staff) reporting leaves the sum missing
    blank = firms_to_panel(f.assign(wages=np.nan, employees=[0.0, 30.0, 60.0], revenue=np.nan))
    assert np.isnan(blank.loc[0, "payroll"]) and np.isnan(blank.loc[0, "output"])
    staffless = firms_to_panel(f.assign(employees=[0.0, 0.0, 60.0]))
    assert np.isnan(staffless.loc[0, "payroll"])


def test_exports_and_rd_are_scaled_by_the_revenue_of_the_firms_that_report_them():
    f = one_group(
        employees=[10.0, 30.0, 60.0],
        revenue=[1000.0, 3000.0, 12000.0],
        exports=[500.0, np.nan, 600.0],
        rd_expenditure=[np.nan, 300.0, np.nan],
    )
    p = row(firms_to_panel(f), "R", "x", 2020)
    assert p["output"] == 16_000.0
    # firms 1 and 3 export 1100 of their 13000 turnover: the group exports that share of 16000
    assert p["exports"] / p["output"] == pytest.approx(1100 / 13000)
    assert p["rd_expenditure"] / p["output"] == pytest.approx(0.1)
    # a firm that reports exports but not its turnover cannot say what share they are
    no_turnover = firms_to_panel(f.assign(revenue=[np.nan, 3000.0, np.nan]))
    assert np.isnan(no_turnover.loc[0, "exports"])


def test_top4_keeps_only_the_four_largest():
    p = firms_to_panel(one_group(employees=[5, 50, 7, 40, 30, 20])).iloc[0]
    assert p["top4_employment"] == 140
    assert p["employment"] == 152


def test_entries_and_exits_follow_calendar_years():
    panel = firms_to_panel(firms())
    first = row(panel, "R", "b", 2010)
    assert np.isnan(first["entries"]) and np.isnan(first["exits"])  # first year: unknown
    y2011 = row(panel, "R", "b", 2011)
    assert y2011["entries"] == 0 and y2011["exits"] == 1  # firm 3 left
    y2013 = row(panel, "R", "b", 2013)
    # no 2012 rows: every 2013 firm counts as entering, exits cannot be counted
    assert y2013["entries"] == 3 and np.isnan(y2013["exits"])
    assert y2013["median_firm_age"] == pytest.approx(10.5)  # ages 13, 8 and one unknown


def test_a_firm_changing_cluster_exits_one_and_enters_the_other():
    panel = firms_to_panel(firms())
    a = row(panel, "S", "a", 2011)
    assert a["entries"] == 0 and a["exits"] == 1
    b = row(panel, "S", "b", 2011)
    assert np.isnan(b["entries"])  # the first year of S x b
    assert np.isnan(row(panel, "S", "a", 2010)["payroll"])  # all wages missing stay missing


def test_same_result_for_categorical_keys_wide_ids_and_string_ids():
    base = firms_to_panel(firms())
    cat = firms().astype({"region": "category", "cluster": "category"})
    pd.testing.assert_frame_equal(firms_to_panel(cat), base)
    wide = firms().assign(firm_id=lambda f: f["firm_id"] * 10**12)  # the sort path
    pd.testing.assert_frame_equal(firms_to_panel(wide), base)
    text = firms().assign(firm_id=lambda f: "F" + f["firm_id"].astype(str))
    pd.testing.assert_frame_equal(firms_to_panel(text), base)


def test_fractional_sizes_and_ages():
    f = firms().assign(employees=lambda d: d["employees"] + 0.5)
    f["founded_year"] = f["founded_year"] + 0.25
    p = row(firms_to_panel(f), "R", "b", 2010)
    assert p["employment"] == 501.5
    assert p["top4_employment"] == 501.5
    assert p["median_firm_age"] == pytest.approx(4.75)


def test_many_firms_agree_with_a_plain_pandas_aggregation():
    rng = np.random.default_rng(5)
    n = 20_000
    f = pd.DataFrame(
        {
            "region": rng.choice(["North", "South", "East"], n),
            "cluster": rng.choice(["x", "y"], n),
            "year": rng.integers(2000, 2010, n),
            "firm_id": np.arange(n),
            "employees": rng.integers(0, 600, n),
        }
    )
    panel = firms_to_panel(f)
    g = f.groupby(["region", "cluster", "year"])["employees"]
    expected = pd.DataFrame(
        {
            "employment": g.sum().astype(float),
            "establishments": g.size(),
            "top4_employment": g.apply(lambda s: s.nlargest(4).sum()).astype(float),
            "hhi": g.apply(lambda s: ((s / s.sum()) ** 2).sum()),
        }
    ).reset_index()
    pd.testing.assert_frame_equal(panel[expected.columns], expected, check_dtype=False)
