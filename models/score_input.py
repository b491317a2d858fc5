"""The input side of scoring: rows checked one by one, panels prepared per group of regions, and
the national context that makes a group's indicators equal to those of the whole input.

Scoring reads inputs of any size one group of regions at a time (pipeline/score.py), scores every
row it can and reports every other row with its reason. Three things here make that possible:

1. ``check_rows`` parses and checks rows as the contracts of features.schemas say, but a bad row
   is set aside with its first problem as its ``error`` instead of stopping the whole input.
2. ``prepare_group`` turns the checked rows of some regions into the panel grain as
   features.loaders does for a whole file: repeated keys, total rows (panel grain), region names
   shared by several codes (US Cluster Mapping), firm rows aggregated per region (firms grain).
3. Indicators are local to a region (a cluster's own history, its region's totals) except where
   they compare with the nation or with other regions. ``NationalContext`` holds those
   comparisons for the whole input, summed group by group: national employment per cluster-year
   (passed to ``build_features(national=...)``), the national shares of the LQ and the national
   growth rates (``features.indicators.context.NationalFacts``, passed as ``facts``), the
   national wage per cluster-year (``relative_wage``), whether productivity divides value added
   or output (chosen per input), and the co-location proximity of clusters per year
   (``relatedness_density``).
   ``group_features`` builds one group's features with them, so every group's rows equal those
   of ``build_features`` on the whole input (tested, and by the pyfunc, which scores its whole
   input as one group).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features import schemas
from features.aggregate import firms_to_panel
from features.build import build_features
from features.errors import InputError
from features.indicators.context import (
    GROWTH_YEARS,
    NationalFacts,
    PanelContext,
    matched_sums,
    national_facts,
    ratio,
    reference_frame,
)
from features.indicators.linkages import table_proximity
from features.loaders import attach_region_totals, is_total
from features.schemas import TOTAL_LABEL

KEYS = ["region", "cluster", "year"]
ROW = "row"  # the 1-based data row of the input (header not counted)
ERROR = "error"

# Panel-grain columns in the order features.loaders gives them.
PANEL_COLUMNS: tuple[str, ...] = (
    *schemas.PANEL_REQUIRED,
    *schemas.PANEL_OPTIONAL,
    *schemas.PANEL_MICRODATA,
    *schemas.PANEL_CMP,
)
FIRM_KEYS = ["region", "firm_id", "year"]
ERROR_COLUMNS = [ROW, *KEYS, ERROR]
# How the reason of a total row begins: such rows are the input's reference, not failures.
REGION_TOTAL = "a region total row"
NATIONAL_TOTAL = "a national total row"


# --- row checks ----------------------------------------------------------------------------


def _messages(prefix: str, template: str, shown: Iterable[object]) -> list[str]:
    return [f"{prefix}{template.format(schemas.describe(v))}" for v in shown]


class _Column:
    """One parsed column: typed values and, per row, the first problem found (or None)."""

    def __init__(self, values: pd.Series) -> None:
        self.values = values
        self.bad = np.zeros(len(values), dtype=bool)
        self.problem = np.full(len(values), None, dtype=object)

    def flag(self, mask: np.ndarray, messages: list[str]) -> None:
        """Record ``messages`` (one per True in mask) where the row has no problem yet."""
        pos = np.flatnonzero(mask)
        fresh = ~self.bad[pos]
        self.problem[pos[fresh]] = np.asarray(messages, dtype=object)[fresh]
        self.bad[pos] = True


def _parse_number(
    series: pd.Series, label: str, file: object, expected: str, numbers: str = schemas.PLAIN
) -> _Column:
    if pd.api.types.is_bool_dtype(series.dtype):
        raise InputError(file, "expected numbers, found true/false values", column=label)
    if pd.api.types.is_numeric_dtype(series.dtype):
        col = _Column(series.astype("float64"))
    else:
        text, problems = schemas.number_text(schemas.as_text(series), numbers)
        col = _Column(pd.to_numeric(text, errors="coerce").astype("float64"))
        written = problems.notna().to_numpy()
        if written.any():
            col.flag(written, list(problems[written]))
        unparsed = (text.notna() & col.values.isna()).to_numpy()
        if unparsed.any():
            col.flag(unparsed, _messages("", f"expected {expected}, found {{}}", text[unparsed]))
    infinite = np.isinf(col.values.to_numpy())
    if infinite.any():
        col.flag(
            infinite, _messages("", "expected a finite number, found {}", col.values[infinite])
        )
        col.values = col.values.where(~infinite)
    return col


def _parse_integer(
    series: pd.Series, label: str, file: object, numbers: str = schemas.PLAIN
) -> _Column:
    col = _parse_number(series, label, file, "a whole number", numbers)
    values = col.values.to_numpy()
    fraction = ~np.isnan(values) & (values % 1 != 0)
    if fraction.any():
        col.flag(fraction, _messages("", "expected a whole number, found {}", values[fraction]))
        col.values = col.values.where(~fraction)
    return col


def _parse_ident(series: pd.Series) -> _Column:
    # Whole-number ids stay numbers, also when a Parquet chunk with a missing id made them floats,
    # so that every chunk of one file gives the id column the same type.
    if pd.api.types.is_integer_dtype(series.dtype):
        return _Column(series.astype("Int64"))
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        known = ~np.isnan(values)
        if (values[known] % 1 == 0).all():
            return _Column(series.astype("Int64"))
    return _Column(schemas.as_text(series))


def _parse_flag(series: pd.Series) -> _Column:
    parsed, wrong = schemas.parse_flags(series)
    col = _Column(parsed)
    unparsed = wrong.notna().to_numpy()
    if unparsed.any():
        col.flag(unparsed, _messages("", "expected true or false, found {}", wrong[unparsed]))
    return col


def _parse(
    series: pd.Series, kind: str, label: str, file: object, numbers: str = schemas.PLAIN
) -> _Column:
    if kind in (schemas.TEXT, schemas.LOWER):
        text = schemas.as_text(series)
        return _Column(text.str.lower() if kind == schemas.LOWER else text)
    if kind == schemas.NUMBER:
        return _parse_number(series, label, file, "a number", numbers)
    if kind == schemas.INTEGER:
        return _parse_integer(series, label, file, numbers)
    if kind == schemas.IDENT:
        return _parse_ident(series)
    if kind == schemas.FLAG:
        return _parse_flag(series)
    raise ValueError(f"unknown column kind {kind!r}")


def _checked(col: _Column, spec: pa.Column) -> None:
    """The schema's own checks (≥ 0, whole, year range, ...) and its not-null rule."""
    if not spec.nullable:
        empty = col.values.isna().to_numpy() & ~col.bad
        if empty.any():
            col.flag(empty, ["expected a value, found an empty cell"] * int(empty.sum()))
    if not spec.checks:
        return
    keep = col.values.notna().to_numpy() & ~col.bad
    values = col.values[keep]
    if values.empty:
        return
    pos = np.flatnonzero(keep)
    for check in spec.checks:
        passed = check(values).check_output.reindex(values.index, fill_value=True)
        failed = ~passed.to_numpy(dtype=bool)
        if failed.any():
            mask = np.zeros(len(col.values), dtype=bool)
            mask[pos[failed]] = True
            col.flag(mask, _messages("", f"expected {check.error}, found {{}}", values[failed]))


def required_columns(schema: pa.DataFrameSchema) -> list[str]:
    return [name for name, spec in schema.columns.items() if spec.required]


def check_columns(
    columns: Iterable[str],
    schema: pa.DataFrameSchema,
    file: str | Path | None,
    names: Mapping[str, str] | None = None,
) -> None:
    """A required column that is missing is bad input as a whole (one line, exit 2)."""
    found = list(columns)
    required = required_columns(schema)
    for column in required:
        if column not in found:
            names = names or {}
            raise InputError(
                file,
                f"missing required column; expected {', '.join(required)}; "
                f"columns found: {', '.join(map(str, found))}",
                column=names.get(column, column),
            )


def reject_feature_table(
    columns: Iterable[str], schema: pa.DataFrameSchema, file: str | Path | None
) -> None:
    """InputError for a table of the pipeline's own features (data/processed/features.parquet):
    its contract columns would be read as raw input while the indicators beside them were
    ignored, and the stages would come out confident and wrong. Lag columns, or three or more
    indicators that no input grain holds, mark such a table."""
    from features.build import FEATURE_NAMES
    from features.lags import lag_columns

    found = [str(c) for c in columns]
    lags = lag_columns(found)
    made = [c for c in found if c in FEATURE_NAMES and c not in schema.columns] + lags
    if lags or len(made) >= 3:
        shown = ", ".join(made[:4]) + (f" and {len(made) - 4} more" if len(made) > 4 else "")
        raise InputError(
            file,
            f"columns {shown} are features the model computes itself: this looks like a feature "
            "table; expected the input rows they are computed from (a panel, firm or Cluster "
            "Mapping file, such as data/interim/panel.parquet)",
        )


def column_sources(
    found: Iterable[str],
    schema: pa.DataFrameSchema,
    columns: Mapping[str, str | None] | None,
    file: str | Path | None,
    grain: str,
) -> dict[str, str | None]:
    """Contract column -> the file's column it is read from (None: declared absent, read as
    all-missing), in contract order, for a file whose (snake_case) columns are ``found``.

    ``columns`` is `--column CONTRACT=SOURCE` as `clusterstage features` takes it: a None or
    empty source declares the column absent, a mapping wins over a same-named column of the
    file, and a source mapped onto a contract column is no longer read as itself. Mistakes (an
    unknown contract column, a source the file lacks, one source for two contract columns, a
    required column declared absent or missing) are the loaders' InputErrors, word for word:
    features.loaders checks the header here as it checks a whole file.
    """
    from features.loaders import apply_columns, normalise_name

    found = list(found)
    reject_feature_table(found, schema, file)
    apply_columns(
        pd.DataFrame(columns=found),
        Path(file) if file is not None else Path("<input>"),
        columns,
        required=tuple(required_columns(schema)),
        known=tuple(schema.columns),
        grain=grain,
    )
    mapped: dict[str, str | None] = {
        normalise_name(contract): (
            None if source is None or not str(source).strip() else normalise_name(source)
        )
        for contract, source in (columns or {}).items()
    }
    used = {source for source in mapped.values() if source is not None}
    sources: dict[str, str | None] = {c: c for c in found if c in schema.columns and c not in used}
    sources.update(mapped)
    return {c: sources[c] for c in schema.columns if c in sources}


def check_rows(
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    *,
    first_row: int = 1,
    file: str | Path | None = None,
    names: Mapping[str, str] | None = None,
    numbers: str = schemas.PLAIN,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed rows that pass ``schema`` (plus ``row``), and the others with their first problem.

    Columns are parsed by their kind in features.schemas (text, number, whole number, id, flag)
    and checked by the schema's checks; a row's first problem, in the frame's column order, is
    its ``error``: "column 'employment': expected a number, found 'abc'". Unknown columns are
    dropped. ``row`` numbers the frame's rows from ``first_row``. A missing required column (or a
    number column of true/false values) is bad input as a whole: InputError. Key uniqueness is
    not checked here (see ``drop_repeated``). ``numbers``: how the file writes numbers in text
    cells (features.schemas.PLAIN, GERMAN or SEMICOLON, decided for the whole file). The
    schema's checks across columns (a founding year after the year) come after the cells'.
    """
    names = names or {}
    check_columns(frame.columns, schema, file, names)
    frame = frame.reset_index(drop=True)
    n = len(frame)
    bad = np.zeros(n, dtype=bool)
    problem = np.full(n, None, dtype=object)
    typed: dict[str, pd.Series] = {}
    for column in frame.columns:
        spec = schema.columns.get(column)
        if spec is None:
            continue
        label = names.get(column, column)
        col = _parse(frame[column], spec.metadata["kind"], label, file, numbers)
        _checked(col, spec)
        typed[column] = col.values
        fresh = col.bad & ~bad
        if fresh.any():
            prefix = f"column '{label}': "
            problem[fresh] = [prefix + str(m) for m in col.problem[fresh]]
            bad |= fresh
    out = pd.DataFrame(typed, index=pd.RangeIndex(n))
    for rule in schemas.row_checks(schema):
        fresh = rule.failed(out) & ~bad
        if fresh.any():
            prefix = f"column '{names.get(rule.column, rule.column)}': "
            values, limits = out[rule.column][fresh], out[rule.limit][fresh]
            problem[fresh] = [
                prefix + rule.message(v, lim) for v, lim in zip(values, limits, strict=True)
            ]
            bad |= fresh
    out[ROW] = np.arange(first_row, first_row + n, dtype="int64")
    errors = _error_rows(out[bad], problem[bad])
    rows = out[~bad].reset_index(drop=True)
    for column, spec in schema.columns.items():
        if column not in rows.columns:
            continue
        kind = spec.metadata["kind"]
        if column == "year" or (kind == schemas.IDENT and rows[column].dtype == "Int64"):
            rows[column] = rows[column].astype("int64")
        elif kind == schemas.FLAG and not spec.nullable:
            rows[column] = rows[column].astype(bool)
    return rows, errors


def _error_rows(rows: pd.DataFrame, messages: Iterable[object]) -> pd.DataFrame:
    """ROW, region, cluster, year (as far as they parsed) and the reason."""
    n = len(rows)
    out = pd.DataFrame({ROW: pd.array(rows[ROW].to_numpy(), dtype="Int64")})
    for key in ("region", "cluster"):
        text = rows[key].astype("str").to_numpy() if key in rows else np.full(n, None, object)
        out[key] = pd.array(text, dtype="str")
    year = rows["year"] if "year" in rows else pd.Series(np.nan, index=rows.index)
    values = pd.to_numeric(year, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    whole = np.where(np.isfinite(values) & (values % 1 == 0), values, np.nan)
    out["year"] = pd.array(whole, dtype="Int64")
    out[ERROR] = pd.array(list(messages), dtype="str")
    return out[ERROR_COLUMNS]


def no_errors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ROW: pd.array([], dtype="Int64"),
            "region": pd.array([], dtype="str"),
            "cluster": pd.array([], dtype="str"),
            "year": pd.array([], dtype="Int64"),
            ERROR: pd.array([], dtype="str"),
        }
    )


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
    return rows[~repeated].reset_index(drop=True), _error_rows(bad, messages)


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
    return pd.concat([_error_rows(unique, [message] * len(unique)), repeated], ignore_index=True)


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
    return attach_region_totals(clusters, totals), _error_rows(totals, [message] * len(totals))


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


# --- the national context ----------------------------------------------------------------------


@dataclass(frozen=True)
class Partial:
    """What one group adds to the national context (sums over its rows)."""

    employment: pd.Series  # (cluster, year): sum of employment
    wage_payroll: pd.Series  # (cluster, year): payroll where payroll and its employment are known
    wage_employment: pd.Series  # (cluster, year): that employment
    region_totals: pd.Series  # (region, year): E_r
    value_added: bool  # any value added at all
    # k -> (cluster, year t): employment in t and in t - k, over rows that know both
    matched: dict[int, tuple[pd.Series, pd.Series]]


def partial_totals(panel: pd.DataFrame) -> Partial:
    """The group's sums, as features.indicators.context computes them for a whole panel."""
    emp = panel["employment"].astype("float64")
    cluster_year = [panel["cluster"].to_numpy(), panel["year"].to_numpy()]
    region_year = [panel["region"].to_numpy(), panel["year"].to_numpy()]
    reported = panel.get("employment_reported", emp * np.nan).astype("float64")
    base = reported.where(reported.notna(), emp)
    pay = panel["payroll"].astype("float64") if "payroll" in panel.columns else emp * np.nan
    both = (np.isfinite(base) & np.isfinite(pay)).to_numpy()
    given = panel.get("region_employment_total", emp * np.nan).astype("float64")
    summed = emp.groupby(region_year).sum(min_count=1)
    stated = given.groupby(region_year).max()
    value_added = "value_added" in panel.columns and bool(
        np.isfinite(panel["value_added"].to_numpy(dtype="float64")).any()
    )
    # A group holds whole regions, so a cluster's year t - k lies in the same group.
    ctx = PanelContext(panel[["region", "cluster", "year", "employment"]])
    values = ctx.col("employment")
    matched = {
        k: matched_sums(ctx.cluster_names, ctx.year, values, ctx.lag(values, k))
        for k in GROWTH_YEARS
    }
    return Partial(
        employment=emp.groupby(cluster_year).sum(min_count=1),
        wage_payroll=pay[both].groupby([k[both] for k in cluster_year]).sum(min_count=1),
        wage_employment=base[both].groupby([k[both] for k in cluster_year]).sum(min_count=1),
        region_totals=stated.where(stated.notna(), summed),
        value_added=value_added,
        matched=matched,
    )


def _combined(parts: list[pd.Series]) -> pd.Series:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[], []]))
    return pd.concat(parts).groupby(level=[0, 1]).sum(min_count=1)


@dataclass(frozen=True)
class NationalContext:
    """The cross-region facts of a whole input, for the indicators of any group of its regions."""

    national: pd.DataFrame  # cluster, year, employment (e_Nc)
    facts: NationalFacts  # the LQ's national shares and national growth, of the whole input
    wage: pd.Series  # national wage by (cluster, year)
    productivity_source: str  # value_added or output, chosen once for the whole input
    clusters: pd.Index  # every cluster of the input, sorted
    total_label: str
    proximity: Mapping[int, np.ndarray] | None = None  # per year: co-location phi
    table: tuple[np.ndarray, np.ndarray] | None = None  # relatedness-table phi, clusters covered

    def with_cooccurrence(self, counts: Iterable[Mapping[int, np.ndarray]]) -> NationalContext:
        """Add the per-year co-location proximity from the groups' co-occurrence counts."""
        total: dict[int, np.ndarray] = {}
        for part in counts:
            for year, co in part.items():
                total[year] = total[year] + co if year in total else co.copy()
        proximity = {}
        for year, co in total.items():
            ubiquity = np.diag(co)
            phi = np.nan_to_num(ratio(co, np.maximum.outer(ubiquity, ubiquity)), nan=0.0)
            np.fill_diagonal(phi, 0.0)
            proximity[year] = phi
        return replace(self, proximity=proximity)

    def relatedness_density(self, features: pd.DataFrame) -> np.ndarray:
        """RD_rc (features.indicators.linkages) with every cluster of the input and the
        proximity of the whole input, for the rows of any group of regions."""
        n_clusters = len(self.clusters)
        out = np.full(len(features), np.nan)
        if n_clusters < 2 or not len(features):
            return out
        lq = features["lq"].to_numpy(dtype="float64")
        known = np.isfinite(lq)
        special = (lq >= 1.0) & known
        region_code, regions = pd.factorize(features["region"])
        cluster_code = self.clusters.get_indexer(features["cluster"])
        years = features["year"].to_numpy()
        for year in np.unique(years):
            rows = np.flatnonzero(years == year)
            r, c = region_code[rows], cluster_code[rows]
            x = np.zeros((len(regions), n_clusters))
            x[r, c] = special[rows]
            k = np.ones((len(regions), n_clusters))
            k[r, c] = known[rows]
            if self.table is not None:
                phi = self.table[0]
            elif self.proximity is not None and int(year) in self.proximity:
                phi = self.proximity[int(year)]
            else:
                raise ValueError(f"no co-location proximity for {year}: add the co-occurrence")
            density = 100.0 * ratio(x @ phi.T, k @ phi.T)
            out[rows] = density[r, c]
        if self.table is not None:
            out[~self.table[1][cluster_code]] = np.nan
        return out


def national_context(
    partials: Iterable[Partial],
    given: pd.DataFrame | None = None,
    *,
    total_label: str = TOTAL_LABEL,
    relatedness: pd.DataFrame | None = None,
) -> NationalContext:
    """The national context of the input whose groups gave ``partials``.

    ``given``: the input's own national reference (``given_national``); as in
    features.indicators.context its cluster-years win over the sums of the regions (e_Nc), its
    payroll / employment over the summed national wage, and the national shares and growth rates
    follow ``national_facts``. ``relatedness``: a cluster x cluster
    table (features.loaders.load_relatedness); without it the proximity is co-location in the
    input itself, which needs ``with_cooccurrence`` before features are built.
    """
    partials = list(partials)
    summed = _combined([p.employment for p in partials])
    wage_pay = _combined([p.wage_payroll for p in partials])
    wage_emp = _combined([p.wage_employment for p in partials])
    region_totals = _combined([p.region_totals for p in partials])
    clusters = pd.Index(sorted(set(summed.index.get_level_values(0))), dtype="str")
    matched = {
        k: (
            _combined([p.matched[k][0] for p in partials]),
            _combined([p.matched[k][1] for p in partials]),
        )
        for k in GROWTH_YEARS
    }
    facts = national_facts(summed, region_totals, matched, reference_frame(given), total_label)
    employment = summed
    given_wage = None
    if given is not None:
        own = given[given["cluster"].isin(clusters)]
        keys = [own["cluster"].to_numpy(), own["year"].to_numpy()]
        stated_emp = own["employment"].groupby(keys).sum(min_count=1)
        if len(stated_emp):
            employment = stated_emp.combine_first(summed)
        if "payroll" in own.columns:
            stated_pay = own["payroll"].groupby(keys).sum(min_count=1)
            given_wage = pd.Series(
                ratio(stated_pay, stated_emp.reindex(stated_pay.index)), index=stated_pay.index
            )
    keys = wage_pay.index.union(wage_emp.index)
    if given_wage is not None:
        keys = keys.union(given_wage.index)
    wage = pd.Series(
        ratio(wage_pay.reindex(keys).to_numpy(), wage_emp.reindex(keys).to_numpy()), index=keys
    )
    if given_wage is not None:
        stated_wage = given_wage.reindex(keys).to_numpy()
        wage = pd.Series(np.where(np.isfinite(stated_wage), stated_wage, wage), index=keys)
    # e_Nc for national_share; E_N enters only through the facts (shares and growth rates).
    national = pd.DataFrame(
        {
            "cluster": employment.index.get_level_values(0).astype("str"),
            "year": employment.index.get_level_values(1).astype("int64"),
            "employment": employment.to_numpy(dtype="float64"),
        }
    )
    return NationalContext(
        national=national,
        facts=facts,
        wage=wage,
        productivity_source=("value_added" if any(p.value_added for p in partials) else "output"),
        clusters=clusters,
        total_label=total_label,
        table=None if relatedness is None else table_proximity(relatedness, clusters),
    )


def _source(panel: pd.DataFrame) -> pd.DataFrame:
    return panel.drop(columns=[ROW], errors="ignore")


def cooccurrence(panel: pd.DataFrame, context: NationalContext) -> dict[int, np.ndarray]:
    """Per year, x'x of the group's regions x clusters matrix of specialisations (LQ ≥ 1):
    summed over all groups it gives the co-location proximity of the whole input."""
    if not len(panel):
        return {}
    ctx = PanelContext(
        _source(panel),
        national=context.national,
        total_label=context.total_label,
        facts=context.facts,
    )
    lq = ctx.lq
    special = (lq >= 1.0) & np.isfinite(lq)
    region_code, regions = pd.factorize(panel["region"])
    cluster_code = context.clusters.get_indexer(panel["cluster"])
    years = panel["year"].to_numpy()
    out: dict[int, np.ndarray] = {}
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        x = np.zeros((len(regions), len(context.clusters)))
        x[region_code[rows], cluster_code[rows]] = special[rows]
        out[int(year)] = x.T @ x
    return out


def group_features(panel: pd.DataFrame, context: NationalContext) -> pd.DataFrame:
    """build_features for the panel rows of some regions, compared with the whole input.

    The national reference goes to build_features; the three indicators it would otherwise
    compare within the group only are recomputed with the whole input (same formulas as
    features.indicators): relative_wage (wage / the national wage of the cluster-year),
    productivity (value added or output, as chosen for the whole input, per employee) and
    relatedness_density.
    """
    source = _source(panel)
    features = build_features(
        source, national=context.national, facts=context.facts, total_label=context.total_label
    )
    if "relative_wage" in features.columns:
        wanted = pd.MultiIndex.from_arrays(
            [features["cluster"].to_numpy(), features["year"].to_numpy()]
        )
        national_wage = context.wage.reindex(wanted).to_numpy(dtype="float64", na_value=np.nan)
        features["relative_wage"] = ratio(features["wage"].to_numpy(), national_wage)
    if "productivity" in features.columns:
        column = context.productivity_source
        numerator = source[column] if column in source.columns else source["employment"] * np.nan
        features["productivity"] = ratio(_finite(numerator), _finite(source["employment"]))
    if "relatedness_density" in features.columns:
        features["relatedness_density"] = context.relatedness_density(features)
    if "n_missing_features" in features.columns:
        from features.build import FEATURE_NAMES

        values = features[list(FEATURE_NAMES)].to_numpy(dtype="float64")
        features["n_missing_features"] = np.isnan(values).sum(axis=1).astype("int64")
    return features


def _finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


# --- US Cluster Mapping exports -------------------------------------------------------------


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
