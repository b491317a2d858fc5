"""Checked score input rows prepared per group of regions, as features.loaders prepares a whole
file: repeated keys, total rows (panel grain), region names shared by several codes (US Cluster
Mapping), firm rows aggregated per region (firms grain); and the national total rows split off
as the input's national reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import schemas
from features.aggregate import firms_to_panel
from features.loaders import attach_region_totals, is_total
from features.row_checks import (
    ERROR,
    ERROR_COLUMNS,
    KEYS,
    PANEL_COLUMNS,
    ROW,
    error_rows,
    no_errors,
)
from features.schemas import TOTAL_LABEL

FIRM_KEYS = ["region", "firm_id", "year"]
# How the reason of a total row begins: such rows are the input's reference, not failures.
REGION_TOTAL = "a region total row"
NATIONAL_TOTAL = "a national total row"


# --- repeated keys and national rows ---------------------------------------------------------


def drop_repeated(
    rows: pd.DataFrame, keys: list[str], what: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows whose key is unique, and every row of a repeated key as an error: which one is right
    cannot be told, so none of them is scored."""
    repeated = rows.duplicated(subset=keys, keep=False).to_numpy()
    if not repeated.any():
        return rows, no_errors()
    bad = rows[repeated]
    listed = bad.groupby(keys, sort=False, dropna=False)[ROW].transform(
        lambda r: ", ".join(str(v) for v in sorted(r))
    )
    messages = [f"the key repeats in rows {rows_}: expected one row per {what}" for rows_ in listed]
    return rows[~repeated].reset_index(drop=True), error_rows(bad, messages)


def split_national(
    rows: pd.DataFrame, total_label: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Panel rows of regions, and national total rows (region is the total label)."""
    if not total_label:
        return rows, rows.iloc[:0]
    national = is_total(rows["region"], total_label).to_numpy()
    return rows[~national].reset_index(drop=True), rows[national].reset_index(drop=True)


def region_years(
    rows: pd.DataFrame, errors: pd.DataFrame, total_label: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Of checked panel rows (national rows split off) and their errors: region, year and row
    of the cluster rows without a region_employment_total of their own, and region, year of
    the region total rows, those that failed a check too (a bad total row is reported as such,
    not as missing). For features.loaders.check_region_totals over a whole input."""
    label = (total_label or "").strip()
    total = is_total(rows["cluster"], label) if label else pd.Series(False, index=rows.index)
    stated = rows.get("region_employment_total", pd.Series(np.nan, index=rows.index))
    clusters = rows.loc[~total & stated.isna(), ["region", "year", ROW]]
    bad_totals = errors[is_total(errors["cluster"], label)] if label else errors.iloc[:0]
    totals = pd.concat(
        [rows.loc[total, ["region", "year"]], bad_totals[["region", "year"]].dropna()],
        ignore_index=True,
    )
    totals["year"] = totals["year"].astype("int64")
    first = clusters.groupby(["region", "year"], as_index=False, sort=False)[ROW].min()
    return first, totals.drop_duplicates()


def national_errors(national_rows: pd.DataFrame, total_label: str) -> pd.DataFrame:
    """National total rows are read as the national reference, never scored: say so per row."""
    unique, repeated = drop_repeated(national_rows, KEYS, "region × cluster × year")
    message = f"{NATIONAL_TOTAL} (region '{total_label}'), not a cluster: used as reference"
    return pd.concat([error_rows(unique, [message] * len(unique)), repeated], ignore_index=True)


def given_national(
    national_rows: pd.DataFrame | None,
    total_label: str,
    inherited: Mapping[str, object] | None = None,
) -> pd.DataFrame | None:
    """The national reference the rows give (features.loaders: rows whose region is the total
    label, else the ``national_totals`` a Parquet file carries in its attributes)."""
    from features.loaders import national_attr

    if national_rows is not None and len(national_rows):
        unique, _ = drop_repeated(national_rows, KEYS, "region × cluster × year")
        raw: Mapping[str, object] | None = national_attr(unique.drop(columns=[ROW]), total_label)
    else:
        raw = inherited
    if not raw:
        return None
    out = pd.DataFrame(dict(raw))
    out["cluster"] = out["cluster"].astype("str")
    out["year"] = out["year"].astype("int64")
    for column in out.columns.drop(["cluster", "year"]):
        out[column] = pd.to_numeric(out[column]).astype("float64")
    return out


# --- groups of regions -----------------------------------------------------------------------


@dataclass
class Group:
    """The panel rows of some regions, ready for features (``row`` kept), and their errors."""

    panel: pd.DataFrame
    errors: pd.DataFrame


def shared_region_names(pairs: pd.DataFrame) -> set[str]:
    """US Cluster Mapping: region names that several region codes share (counties)."""
    codes = pairs.dropna(subset=["region_code"]).drop_duplicates()
    counts = codes.groupby("region")["region_code"].nunique()
    return set(counts.index[counts > 1])


def _cmp_region_names(rows: pd.DataFrame, shared: set[str]) -> pd.DataFrame:
    if not shared:
        return rows
    is_shared = rows["region"].isin(shared).to_numpy()
    if not is_shared.any():
        return rows
    labelled = rows["region"] + " (" + rows["region_code"].fillna("?") + ")"
    return rows.assign(region=rows["region"].where(~is_shared, labelled))


def _region_totals(rows: pd.DataFrame, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows whose cluster is the total label give region_employment_total (features.loaders)."""
    total = is_total(rows["cluster"], label).to_numpy()
    if not total.any():
        return rows, no_errors()
    totals = rows[total]
    clusters = rows[~total]
    message = f"{REGION_TOTAL} (cluster '{label}'), not a cluster: used as the region's total"
    return attach_region_totals(clusters, totals), error_rows(totals, [message] * len(totals))


def empty_panel() -> pd.DataFrame:
    """A panel without rows (a group whose every row failed)."""
    return schemas.empty_frame(
        {
            "region": "str",
            "cluster": "str",
            "year": "int64",
            "employment": "float64",
            "establishments": "int64",
            ROW: "Int64",
        }
    )


def empty_firms() -> pd.DataFrame:
    """Firm rows without rows (a group whose every firm row failed)."""
    return schemas.empty_frame(
        {
            "region": "str",
            "cluster": "str",
            "year": "int64",
            "firm_id": "int64",
            "employees": "float64",
            ROW: "Int64",
        }
    )


def finish_panel(rows: pd.DataFrame) -> pd.DataFrame:
    """Panel columns in contract order (plus ``row``), numbers float64, sorted by the keys."""
    order = [c for c in PANEL_COLUMNS if c in rows.columns]
    out = rows[[*order, ROW]].copy()
    for column in order:
        if schemas.PANEL_SCHEMA.columns[column].metadata["kind"] == schemas.NUMBER:
            out[column] = out[column].astype("float64")
    est = out["establishments"]
    out["establishments"] = est.astype("int64") if est.notna().all() else est.astype("float64")
    out["year"] = out["year"].astype("int64")
    out[ROW] = out[ROW].astype("Int64")
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def _firm_groups(firms: pd.DataFrame, errors: pd.DataFrame) -> Group:
    """Firm rows of some regions to the panel grain. A region × cluster × year with an unusable
    firm row is not scored (its aggregates would silently miss that firm): it gets the reason."""
    firms, repeated = drop_repeated(firms, FIRM_KEYS, "region × firm × year")
    bad = pd.concat([errors, repeated], ignore_index=True)
    if len(firms):
        panel = firms_to_panel(firms.drop(columns=[ROW]))
        panel[ROW] = pd.array([pd.NA] * len(panel), dtype="Int64")
        panel = finish_panel(panel)
    else:
        panel = empty_panel()
    keyed = bad.dropna(subset=KEYS)
    if keyed.empty:
        return Group(panel, bad)
    unkeyed = bad[bad[KEYS].isna().any(axis=1)]
    keyed = keyed.assign(year=keyed["year"].astype("int64")).sort_values(ROW, kind="stable")
    first = keyed.groupby(KEYS, sort=False).agg(
        **{ROW: (ROW, "first"), ERROR: (ERROR, "first"), "n": (ROW, "size")}
    )
    first[ERROR] = [
        f"not scored: {n} firm row(s) of this region × cluster × year cannot be used (row {r}: {e})"
        for n, r, e in zip(first["n"], first[ROW], first[ERROR], strict=True)
    ]
    first = first.drop(columns="n").reset_index()
    hit = pd.MultiIndex.from_frame(panel[KEYS]).isin(pd.MultiIndex.from_frame(first[KEYS]))
    panel = panel[~hit].reset_index(drop=True)
    first["year"] = first["year"].astype("Int64")
    first[ROW] = first[ROW].astype("Int64")
    first[ERROR] = first[ERROR].astype("str")
    return Group(panel, pd.concat([first[ERROR_COLUMNS], unkeyed], ignore_index=True))


def prepare_group(
    rows: pd.DataFrame,
    grain: str,
    *,
    errors: pd.DataFrame | None = None,
    total_label: str | None = TOTAL_LABEL,
    shared_names: set[str] | None = None,
) -> Group:
    """The checked rows (all rows of their regions) of one grain as panel rows plus errors.

    panel: repeated keys are errors; rows whose cluster is ``total_label`` give their region's
    ``region_employment_total`` and are reported, not scored (national rows are split off before:
    ``split_national``). cmp: region names shared by several codes get the code
    (``shared_names``, from the whole input). firms: aggregated by features.aggregate.
    """
    errors = no_errors() if errors is None else errors
    if grain == "firms":
        group = _firm_groups(rows, errors)
        return Group(group.panel, group.errors)
    if grain == "cmp":
        rows = _cmp_region_names(rows, shared_names or set())
    rows, repeated = drop_repeated(rows, KEYS, "region × cluster × year")
    found = [errors, repeated]
    if grain == "panel" and total_label and total_label.strip():
        rows, totals = _region_totals(rows, total_label.strip())
        found.append(totals)
    found = [f for f in found if len(f)]
    return Group(finish_panel(rows), pd.concat(found, ignore_index=True) if found else no_errors())
