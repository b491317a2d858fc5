import numpy as np
import pandas as pd
import pytest

from features.indicators import structure


def panel() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["A", "A", "A", "B", "B", "B"],
            "cluster": ["x"] * 6,
            "year": [2010, 2011, 2013, 2010, 2011, 2012],
            "employment": [100.0, 120.0, 90.0, 50.0, 0.0, 40.0],
            "establishments": [10, 12, 9, 0, 5, 4],
            "sme_employment": [40.0, 60.0, 45.0, 50.0, 0.0, 40.0],
            "top4_employment": [50.0, 48.0, 45.0, 50.0, 0.0, 40.0],
            "entries": [np.nan, 4.0, 2.0, np.nan, 5.0, 1.0],
            "exits": [np.nan, 2.0, 3.0, np.nan, 0.0, 2.0],
            "hhi": [0.2, 0.18, 0.25, 1.0, np.nan, 0.5],
            "gini": [0.4, 0.42, 0.5, 0.0, np.nan, 0.1],
            "median_firm_age": [7.0, 8.0, 9.5, 1.0, 2.0, 3.0],
        }
    )


def test_structure_by_hand():
    out = structure(panel())
    np.testing.assert_allclose(out["avg_firm_size"], [10, 10, 10, np.nan, 0, 10])
    np.testing.assert_allclose(out["sme_share"], [0.4, 0.5, 0.5, 1.0, np.nan, 1.0])
    np.testing.assert_allclose(out["cr4"], [0.5, 0.4, 0.5, 1.0, np.nan, 1.0])
    # rates divide by establishments of calendar year t-1: A 2011 by 10; A 2013 has no 2012
    np.testing.assert_allclose(out["entry_rate"], [np.nan, 0.4, np.nan, np.nan, np.nan, 0.2])
    np.testing.assert_allclose(out["exit_rate"], [np.nan, 0.2, np.nan, np.nan, np.nan, 0.4])
    np.testing.assert_allclose(out["net_entry_rate"], [np.nan, 0.2, np.nan, np.nan, np.nan, -0.2])


def test_microdata_columns_pass_through():
    p = panel()
    out = structure(p)
    np.testing.assert_array_equal(out["hhi"], p["hhi"])
    np.testing.assert_array_equal(out["gini"], p["gini"])
    np.testing.assert_array_equal(out["median_firm_age"], p["median_firm_age"])


def test_division_by_zero_establishments_is_nan_not_inf():
    out = structure(panel())
    # B 2010 has 0 establishments: B 2011's entry rate (5 / 0) is missing, not inf
    assert np.isnan(out.loc[4, "entry_rate"])
    assert not np.isinf(out.to_numpy()).any()


def test_missing_columns_give_missing_features():
    p = panel()[["region", "cluster", "year", "employment", "establishments"]]
    out = structure(p)
    assert list(out.columns) == [
        "avg_firm_size",
        "sme_share",
        "hhi",
        "cr4",
        "gini",
        "entry_rate",
        "exit_rate",
        "net_entry_rate",
        "median_firm_age",
        "cr4_change_3y",
        "hhi_change_3y",
    ]
    assert out.drop(columns="avg_firm_size").isna().all().all()
    assert out["avg_firm_size"].iloc[0] == pytest.approx(10.0)


def test_three_year_changes_of_concentration():
    p = pd.DataFrame(
        {
            "region": ["A"] * 5,
            "cluster": ["x"] * 5,
            "year": [2010, 2011, 2013, 2014, 2016],
            "employment": [100.0, 100.0, 100.0, 50.0, 0.0],
            "establishments": [10, 10, 10, 5, 1],
            "top4_employment": [40.0, 30.0, 55.0, 30.0, 0.0],
            "hhi": [0.10, 0.20, 0.25, np.nan, 0.5],
        }
    )
    out = structure(p)
    # 2013 - 2010: cr4 0.55 - 0.40, hhi 0.25 - 0.10; 2014 - 2011: cr4 0.6 - 0.3, hhi missing;
    # 2016 - 2013: cr4 is missing (no employment), hhi 0.5 - 0.25
    np.testing.assert_allclose(out["cr4_change_3y"], [np.nan, np.nan, 0.15, 0.3, np.nan])
    np.testing.assert_allclose(out["hhi_change_3y"], [np.nan, np.nan, 0.15, np.nan, 0.25])
