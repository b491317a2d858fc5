"""Score input rows checked one by one (features.row_checks)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import InputError
from features.row_checks import ERROR, ROW, check_rows
from features.schemas import PANEL_SCHEMA


def test_bad_rows_are_set_aside_with_their_first_problem():
    frame = pd.DataFrame(
        {
            "region": ["A", "A", "A", "A", "A", None, "B"],
            "cluster": ["x", "y", "z", "w", "v", "x", "x"],
            "year": ["2010", "2010", "2010", "1700", "2010.5", "2010", "2011"],
            "employment": ["5", "abc", "7", "3", "1", "2", "-3"],
            "establishments": ["1", "2", "2.5", "1", "1", "1", "1"],
            "junk": ["a", "b", "c", "d", "e", "f", "g"],
        }
    )
    rows, errors = check_rows(frame, PANEL_SCHEMA, first_row=11)
    assert rows[ROW].tolist() == [11]
    assert rows["year"].dtype == "int64" and rows["employment"].dtype == "float64"
    assert "junk" not in rows.columns
    assert errors[ROW].tolist() == [12, 13, 14, 15, 16, 17]
    assert errors[ERROR].tolist() == [
        "column 'employment': expected a number, found 'abc'",
        "column 'establishments': expected a whole number, found 2.5",
        "column 'year': expected a year between 1800 and 2200, found 1700",
        "column 'year': expected a whole number, found 2010.5",
        "column 'region': expected a value, found an empty cell",
        "column 'employment': expected a number ≥ 0, found -3",
    ]
    # The keys that could be read stay with the error row, so it can be found.
    assert errors["cluster"].tolist() == ["y", "z", "w", "v", "x", "x"]
    assert errors["year"].tolist()[:2] == [2010, 2010]
    assert pd.isna(errors["year"].iloc[3])


def test_a_year_too_long_for_int64_is_an_error_row_not_a_crash():
    frame = pd.DataFrame(
        {
            "region": ["A", "A"],
            "cluster": ["x", "x"],
            "year": [1e20, 2020.0],
            "employment": [1.0, 2.0],
            "establishments": [1.0, 1.0],
        }
    )
    rows, errors = check_rows(frame, PANEL_SCHEMA, first_row=1)
    assert rows["year"].tolist() == [2020]
    assert errors[ERROR].tolist() == [
        "column 'year': expected at most 15 digits, found 100000000000000000000"
    ]
    assert pd.isna(errors["year"].iloc[0]) and errors["cluster"].tolist() == ["x"]


def test_a_missing_required_column_is_bad_input_as_a_whole():
    frame = pd.DataFrame({"region": ["A"], "cluster": ["x"], "year": [2010], "employment": [1]})
    with pytest.raises(InputError, match="column 'establishments': missing required column"):
        check_rows(frame, PANEL_SCHEMA, file="p.csv")
