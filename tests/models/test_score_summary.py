"""What a scoring run wrote, counted and worded for stderr (models.score_summary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.score_summary import ScoreSummary

NO_CHANGE = "no year-on-year change known (needs the year before): cannot judge a stage"


def test_only_real_failures_read_as_failures():
    def table(*errors: str | None) -> pd.DataFrame:
        rows = pd.array(range(1, len(errors) + 1), dtype="Int64")
        return pd.DataFrame({"row": rows, "error": pd.array(list(errors), dtype="str")})

    region_total = (
        "a region total row (cluster 'Insgesamt'), not a cluster: used as the region's total"
    )
    national = "a national total row (region 'Insgesamt'), not a cluster: used as reference"
    summary = ScoreSummary()
    summary.add(table(None, region_total, None, national, region_total))
    assert (summary.scored, summary.totals, summary.failed, summary.no_change) == (2, 3, 0, 0)
    assert summary.lines(Path("o.csv")) == [
        "note: 3 of 5 rows are region or national totals, not clusters: used as reference, "
        "not scored"
    ]
    # The first failure named is the one with the lowest row number, whatever the group order.
    summary.add(
        table(None, None, None, None, None, None, "column 'x': bad", None, "column 'y': bad")
    )
    summary.add(table(None, "column 'z': bad", NO_CHANGE))
    assert (summary.scored, summary.failed, summary.no_change, summary.not_scored) == (10, 3, 1, 7)
    assert summary.lines(Path("o.csv"))[0] == (
        "warning: 3 of 17 rows not scored (first: row 2: column 'z': bad); the reason of each "
        "is in the 'error' column of o.csv"
    )
    assert len(summary.lines(Path("o.csv"))) == 3


def test_stages_driven_by_a_feature_the_rows_lack_are_reported():
    table = pd.DataFrame(
        {
            "row": pd.array([1, 2, 3, 4], dtype="Int64"),
            "error": pd.array([None, None, None, NO_CHANGE], dtype="str"),
            "driver_1_feature": ["va_share", "va_share", "emp_cagr_1y", None],
            "driver_1_value": [np.nan, np.nan, 0.03, np.nan],
        }
    )
    summary = ScoreSummary()
    summary.add(table)
    assert summary.missing_drivers == {"va_share": 2}
    assert summary.lines(Path("o.csv"))[-1] == (
        "warning: in 2 of 3 staged rows the strongest driver is a feature the row does not have "
        "(va_share 2x): such a stage rests on data the input lacks; a model trained on data like "
        "it is more trustworthy (README: Retraining on your own regional data)"
    )
    summary.add(table.assign(driver_1_value=0.1).iloc[:3])  # 3 more staged rows, none lacking
    assert summary.lines(Path("o.csv"))[-1].startswith("note: in 2 of 6 staged rows")
