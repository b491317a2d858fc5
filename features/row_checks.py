"""Score input rows checked one by one against the contracts of features.schemas.

``check_rows`` parses and checks rows as the contracts say, but a bad row is set aside with its
first problem as its ``error`` instead of stopping the whole input: scoring (pipeline/score.py)
scores every row it can and reports every other row with its reason. The header of an input is
checked as a whole (``check_columns``, ``column_sources``, ``reject_feature_table``): a problem
there is bad input as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features import schemas
from features.errors import InputError

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
ERROR_COLUMNS = [ROW, *KEYS, ERROR]


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
    # as features.schemas: past int64 a cast would wrap round
    huge = np.abs(col.values.to_numpy()) >= schemas.MAX_WHOLE
    if huge.any():
        col.flag(huge, _messages("", "expected at most 15 digits, found {}", values[huge]))
        col.values = col.values.where(~huge)
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
    errors = error_rows(out[bad], problem[bad])
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


def error_rows(rows: pd.DataFrame, messages: Iterable[object]) -> pd.DataFrame:
    """ROW, region, cluster, year (as far as they parsed) and the reason."""
    n = len(rows)
    out = pd.DataFrame({ROW: pd.array(rows[ROW].to_numpy(), dtype="Int64")})
    for key in ("region", "cluster"):
        text = rows[key].astype("str").to_numpy() if key in rows else np.full(n, None, object)
        out[key] = pd.array(text, dtype="str")
    year = rows["year"] if "year" in rows else pd.Series(np.nan, index=rows.index)
    values = pd.to_numeric(year, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    whole = np.isfinite(values) & (values % 1 == 0) & (np.abs(values) < schemas.MAX_WHOLE)
    whole = np.where(whole, values, np.nan)
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
