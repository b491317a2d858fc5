"""What a scoring run wrote, counted over its output tables: rows scored and rows not scored, by
why, worded as the lines `clusterstage score` prints on stderr."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.scoring import not_scored_kind


@dataclass
class ScoreSummary:
    """What a run wrote: rows scored and rows not scored, by why (models.scoring.not_scored_kind):
    rows that could not be used (with the first of them), rows without any change over time
    known, and total rows (the input's reference, not clusters: no failure)."""

    scored: int = 0
    not_scored: int = 0
    failed: int = 0
    no_change: int = 0
    totals: int = 0
    first_error: str | None = None
    # staged rows whose strongest driver is a feature they lack, by that feature
    missing_drivers: dict[str, int] = field(default_factory=dict)
    _first_row: float = field(default=math.inf, repr=False)

    def add(self, table: pd.DataFrame) -> None:
        kind = not_scored_kind(table["error"])
        self.scored += int((kind == "").sum())
        self.not_scored += int((kind != "").sum())
        self.no_change += int((kind == "no_change").sum())
        self.totals += int((kind == "total").sum())
        if "driver_1_feature" in table.columns:
            lacking = (
                (kind == "")
                & table["driver_1_feature"].notna().to_numpy()
                & table["driver_1_value"].isna().to_numpy()
            )
            for name, n in table.loc[lacking, "driver_1_feature"].value_counts().items():
                self.missing_drivers[str(name)] = self.missing_drivers.get(str(name), 0) + int(n)
        failed = kind == "failed"
        self.failed += int(failed.sum())
        if not failed.any():
            return
        # The failed row with the lowest row number, whichever group it was scored in (rows
        # aggregated from firm rows have none: they come after every numbered row).
        rows = table["row"].to_numpy(dtype="float64", na_value=np.nan)
        rows = np.where(failed & ~np.isnan(rows), rows, np.inf)
        i = int(np.argmin(rows)) if np.isfinite(rows).any() else int(np.flatnonzero(failed)[0])
        if self.first_error is None or rows[i] < self._first_row:
            row = table.iloc[i]
            where = f"row {row['row']}: " if pd.notna(row["row"]) else ""
            self.first_error = where + str(row["error"])
            self._first_row = float(rows[i])

    def lines(self, out: Path) -> list[str]:
        """One line per kind of row not scored: warnings for rows without a stage, a note for
        total rows (expected in official tables, so not worded as a failure)."""
        total = self.scored + self.not_scored
        lines = []
        if self.failed:
            lines.append(
                f"warning: {self.failed:,} of {total:,} rows not scored (first: "
                f"{self.first_error}); the reason of each is in the 'error' column of {out}"
            )
        if self.no_change:
            lines.append(
                f"warning: {self.no_change:,} of {total:,} rows have no year-on-year change "
                "known, so no stage: a stage needs the cluster's year before in the input "
                f"(the 'error' column of {out} names them)"
            )
        if self.totals:
            lines.append(
                f"note: {self.totals:,} of {total:,} rows are region or national totals, not "
                "clusters: used as reference, not scored"
            )
        lacking = sum(self.missing_drivers.values())
        if lacking:
            # Mostly on data unlike the model's training rows (other features measured): the
            # stage then rests on how the model treats a feature it never sees here.
            level = "warning" if 2 * lacking > self.scored else "note"
            common = sorted(self.missing_drivers.items(), key=lambda item: (-item[1], item[0]))
            named = ", ".join(f"{name} {n:,}x" for name, n in common[:3])
            lines.append(
                f"{level}: in {lacking:,} of {self.scored:,} staged rows the strongest driver is "
                f"a feature the row does not have ({named}): such a stage rests on data the "
                "input lacks; a model trained on data like it is more trustworthy (README: "
                "Retraining on your own regional data)"
            )
        return lines
