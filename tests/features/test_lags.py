import numpy as np
import pandas as pd
import pytest

from features.catalogue import FEATURES
from features.lags import (
    DEFAULT_LAGGED,
    add_lags,
    base_feature,
    lag_columns,
    lag_name,
    lag_names,
    parse_lag,
)


def frame() -> pd.DataFrame:
    # Rows out of order, a missing year (A x 2012) and two clusters of one region.
    return pd.DataFrame(
        {
            "region": ["A", "A", "A", "A", "B", "A"],
            "cluster": ["x", "x", "x", "y", "x", "x"],
            "year": [2013, 2010, 2011, 2011, 2011, 2014],
            "entry_rate": [0.13, 0.10, 0.11, 0.50, 0.90, 0.14],
            "wage": [4.0, 1.0, 2.0, 7.0, 9.0, 5.0],
        }
    )


def test_lags_are_calendar_years_within_region_and_cluster():
    out = add_lags(frame(), ["entry_rate_lag1", "entry_rate_lag3", "wage_lag2"])
    # A x 2013: 2012 is absent, so lag 1 is missing; lag 3 is 2010.
    np.testing.assert_allclose(out["entry_rate_lag1"], [np.nan, np.nan, 0.10, np.nan, np.nan, 0.13])
    np.testing.assert_allclose(out["entry_rate_lag3"], [0.10, np.nan, np.nan, np.nan, np.nan, 0.11])
    np.testing.assert_allclose(out["wage_lag2"], [2.0, np.nan, np.nan, np.nan, np.nan, np.nan])


def test_rows_keep_their_order_index_and_columns():
    f = frame().set_axis([10, 11, 12, 13, 14, 15])
    out = add_lags(f, ["wage_lag1"])
    pd.testing.assert_frame_equal(out[f.columns], f)
    assert list(out.columns) == [*f.columns, "wage_lag1"]
    assert out.loc[15, "wage_lag1"] == 4.0
    assert add_lags(f, []) is f


def test_existing_lag_columns_are_recomputed():
    f = add_lags(frame(), ["wage_lag1"]).assign(wage=lambda d: d["wage"] * 10)
    out = add_lags(f, ["wage_lag1"])
    assert out.loc[5, "wage_lag1"] == 40.0
    assert list(out.columns).count("wage_lag1") == 1


def test_names_parse_back():
    assert lag_name("entry_rate", 2) == "entry_rate_lag2"
    assert lag_names(["a", "b"], 2) == ["a_lag1", "b_lag1", "a_lag2", "b_lag2"]
    assert lag_names(["a"], 0) == []
    assert parse_lag("cr4_change_3y_lag12") == ("cr4_change_3y", 12)
    assert parse_lag("emp_cagr_3y") is None
    assert parse_lag("x_lag0") is None
    assert base_feature("entry_rate_lag1") == "entry_rate"
    assert base_feature("entry_rate") == "entry_rate"
    assert lag_columns(["a", "a_lag1", "year", "b_lag2"]) == ["a_lag1", "b_lag2"]


def test_bad_requests_name_the_column():
    with pytest.raises(ValueError, match="'wage' is not a lag column"):
        add_lags(frame(), ["wage"])
    with pytest.raises(ValueError, match="needs the feature 'gini'"):
        add_lags(frame(), ["gini_lag1"])


def test_default_lagged_features_are_one_year_catalogue_features():
    assert set(DEFAULT_LAGGED) <= set(FEATURES)
    assert not any(name.endswith(("_3y", "_5y")) for name in DEFAULT_LAGGED)
