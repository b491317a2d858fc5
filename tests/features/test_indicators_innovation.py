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
    assert list(out.columns) == ["rd_intensity", "patents_per_10k"]
    assert out.isna().all().all()
