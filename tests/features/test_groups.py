"""Checked rows prepared per group of regions (features.groups)."""

from __future__ import annotations

import pandas as pd

from features.groups import prepare_group
from features.row_checks import ERROR, ROW, check_rows
from features.schemas import PANEL_SCHEMA


def test_every_row_of_a_repeated_key_is_reported():
    frame = pd.DataFrame(
        {
            "region": ["A", "A", "A"],
            "cluster": ["x", "x", "y"],
            "year": [2010, 2010, 2010],
            "employment": [1.0, 2.0, 3.0],
            "establishments": [1, 1, 1],
        }
    )
    rows, _ = check_rows(frame, PANEL_SCHEMA)
    group = prepare_group(rows, "panel")
    assert group.panel["cluster"].tolist() == ["y"]
    assert group.errors[ROW].tolist() == [1, 2]
    assert group.errors[ERROR].iloc[0] == (
        "the key repeats in rows 1, 2: expected one row per region × cluster × year"
    )
