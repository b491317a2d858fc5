"""The comparative rows a cluster is ranked among: those of its own year, widened when too few."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.reference import year_reference


def _two_years() -> tuple[pd.DataFrame, np.ndarray]:
    """40 comparative clusters in 2000 with rd_intensity 0..39, 40 in 2024 with 100..139."""
    values = np.r_[np.arange(40.0), 100.0 + np.arange(40.0)]
    ref = pd.DataFrame({"rd_intensity": values, "entry_rate": np.zeros(80), "lq": np.zeros(80)})
    return ref, np.repeat([2000, 2024], 40)


def test_year_reference_keeps_the_same_year_or_widens_to_the_nearest():
    ref, years = _two_years()
    same = year_reference(ref, years, 2024, min_rows=30)
    assert same["rd_intensity"].dropna().tolist() == list(100.0 + np.arange(40.0))
    # 2023: no rows of its own; the window widens to 2024 (1 year away), not to 2000
    assert year_reference(ref, years, 2023, min_rows=30)["rd_intensity"].min() == 100.0
    # too few in 2024 alone: the window widens until it reaches 2000 too
    wide = year_reference(ref, years, 2024, min_rows=50)
    assert wide["rd_intensity"].notna().sum() == 80
    with pytest.raises(ValueError, match="reference years"):
        year_reference(ref, years[:3], 2024)


def test_a_feature_too_sparse_in_its_year_is_widened_alone():
    ref, years = _two_years()
    ref.loc[years == 2024, "lq"] = np.nan
    ref.loc[np.flatnonzero(years == 2024)[:5], "lq"] = 7.0
    got = year_reference(ref, years, 2024, min_rows=30)
    # rd_intensity keeps its own year; lq, known for 5 clusters of 2024, takes 2000's as well
    assert got["rd_intensity"].notna().sum() == 40
    assert got["lq"].notna().sum() == 45
