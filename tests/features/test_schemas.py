"""The input schemas: parsing, checks and the one-line message of the first failure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from features.schemas import (
    FIRMS_SCHEMA,
    LABELS_SCHEMA,
    PANEL_SCHEMA,
    REGION_TOTALS_SCHEMA,
    describe,
    validate,
)


def _panel(**overrides: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {
        "region": ["A", "A", "B", "B"],
        "cluster": ["x", "y", "x", "y"],
        "year": ["2008.0", "2008", "2008", "2008"],
        "employment": ["10", "20", "30", "40"],
        "establishments": ["1", "2", None, "3"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def _error(frame: pd.DataFrame, schema=PANEL_SCHEMA, names=None) -> InputError:
    with pytest.raises(InputError) as err:
        validate(frame, schema, "in.csv", names)
    return err.value


def test_text_cells_are_parsed_into_the_contract_types() -> None:
    out = validate(_panel(), PANEL_SCHEMA, "in.csv")
    assert out["year"].dtype == "int64" and out["year"].tolist() == [2008] * 4
    assert out["employment"].dtype == "float64" and out["employment"].tolist() == [10, 20, 30, 40]
    # a missing establishment count leaves the column float with NaN, not 0
    assert out["establishments"].dtype == "float64"
    assert out["establishments"].isna().tolist() == [False, False, True, False]
    assert pd.api.types.is_string_dtype(out["region"])


def test_complete_whole_numbers_stay_int64() -> None:
    out = validate(_panel(establishments=["1", "2", "5", "3"]), PANEL_SCHEMA, "in.csv")
    assert out["establishments"].dtype == "int64"
    assert out["establishments"].tolist() == [1, 2, 5, 3]


def test_negative_employment_names_file_column_row_and_value() -> None:
    err = _error(_panel(employment=["10", "20", "30", "-3"]))
    assert str(err) == "in.csv, column 'employment', row 4: expected a number ≥ 0, found -3"
    assert (err.column, err.row) == ("employment", 4)


def test_text_in_a_number_column() -> None:
    err = _error(_panel(employment=["10", "abc", "30", "40"]))
    assert str(err) == "in.csv, column 'employment', row 2: expected a number, found 'abc'"


def test_message_uses_the_source_column_name() -> None:
    err = _error(_panel(employment=["10", "20", "-1", "40"]), names={"employment": "emp"})
    assert str(err) == "in.csv, column 'emp', row 3: expected a number ≥ 0, found -1"


def test_first_failure_by_row_wins_across_columns_and_kinds() -> None:
    # row 3 has a negative count, row 2 a bad year and row 4 text in employment
    frame = _panel(
        year=["2008", "twenty", "2008", "2008"],
        employment=["1", "2", "3", "x"],
        establishments=["1", "2", "-1", "3"],
    )
    assert str(_error(frame)) == (
        "in.csv, column 'year', row 2: expected a whole number, found 'twenty'"
    )


def test_within_a_row_the_leftmost_column_wins() -> None:
    frame = _panel(employment=["1", "-2", "3", "4"], establishments=["1", "-5", "1", "1"])
    assert _error(frame).column == "employment"


def test_fractions_where_whole_numbers_are_expected() -> None:
    assert str(_error(_panel(year=["2008", "2008.5", "2008", "2008"]))) == (
        "in.csv, column 'year', row 2: expected a whole number, found 2008.5"
    )
    err = _error(_panel(establishments=["1", "2", "2.5", "3"]))
    assert (err.column, err.row) == ("establishments", 3)


def test_a_whole_number_too_long_for_int64_is_named_as_written() -> None:
    # 1e20 used to wrap round to -9223372036854775808 in the cast to int64
    assert str(_error(_panel(year=["2008", "99999999999999999999", "2008", "2008"]))) == (
        "in.csv, column 'year', row 2: expected at most 15 digits, found 100000000000000000000"
    )


def test_implausible_year() -> None:
    err = _error(_panel(year=["2008", "2008", "20008", "2008"]))
    assert (
        str(err)
        == "in.csv, column 'year', row 3: expected a year between 1800 and 2200, found 20008"
    )


def test_empty_key_cell() -> None:
    err = _error(_panel(region=["A", "  ", "B", "B"]))
    assert str(err) == "in.csv, column 'region', row 2: expected a value, found an empty cell"


def test_duplicate_key_reports_the_second_occurrence() -> None:
    err = _error(_panel(cluster=["x", "y", "y", "y"]))
    assert str(err) == (
        "in.csv, row 4: duplicate key (region 'B', cluster 'y', year 2008): expected one row "
        "per region × cluster × year, found the same key in row 3"
    )
    assert err.column is None and err.row == 4


def test_keys_equal_after_parsing_are_duplicates() -> None:
    # "2008.0" and "2008" are the same year
    err = _error(_panel(cluster=["x", "x", "x", "y"], region=["A", "A", "B", "B"]))
    assert err.row == 2 and "found the same key in row 1" in str(err)


def test_infinite_values_are_rejected() -> None:
    err = _error(_panel(employment=["1", "inf", "3", "4"]))
    assert (err.column, err.row) == ("employment", 2)
    assert "finite" in err.message


def test_boolean_column_where_numbers_are_expected() -> None:
    frame = _panel()
    frame["employment"] = [True, False, True, True]
    err = _error(frame)
    assert err.column == "employment" and err.row is None


def test_labels_stage_vocabulary_is_case_insensitive_and_strict() -> None:
    frame = pd.DataFrame(
        {
            "region": ["A", "A"],
            "cluster": ["x", "y"],
            "year": [2010, 2010],
            "stage": [" Growth", "MATURE"],
        }
    )
    out = validate(frame, LABELS_SCHEMA, "labels.csv")
    assert out["stage"].tolist() == ["growth", "mature"]
    frame.loc[1, "stage"] = "boom"
    assert str(_error(frame, LABELS_SCHEMA)) == (
        "in.csv, column 'stage', row 2: expected one of emerging, growth, mature, decline, "
        "renewal, found 'boom'"
    )


def test_labels_confidence_between_zero_and_one() -> None:
    frame = pd.DataFrame(
        {
            "region": ["A"],
            "cluster": ["x"],
            "year": [2010],
            "stage": ["growth"],
            "confidence": [1.5],
        }
    )
    assert str(_error(frame, LABELS_SCHEMA)) == (
        "in.csv, column 'confidence', row 1: expected a number between 0 and 1, found 1.5"
    )


def test_firms_keys_are_region_firm_year_and_ids_keep_their_type() -> None:
    frame = pd.DataFrame(
        {
            "region": ["A", "A", "A"],
            "cluster": ["x", "y", "x"],
            "year": [2010, 2010, 2011],
            "firm_id": [7, 8, 7],
            "employees": [3, 4, 5],
        }
    )
    out = validate(frame, FIRMS_SCHEMA, "firms.csv")
    assert out["firm_id"].dtype == "int64" and out["employees"].dtype == "float64"
    frame.loc[1, "firm_id"] = 7  # the same firm twice in one region-year, in two clusters
    err = _error(frame, FIRMS_SCHEMA)
    assert err.row == 2 and "region × firm_id × year" in err.message


def test_firms_require_employees_per_row() -> None:
    frame = pd.DataFrame(
        {"region": ["A"], "cluster": ["x"], "year": [2010], "firm_id": ["f"], "employees": [None]}
    )
    err = _error(frame, FIRMS_SCHEMA)
    assert (err.column, err.row) == ("employees", 1)


def test_flags_parse_common_spellings_and_reject_others() -> None:
    frame = _panel(traded=["TRUE", "false", "1", "No"], published_strong=["TRUE", "NA", None, "0"])
    out = validate(frame, PANEL_SCHEMA, "in.csv")
    assert out["traded"].dtype == bool and out["traded"].tolist() == [True, False, True, False]
    assert out["published_strong"].dtype == "boolean"
    assert out["published_strong"].tolist() == [True, pd.NA, pd.NA, False]
    err = _error(_panel(traded=["TRUE", "maybe", "1", "0"]))
    assert str(err) == "in.csv, column 'traded', row 2: expected true or false, found 'maybe'"


def test_region_totals_must_be_present_and_non_negative() -> None:
    frame = pd.DataFrame(
        {"region": ["A", "B"], "year": [2010, 2010], "region_employment_total": [100, np.nan]}
    )
    err = _error(frame, REGION_TOTALS_SCHEMA)
    assert (err.column, err.row) == ("region_employment_total", 2)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-3.0, "-3"), (2.5, "2.5"), ("abc", "'abc'"), (np.nan, "an empty cell"), (7, "7")],
)
def test_describe(value: object, shown: str) -> None:
    assert describe(value) == shown
