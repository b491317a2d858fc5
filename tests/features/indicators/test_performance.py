import numpy as np
import pandas as pd
import pytest

from features.indicators import performance


def panel() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["A", "B", "C", "A"],
            "cluster": ["x", "x", "x", "y"],
            "year": [2015] * 4,
            "employment": [10.0, 30.0, 20.0, 5.0],
            "establishments": [2, 3, 4, 1],
            "payroll": [500.0, 1200.0, np.nan, 300.0],
            "output": [1000.0, 3000.0, 0.0, 400.0],
            "value_added": [400.0, np.nan, 100.0, 200.0],
            "exports": [500.0, 600.0, 10.0, 0.0],
        }
    )


def test_wage_and_relative_wage():
    out = performance(panel())
    np.testing.assert_allclose(out["wage"], [50, 40, np.nan, 60])
    # national wage of x over rows with both payroll and employment: 1700 / 40 = 42.5
    np.testing.assert_allclose(out["relative_wage"], [50 / 42.5, 40 / 42.5, np.nan, 1.0])


def test_productivity_uses_value_added_when_the_input_has_it():
    out = performance(panel())
    # value added exists, so a missing value stays missing (no row-wise mix with output)
    np.testing.assert_allclose(out["productivity"], [40, np.nan, 5, 40])


def test_productivity_falls_back_to_output_without_value_added():
    out = performance(panel().drop(columns="value_added"))
    np.testing.assert_allclose(out["productivity"], [100, 100, 0, 80])
    out = performance(panel().assign(value_added=np.nan))
    np.testing.assert_allclose(out["productivity"], [100, 100, 0, 80])


def test_export_intensity_and_zero_output():
    out = performance(panel())
    np.testing.assert_allclose(out["export_intensity"], [0.5, 0.2, np.nan, 0.0])
    assert not np.isinf(out.to_numpy()).any()


def test_published_wage_is_kept_and_relative_to_reported_jobs():
    p = panel().assign(
        wage=[55.0, 45.0, 0.0, 60.0],
        employment_reported=[10.0, 20.0, 20.0, 5.0],
    )
    p.loc[2, "employment"] = 0.0
    out = performance(p)
    # published wage kept, except where there is no employment
    np.testing.assert_allclose(out["wage"], [55, 45, np.nan, 60])
    # national wage of x: payroll / reported jobs over rows with both: 1700 / 30
    assert out.loc[0, "relative_wage"] == pytest.approx(55 / (1700 / 30))


def test_missing_columns_give_missing_features():
    p = panel()[["region", "cluster", "year", "employment", "establishments"]]
    assert performance(p).isna().all().all()


def test_productivity_and_wage_growth_over_three_years():
    p = pd.DataFrame(
        {
            "region": ["A"] * 4,
            "cluster": ["x"] * 4,
            "year": [2010, 2011, 2012, 2013],
            "employment": [100.0, 100.0, 100.0, 50.0],
            "establishments": [10] * 4,
            "value_added": [1000.0, 1000.0, 1000.0, 4000.0],
            "payroll": [500.0, 500.0, 500.0, 500.0],
        }
    )
    out = performance(p)
    # 2013: productivity 80 vs 10 three years before -> 2 per year; wage 10 vs 5 -> 2^(1/3)
    np.testing.assert_allclose(out["productivity_cagr_3y"], [np.nan, np.nan, np.nan, 1.0])
    np.testing.assert_allclose(out["wage_cagr_3y"], [np.nan, np.nan, np.nan, 2 ** (1 / 3) - 1])


def test_one_year_growth_and_value_added_share():
    p = pd.DataFrame(
        {
            "region": ["A"] * 5,
            "cluster": ["x"] * 5,
            "year": [2010, 2011, 2012, 2013, 2015],
            "employment": [10.0, 10.0, 20.0, 20.0, 20.0],
            "payroll": [100.0, 110.0, 200.0, 240.0, 240.0],
            "output": [100.0, 100.0, 200.0, 0.0, 400.0],
            "value_added": [40.0, 50.0, 80.0, 90.0, 200.0],
        }
    )
    out = performance(p)
    # productivity 4, 5, 4, 4.5, 10; wage 10, 11, 10, 12, 12; 2014 is absent
    np.testing.assert_allclose(out["productivity_cagr_1y"], [np.nan, 0.25, -0.2, 0.125, np.nan])
    np.testing.assert_allclose(out["wage_cagr_1y"], [np.nan, 0.1, 10 / 11 - 1, 0.2, np.nan])
    np.testing.assert_allclose(out["va_share"], [0.4, 0.5, 0.4, np.nan, 0.5])
    # t-3: 2013 looks at 2010 (0.4), 2015 at 2012 (0.4)
    np.testing.assert_allclose(out["va_share_change_3y"], [np.nan, np.nan, np.nan, np.nan, 0.1])


def test_relative_wage_divides_by_employment_where_reported_jobs_are_missing():
    # A Cluster Mapping export without emp_reported_tl gets an all-missing column.
    out = performance(panel().assign(employment_reported=np.nan))
    np.testing.assert_allclose(out["relative_wage"], [50 / 42.5, 40 / 42.5, np.nan, 1.0])
    # Mixed: A reports 10 jobs behind its payroll, B none (its employment, 30, is used): 1700 / 40
    mixed = performance(panel().assign(employment_reported=[10.0, np.nan, np.nan, 5.0]))
    assert mixed.loc[1, "relative_wage"] == pytest.approx(40 / 42.5)
