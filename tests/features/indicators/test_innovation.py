import numpy as np
import pandas as pd

from features.indicators import innovation


def test_innovation_by_hand():
    p = pd.DataFrame(
        {
            "region": ["A", "B", "C"],
            "cluster": ["x", "x", "x"],
            "year": [2020, 2020, 2020],
            "employment": [2000.0, 0.0, 500.0],
            "establishments": [10, 0, 5],
            "output": [1e6, 0.0, np.nan],
            "rd_expenditure": [3e4, 0.0, 1e3],
            "patents": [4.0, 1.0, 0.0],
        }
    )
    out = innovation(p)
    np.testing.assert_allclose(out["rd_intensity"], [0.03, np.nan, np.nan])
    np.testing.assert_allclose(out["patents_per_10k"], [20.0, np.nan, 0.0])


def test_missing_columns_give_missing_features():
    p = pd.DataFrame(
        {
            "region": ["A"],
            "cluster": ["x"],
            "year": [2020],
            "employment": [1.0],
            "establishments": [1],
        }
    )
    out = innovation(p)
    assert list(out.columns) == [
        "rd_intensity",
        "patents_per_10k",
        "rd_intensity_change_3y",
        "patents_per_10k_change_3y",
    ]
    assert out.isna().all().all()


def test_three_year_changes_use_the_calendar_year():
    p = pd.DataFrame(
        {
            "region": ["A"] * 4,
            "cluster": ["x"] * 4,
            "year": [2010, 2011, 2013, 2014],  # 2012 absent
            "employment": [100.0] * 4,
            "establishments": [10] * 4,
            "patents": [1.0, 2.0, 4.0, 8.0],
            "rd_expenditure": [1.0, 1.0, 3.0, 2.0],
            "output": [100.0] * 4,
        }
    )
    out = innovation(p)
    # 2013 - 2010 and 2014 - 2011; 2010 and 2011 have no year t-3
    np.testing.assert_allclose(out["patents_per_10k_change_3y"], [np.nan, np.nan, 300.0, 600.0])
    np.testing.assert_allclose(out["rd_intensity_change_3y"], [np.nan, np.nan, 0.02, 0.01])
