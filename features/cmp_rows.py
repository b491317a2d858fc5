"""US Cluster Mapping exports checked row by row for scoring (features.cmp.load_cmp reads a
whole export at once), and the levels to check across the whole export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features import schemas
from features.errors import InputError
from features.row_checks import ROW, check_rows


@dataclass
class CmpLevels:
    """What features.cmp checks across a whole export: one region level, clusters or
    sub-clusters, and which region names several codes share."""

    region_types: set[str]
    subclusters: set[bool]
    names: pd.DataFrame  # distinct region, region_code pairs

    def merge(self, other: CmpLevels) -> CmpLevels:
        return CmpLevels(
            self.region_types | other.region_types,
            self.subclusters | other.subclusters,
            pd.concat([self.names, other.names], ignore_index=True).drop_duplicates(),
        )

    def check(self, file: str | Path | None) -> None:
        from features.cmp import check_one_level

        levels = pd.DataFrame(
            {
                "region_type": pd.Series(sorted(self.region_types), dtype="str"),
                "subcluster_b": pd.Series(sorted(self.subclusters), dtype="boolean"),
            }
        )
        check_one_level(levels, Path(file) if file is not None else Path("<input>"))


def cmp_columns() -> dict[str, str]:
    """Export column -> panel column of every column features.cmp reads (signals map to self)."""
    from features import cmp

    return {**cmp.REQUIRED, **cmp.OPTIONAL, **{s: s for s in cmp.SIGNALS}}


def cmp_rows(
    frame: pd.DataFrame,
    *,
    first_row: int = 1,
    file: str | Path | None = None,
    numbers: str = schemas.PLAIN,
) -> tuple[pd.DataFrame, pd.DataFrame, CmpLevels]:
    """Rows of a US Cluster Mapping export as checked panel rows (features.cmp.load_cmp row by
    row: units, suppression, flags), their errors, and the levels to check across the export.
    Region names that several codes share are made unique later, per group (prepare_group)."""
    from features import cmp

    for column in cmp.REQUIRED:
        if column not in frame.columns:
            raise InputError(
                file,
                "missing column of a US Cluster Mapping export; expected "
                f"{', '.join(cmp.REQUIRED)}",
                column=column,
            )
    mapping = {**cmp.REQUIRED, **{k: v for k, v in cmp.OPTIONAL.items() if k in frame.columns}}
    signals = [c for c in cmp.SIGNALS if c in frame.columns]
    part = frame[[*mapping, *signals]].rename(columns=mapping)
    if "supression_b" not in part.columns:
        part["supression_b"] = False
    names = {v: k for k, v in mapping.items()}
    rows, errors = check_rows(
        part, cmp.SOURCE_SCHEMA, first_row=first_row, file=file, names=names, numbers=numbers
    )
    rows = cmp.normalise_validated(rows)
    levels = CmpLevels(
        set(rows["region_type"].dropna().unique()),
        set(rows["subcluster_b"].dropna().unique()) if "subcluster_b" in rows.columns else set(),
        rows[["region", "region_code"]].drop_duplicates(),
    )
    order = [*schemas.PANEL_REQUIRED, "payroll", *schemas.PANEL_CMP, ROW]
    return rows[order].reset_index(drop=True), errors, levels
