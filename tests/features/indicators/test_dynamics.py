import numpy as np
import pandas as pd
import pytest

from features.indicators import dynamics


def panel() -> pd.DataFrame:
    emp = {
        ("A", "x"): [10, 12, 12, 15, 18, 20],
        ("A", "y"): [30, 30, 33, 30, 27, 25],
        ("B", "x"): [20, 24, 30, 30, 33, 36],
        ("B", "y"): [40, 50, 50, 60, 66, 70],
    }
    est = {
        ("A", "x"): [2, 3, 3, 4, 4, 5],
        ("A", "y"): [5, 5, 5, 4, 4, 4],
        ("B", "x"): [4, 4, 5, 5, 6, 6],
        ("B", "y"): [8, 8, 9, 9, 9, 10],
    }
    rows = []
    for key, values in emp.items():
        for i, year in enumerate(range(2010, 2016)):
            rows.append((*key, year, float(values[i]), est[key][i]))
    return pd.DataFrame(rows, columns=["region", "cluster", "year", "employment", "establishments"])


def value(frame, out, region, cluster, year, col):
    mask = (frame["region"] == region) & (frame["cluster"] == cluster) & (frame["year"] == year)
    return out.loc[mask.to_numpy(), col].item()


def test_cagr_over_1_3_5_years():
    p = panel()
    out = dynamics(p)
    assert value(p, out, "A", "x", 2011, "emp_cagr_1y") == pytest.approx(0.2)
    assert value(p, out, "A", "x", 2013, "emp_cagr_3y") == pytest.approx((15 / 10) ** (1 / 3) - 1)
    assert value(p, out, "A", "x", 2015, "emp_cagr_5y") == pytest.approx((20 / 10) ** (1 / 5) - 1)
    assert value(p, out, "B", "y", 2015, "est_cagr_5y") == pytest.approx((10 / 8) ** 0.2 - 1)
    assert value(p, out, "A", "y", 2013, "est_cagr_1y") == pytest.approx(-0.2)
    assert np.isnan(value(p, out, "A", "x", 2012, "emp_cagr_3y"))
    assert np.isnan(value(p, out, "A", "x", 2014, "emp_cagr_5y"))


def test_cagr_uses_the_calendar_year_not_the_previous_row():
    p = panel()
    p = p[~((p["region"] == "A") & (p["cluster"] == "x") & (p["year"] == 2012))]
    out = dynamics(p)
    # 2013's previous row is 2011, but t-1 = 2012 is absent
    assert np.isnan(value(p, out, "A", "x", 2013, "emp_cagr_1y"))
    assert value(p, out, "A", "x", 2014, "emp_cagr_1y") == pytest.approx(18 / 15 - 1)
    assert value(p, out, "A", "x", 2014, "emp_cagr_3y") == pytest.approx((18 / 12) ** (1 / 3) - 1)
    assert np.isnan(value(p, out, "A", "x", 2015, "emp_cagr_3y"))


def test_cagr_from_zero_is_missing_and_to_zero_is_minus_one():
    p = panel()
    sel = (p["region"] == "A") & (p["cluster"] == "x")
    p.loc[sel & (p["year"] == 2010), "establishments"] = 0
    p.loc[sel & (p["year"] == 2012), "employment"] = 0.0
    out = dynamics(p)
    assert np.isnan(value(p, out, "A", "x", 2011, "est_cagr_1y"))
    assert value(p, out, "A", "x", 2012, "emp_cagr_1y") == pytest.approx(-1.0)
    assert np.isnan(value(p, out, "A", "x", 2013, "emp_cagr_1y"))
    assert not np.isinf(out.to_numpy()).any()


def test_shift_share_by_hand():
    p = panel()
    out = dynamics(p)
    # 2010 -> 2011: E_N 100 -> 116 (g_N = 0.16); e_Ny 70 -> 80; B,y 40 -> 50
    g_n, g_ny, g_by = 0.16, 80 / 70 - 1, 0.25
    assert value(p, out, "B", "y", 2011, "ss_national") == pytest.approx(40 * g_n)
    assert value(p, out, "B", "y", 2011, "ss_industry_mix") == pytest.approx(40 * (g_ny - g_n))
    assert value(p, out, "B", "y", 2011, "ss_regional_shift") == pytest.approx(40 * (g_by - g_ny))
    assert value(p, out, "B", "y", 2011, "regional_shift_rate") == pytest.approx(g_by - g_ny)
    # A,x grows exactly like its national cluster (10 -> 12, 30 -> 36): no regional shift
    assert value(p, out, "A", "x", 2011, "ss_regional_shift") == pytest.approx(0.0)


def test_shift_share_identity_on_every_row():
    p = panel()
    out = dynamics(p)
    prev = p.assign(year=p["year"] + 1).rename(columns={"employment": "e0"})
    joined = p.merge(prev[["region", "cluster", "year", "e0"]], how="left")
    total = out["ss_national"] + out["ss_industry_mix"] + out["ss_regional_shift"]
    expected = joined["employment"] - joined["e0"]
    known = expected.notna()
    assert known.sum() == 20
    np.testing.assert_allclose(total[known], expected[known], atol=1e-9)
    assert total[~known].isna().all()


def test_shift_share_stays_defined_when_the_cluster_starts_from_zero():
    p = panel()
    p.loc[(p["region"] == "A") & (p["cluster"] == "x") & (p["year"] == 2010), "employment"] = 0.0
    out = dynamics(p)
    assert value(p, out, "A", "x", 2011, "ss_national") == 0.0
    assert value(p, out, "A", "x", 2011, "ss_regional_shift") == pytest.approx(12.0)
    assert np.isnan(value(p, out, "A", "x", 2011, "regional_shift_rate"))


def test_growth_vs_national_3y():
    p = panel()
    out = dynamics(p)
    # 2010 -> 2013: B,y 40 -> 60; national y 70 -> 90
    expected = (60 / 40) ** (1 / 3) - (90 / 70) ** (1 / 3)
    assert value(p, out, "B", "y", 2013, "growth_vs_national_3y") == pytest.approx(expected)


def test_missing_establishments_give_missing_establishment_growth():
    p = panel().drop(columns="establishments")
    out = dynamics(p)
    assert out[[f"est_cagr_{k}y" for k in (1, 3, 5)]].isna().all().all()
    assert out["emp_cagr_1y"].notna().sum() == 20


def test_national_growth_compares_the_same_regions_in_both_years():
    p = panel()
    # B,x suppressed in 2011: national x growth 2010 -> 2011 is A's alone (10 -> 12).
    p.loc[(p["region"] == "B") & (p["cluster"] == "x") & (p["year"] == 2011), "employment"] = np.nan
    out = dynamics(p)
    assert value(p, out, "A", "x", 2011, "regional_shift_rate") == pytest.approx(0.0)
    assert value(p, out, "A", "x", 2011, "ss_regional_shift") == pytest.approx(0.0)
    # E_N over the regions with both totals: A 40 -> 42 and B 60 -> 50 (x left out of B's sum)
    g_n = (42 + 50) / (40 + 60) - 1
    assert value(p, out, "A", "x", 2011, "ss_national") == pytest.approx(10 * g_n)
    # three years on, B,x is known at both ends again: 2010 -> 2013 is x 30 -> 45
    expected = (15 / 10) ** (1 / 3) - (45 / 30) ** (1 / 3)
    assert value(p, out, "A", "x", 2013, "growth_vs_national_3y") == pytest.approx(expected)


def test_a_region_missing_in_one_year_does_not_pass_for_national_growth():
    p = panel()
    p = p[~((p["region"] == "B") & (p["year"] == 2010))].reset_index(drop=True)
    out = dynamics(p)
    # 2010 holds A only: 2010 -> 2011 compares A with A (x 10 -> 12, totals 40 -> 42)
    assert value(p, out, "A", "x", 2011, "regional_shift_rate") == pytest.approx(0.0)
    assert value(p, out, "A", "y", 2011, "ss_national") == pytest.approx(30 * (42 / 40 - 1))


def test_national_reference_growth_needs_both_years_of_the_reference():
    p = panel()
    national = pd.DataFrame(
        {
            "cluster": ["x", "x", "Insgesamt", "Insgesamt"],
            "year": [2011, 2012, 2011, 2012],
            "employment": [100.0, 150.0, 1000.0, 1100.0],
        }
    )
    out = dynamics(p, national=national)
    # 2011 -> 2012 from the reference: x grows 50 %, the nation 10 %
    assert value(p, out, "A", "x", 2012, "regional_shift_rate") == pytest.approx(0.0 - 0.5)
    assert value(p, out, "A", "x", 2012, "ss_national") == pytest.approx(12 * 0.1)
    # 2010 -> 2011: the reference lacks 2010, so both years come from the frame (x 30 -> 36)
    assert value(p, out, "A", "x", 2011, "regional_shift_rate") == pytest.approx(0.2 - 0.2)
    assert value(p, out, "A", "x", 2011, "ss_national") == pytest.approx(10 * 0.16)


def test_growth_vs_national_3y_uses_the_references_three_year_growth():
    years = [2010, 2011, 2012, 2013]
    p = pd.DataFrame(
        {
            "region": "A",
            "cluster": "x",
            "year": years,
            "employment": [100.0, 110.0, 121.0, 133.1],
            "establishments": 10.0,
        }
    )
    national = pd.DataFrame(
        {"cluster": "x", "year": years, "employment": [1000.0, 1200.0, 1440.0, 1728.0]}
    )
    out = dynamics(p, national=national)
    # the cluster grows 10 %/yr, the nation 20 %/yr over the same three years
    assert value(p, out, "A", "x", 2013, "growth_vs_national_3y") == pytest.approx(-0.10)
