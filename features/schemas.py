"""The input contracts as pandera schemas, and their translation into one-line errors. The
contracts are the grains panel, firms and labels with their required and optional columns
(README.md, "Inputs", lists them for users).

Validation runs in two steps so that messages stay exact and deterministic:

1. ``coerce`` parses every column the schema knows into its dtype. CSV cells arrive as text, so a
   year ``"2008.0"`` becomes 2008 and ``"abc"`` in a number column is reported with its row.
   How a column is parsed is its *kind*, kept in the pandera column's ``metadata``.
2. ``check`` runs the pandera schema (lazy, so every failure is collected) and reports only the
   first failure by row, then by column order.

Row numbers come from the frame's index: loaders keep the 0-based position of each record in the
file as the index, so the 1-based data row of a failure is ``index + 1``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.errors import InputError
from features.stages import STAGES

KEYS: tuple[str, ...] = ("region", "cluster", "year")
FIRM_KEYS: tuple[str, ...] = ("region", "firm_id", "year")
# The default label of total rows (params.yaml data.total_label): a row whose region is this
# holds the nation, one whose cluster is this the region's total, as the German
# Regionalstatistik writes them.
TOTAL_LABEL = "Insgesamt"

# Column kinds: how ``coerce`` parses a column before the schema checks it.
TEXT = "text"  # str; cells stripped, blank cells missing
LOWER = "lower"  # like TEXT, then lower-cased (stage names)
IDENT = "ident"  # identifiers: whole numbers stay int64, anything else becomes text
INTEGER = "integer"  # whole numbers: int64, or float64 when some are missing
NUMBER = "number"  # float64
FLAG = "flag"  # true/false/yes/no/1/0: nullable boolean, or bool when the column may not be missing

YEAR_RANGE = (1800, 2200)

# How the numbers of a file's text cells are written (features.loaders decides per file).
PLAIN = "plain"  # a decimal point, no thousands separator (comma- or tab-separated CSV)
# A ';'-separated CSV, the CSV of spreadsheets in locales whose decimal mark is a comma:
GERMAN = "german"  # some cell has a decimal comma: ',' marks decimals and '.' groups thousands
SEMICOLON = "semicolon"  # no decimal comma anywhere: a '.' that may group thousands is ambiguous

PANEL_REQUIRED: tuple[str, ...] = (*KEYS, "employment", "establishments")
PANEL_OPTIONAL: tuple[str, ...] = (
    "payroll",
    "output",
    "value_added",
    "exports",
    "rd_expenditure",
    "patents",
    "entries",
    "exits",
    "sme_employment",
    "top4_employment",
    "institutions",
    "region_employment_total",
)
# Columns the project itself adds to the panel grain (microdata aggregates, the US Cluster
# Mapping import); they pass through loaders, every other extra column is dropped.
PANEL_MICRODATA: tuple[str, ...] = ("hhi", "gini", "median_firm_age")
CMP_FLAGS: tuple[str, ...] = (
    "published_qualifying",
    "published_significant",
    "published_strong",
    "published_strong10",
)
PANEL_CMP: tuple[str, ...] = (
    "region_code",
    "region_type",
    "cluster_code",
    "traded",
    "employment_reported",
    "wage",
    "lq",
    *CMP_FLAGS,
    "suppressed",
)

FIRMS_REQUIRED: tuple[str, ...] = ("region", "cluster", "year", "firm_id", "employees")
FIRMS_OPTIONAL: tuple[str, ...] = (
    "revenue",
    "exports",
    "rd_expenditure",
    "patents",
    "wages",
    "founded_year",
    "ownership",
)

LABELS_REQUIRED: tuple[str, ...] = (*KEYS, "stage")
LABELS_OPTIONAL: tuple[str, ...] = ("source", "confidence")

REGION_TOTALS_COLUMNS: tuple[str, ...] = ("region", "year", "region_employment_total")

_STAGE_LIST = ", ".join(STAGES)


@dataclass(frozen=True)
class NotAfter:
    """A check across the columns of a row: ``column`` no greater than ``limit`` where both are
    known. Schemas list theirs in ``metadata["row_checks"]``; the failure is reported in
    ``column``, the one a user corrects."""

    column: str
    limit: str
    expected: str

    def failed(self, frame: pd.DataFrame) -> np.ndarray:
        if self.column not in frame.columns or self.limit not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        value = pd.to_numeric(frame[self.column]).to_numpy(dtype="float64", na_value=np.nan)
        limit = pd.to_numeric(frame[self.limit]).to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return value > limit  # False where either is missing

    def message(self, value: object, limit: object) -> str:
        return f"expected {self.expected} ({describe(limit)}), found {describe(value)}"


def row_checks(schema: pa.DataFrameSchema) -> tuple[NotAfter, ...]:
    """The schema's checks across columns (pandera would report them in every column)."""
    return tuple((schema.metadata or {}).get("row_checks", ()))


def _non_negative() -> pa.Check:
    return pa.Check.ge(0, error="a number ≥ 0")


def _whole() -> pa.Check:
    return pa.Check(lambda s: s % 1 == 0, error="a whole number")


def _col(kind: str, *checks: pa.Check, nullable: bool = True, required: bool = True) -> pa.Column:
    # Integers may hold missing values (float64) and flags become bool only when complete, so
    # their dtype is set by ``_coerce`` rather than checked here.
    dtype = {TEXT: str, LOWER: str, NUMBER: "float64"}.get(kind)
    return pa.Column(
        dtype,
        list(checks),
        nullable=nullable,
        required=required,
        metadata={"kind": kind},
    )


def _key_text() -> pa.Column:
    return _col(TEXT, nullable=False)


def _year(nullable: bool = False, required: bool = True) -> pa.Column:
    low, high = YEAR_RANGE
    return _col(
        INTEGER,
        pa.Check.in_range(low, high, error=f"a year between {low} and {high}"),
        nullable=nullable,
        required=required,
    )


def _amount(required: bool = False) -> pa.Column:
    return _col(NUMBER, _non_negative(), required=required)


def _count(required: bool = False) -> pa.Column:
    return _col(INTEGER, _non_negative(), _whole(), required=required)


def _panel_columns() -> dict[str, pa.Column]:
    cols: dict[str, pa.Column] = {
        "region": _key_text(),
        "cluster": _key_text(),
        "year": _year(),
        # Missing employment is allowed: statistical offices suppress small cells.
        "employment": _amount(required=True),
        # All-missing is allowed when the source declares the column absent.
        "establishments": _count(required=True),
    }
    cols.update({name: _amount() for name in PANEL_OPTIONAL})
    cols.update({name: _amount() for name in ("hhi", "gini", "median_firm_age")})
    cols.update(
        {
            "region_code": _col(TEXT, required=False),
            "region_type": _col(TEXT, required=False),
            "cluster_code": _col(TEXT, required=False),
            "traded": _col(FLAG, nullable=False, required=False),
            "employment_reported": _amount(),
            "wage": _amount(),
            "lq": _amount(),
            **{flag: _col(FLAG, required=False) for flag in CMP_FLAGS},
            "suppressed": _col(FLAG, nullable=False, required=False),
        }
    )
    return cols


PANEL_SCHEMA = pa.DataFrameSchema(_panel_columns(), unique=list(KEYS), strict=False, name="panel")

FIRMS_SCHEMA = pa.DataFrameSchema(
    {
        "region": _key_text(),
        "cluster": _key_text(),
        "year": _year(),
        "firm_id": _col(IDENT, nullable=False),
        "employees": _col(NUMBER, _non_negative(), nullable=False),
        "revenue": _amount(),
        "exports": _amount(),
        "rd_expenditure": _amount(),
        "patents": _amount(),
        "wages": _amount(),
        "founded_year": _year(nullable=True, required=False),
        "ownership": _col(TEXT, required=False),
    },
    unique=list(FIRM_KEYS),
    strict=False,
    name="firms",
    # A firm founded after the year of its row is a typing error; aggregated it would give a
    # negative firm age in a column the file does not have.
    metadata={
        "row_checks": (NotAfter("founded_year", "year", "a founding year no later than the year"),)
    },
)

LABELS_SCHEMA = pa.DataFrameSchema(
    {
        "region": _key_text(),
        "cluster": _key_text(),
        "year": _year(),
        "stage": _col(LOWER, pa.Check.isin(STAGES, error=f"one of {_STAGE_LIST}"), nullable=False),
        "source": _col(TEXT, required=False),
        "confidence": _col(
            NUMBER, pa.Check.in_range(0, 1, error="a number between 0 and 1"), required=False
        ),
    },
    unique=list(KEYS),
    strict=False,
    name="labels",
)

REGION_TOTALS_SCHEMA = pa.DataFrameSchema(
    {
        "region": _key_text(),
        "year": _year(),
        "region_employment_total": _col(NUMBER, _non_negative(), nullable=False),
    },
    unique=["region", "year"],
    strict=False,
    name="region totals",
)

# How a flag cell may be written (lower-cased); anything else is an error.
_TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "0.0"})
_MISSING_TEXT = frozenset({"na", "n/a", "nan", "null", "none"})


def empty_frame(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A frame without rows whose columns carry the given dtypes (pandas would make them object)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


def describe(value: object) -> str:
    """A cell value as a message shows it: text quoted, whole numbers without '.0'."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "an empty cell"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return repr(str(value))


class _Failure(NamedTuple):
    """One bad cell (or column when ``pos`` is None); the earliest by (pos, column) is reported."""

    pos: int | None  # 0-based record position (the frame's index)
    column: str | None
    message: str


def _first(mask: pd.Series) -> int | None:
    hits = mask.to_numpy(dtype=bool, na_value=False)
    return int(mask.index[int(np.argmax(hits))]) if hits.any() else None


def as_text(series: pd.Series) -> pd.Series:
    """Cells as stripped text: whole floats as integers ("1"), blank cells as missing."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Clean the few categories, not the many cells (firm microdata has millions of rows).
        cats = as_text(pd.Series(series.cat.categories))
        codes = series.cat.codes.to_numpy()
        lookup = np.append(cats.to_numpy(dtype=object, na_value=np.nan), np.nan)
        values = lookup[np.where(codes < 0, len(cats), codes)]  # code -1 is a missing cell
        return pd.Series(values, index=series.index, dtype="str")
    if pd.api.types.is_float_dtype(series.dtype):
        # Codes stored as floats (1.0) are meant as text "1".
        whole = series.notna() & (series % 1 == 0)
        series = series.astype(object).where(~whole, series.where(whole).astype("Int64"))
    text = series.astype("str").str.strip()
    return text.where(text != "", np.nan)


# A number with a decimal comma (3,5 or 1.234,5); one written the German way; one whose dots may
# group thousands (a non-zero digit, then groups of exactly three digits: 1.250, 12.345.678).
_DECIMAL_COMMA = r"[+-]?(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+),\d+"
_GERMAN_NUMBER = r"[+-]?(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)(?:,\d+)?"
_GROUPED = r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+"


def number_columns(schema: pa.DataFrameSchema) -> list[str]:
    """The columns ``schema`` parses as numbers (whole or not)."""
    return [c for c, spec in schema.columns.items() if spec.metadata["kind"] in (NUMBER, INTEGER)]


def has_decimal_comma(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> bool:
    """Whether a text cell of one of the schema's number columns has a decimal comma."""
    for column in number_columns(schema):
        if column in frame.columns and not pd.api.types.is_numeric_dtype(frame[column].dtype):
            text = as_text(frame[column])
            if text.str.fullmatch(_DECIMAL_COMMA).fillna(False).any():
                return True
    return False


def number_text(text: pd.Series, numbers: str) -> tuple[pd.Series, pd.Series]:
    """Text cells of a number column rewritten for ``pd.to_numeric`` as the file's way of
    writing numbers says (PLAIN, GERMAN or SEMICOLON), and beside them what is wrong with a
    cell that cannot be read so (missing elsewhere)."""
    problems = pd.Series(None, index=text.index, dtype=object)
    if numbers == PLAIN:
        return text, problems
    if numbers == GERMAN:
        german = text.str.fullmatch(_GERMAN_NUMBER).fillna(False)
        # Any other cell with a dot would be read with a decimal point against the file's rule.
        stray = (~german & text.str.contains(".", regex=False).fillna(False)).to_numpy()
        problems[stray] = [
            "expected a number with a decimal comma, as elsewhere in this ';'-separated file "
            f"('.' groups thousands: 1.234,5), found {cell!r}"
            for cell in text[stray]
        ]
        rewritten = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        text = text.where(~german, rewritten)
    else:
        grouped = text.str.fullmatch(_GROUPED).fillna(False).to_numpy()
        problems[grouped] = [_unambiguous(cell) for cell in text[grouped]]
    return text.where(problems.isna()), problems


def _unambiguous(cell: str) -> str:
    """The message for a cell whose dots may group thousands, in a file without decimal commas."""
    whole = cell.replace(".", "")
    if cell.count(".") == 1:
        decimal = repr(float(cell))
        readings, advice = f"{whole} or {decimal}?", f"{whole} or {decimal.replace('.', ',')}"
    else:
        readings, advice = f"{whole}?", whole
    return (
        f"expected a number written unambiguously, found {cell!r} ({readings}); in a "
        f"';'-separated file write it {advice}"
    )


def _as_number(
    series: pd.Series,
    column: str,
    bad: list[_Failure],
    expected: str = "a number",
    numbers: str = PLAIN,
) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        bad.append(_Failure(None, column, "expected numbers, found true/false values"))
        return pd.Series(np.nan, index=series.index)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.astype("float64")
    else:
        text, problems = number_text(as_text(series), numbers)
        pos = _first(problems.notna())
        if pos is not None:
            bad.append(_Failure(pos, column, problems[pos]))
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        pos = _first(text.notna() & values.isna())
        if pos is not None:
            bad.append(_Failure(pos, column, f"expected {expected}, found {describe(text[pos])}"))
    infinite = pd.Series(np.isinf(values.to_numpy()), index=values.index)
    pos = _first(infinite)
    if pos is not None:
        bad.append(_Failure(pos, column, f"expected a finite number, found {values[pos]}"))
    return values.where(~infinite)


MAX_WHOLE = 1e15


def _as_integer(
    series: pd.Series, column: str, bad: list[_Failure], numbers: str = PLAIN
) -> pd.Series:
    values = _as_number(series, column, bad, "a whole number", numbers)
    fraction = values.notna() & (values % 1 != 0)
    pos = _first(fraction)
    if pos is not None:
        bad.append(_Failure(pos, column, f"expected a whole number, found {describe(values[pos])}"))
        values = values.where(~fraction)
    # Past int64 the cast below would wrap round (1e20 became -9223372036854775808), and beyond
    # 15 digits a float holds no longer every whole number: no count or year is that long.
    huge = values.abs() >= MAX_WHOLE
    pos = _first(huge)
    if pos is not None:
        found = describe(values[pos])
        bad.append(_Failure(pos, column, f"expected at most 15 digits, found {found}"))
        values = values.where(~huge)
    return values if values.isna().any() else values.astype("int64")


def _as_ident(series: pd.Series) -> pd.Series:
    # Whole-number ids stay numbers: 10 million of them would be slow and large as text.
    if pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        return series.astype("int64")
    return as_text(series)


def parse_flags(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Cells as true, false or missing (boolean dtype), and beside them the lower-cased text of
    each cell written in none of the accepted ways (missing elsewhere), for the caller to report."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean"), pd.Series(None, index=series.index, dtype=object)
    text = as_text(series).str.lower()
    text = text.where(~text.isin(_MISSING_TEXT))
    parsed = pd.Series(pd.NA, index=series.index, dtype="boolean")
    parsed[text.isin(_TRUE_TEXT).to_numpy()] = True
    parsed[text.isin(_FALSE_TEXT).to_numpy()] = False
    return parsed, text.where(parsed.isna())


def _as_flag(series: pd.Series, column: str, bad: list[_Failure]) -> pd.Series:
    parsed, wrong = parse_flags(series)
    pos = _first(wrong.notna())
    if pos is not None:
        bad.append(_Failure(pos, column, f"expected true or false, found {describe(wrong[pos])}"))
    return parsed


def _coerce(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, numbers: str = PLAIN
) -> tuple[pd.DataFrame, list[_Failure]]:
    bad: list[_Failure] = []
    out = frame.copy(deep=False)  # copy-on-write: replacing columns leaves the caller's frame
    for column, spec in schema.columns.items():
        if column not in out.columns:
            continue
        kind = spec.metadata["kind"]
        series = out[column]
        if kind in (TEXT, LOWER):
            parsed = as_text(series)
            out[column] = parsed.str.lower() if kind == LOWER else parsed
        elif kind == IDENT:
            out[column] = _as_ident(series)
        elif kind == NUMBER:
            out[column] = _as_number(series, column, bad, numbers=numbers)
        elif kind == INTEGER:
            out[column] = _as_integer(series, column, bad, numbers)
        elif kind == FLAG:
            flags = _as_flag(series, column, bad)
            out[column] = flags if spec.nullable or flags.isna().any() else flags.astype(bool)
    return out, bad


def _key_codes(frame: pd.DataFrame, keys: list[str]) -> np.ndarray | None:
    """One int64 per row identifying its key; None if the key space would overflow int64."""
    combined = np.zeros(len(frame), dtype=np.int64)
    size = 1
    for key in keys:
        codes, uniques = pd.factorize(frame[key], use_na_sentinel=True)
        n = len(uniques) + 1  # + 1: a missing key cell (code -1) is a value of its own
        size *= n
        if size >= 2**62:
            return None
        combined = combined * n + (codes + 1)
    return combined


def _duplicate(frame: pd.DataFrame, keys: list[str]) -> _Failure | None:
    """The first row whose key appeared before; the message points back to that earlier row.

    Keys are hashed as one int64 column: for ten million firm rows this is several times faster
    than pandera's (and pandas') multi-column ``duplicated``.
    """
    codes = _key_codes(frame, keys)
    if codes is None:
        dup = frame.duplicated(subset=keys, keep="first").to_numpy()
    else:
        ordered = np.sort(codes)  # a sort is cheaper than hashing when (as usual) keys are unique
        if not (ordered[1:] == ordered[:-1]).any():
            return None
        dup = pd.Series(codes).duplicated(keep="first").to_numpy()
    if not dup.any():
        return None
    at = int(np.argmax(dup))
    key = tuple(frame[k].iloc[at] for k in keys)
    if codes is None:
        same = np.ones(len(frame), dtype=bool)
        for k, v in zip(keys, key, strict=True):
            same &= (frame[k] == v).to_numpy(dtype=bool, na_value=False)
    else:
        same = codes == codes[at]
    first = int(frame.index[int(np.argmax(same))])
    shown = ", ".join(f"{k} {describe(v)}" for k, v in zip(keys, key, strict=True))
    return _Failure(
        int(frame.index[at]),
        None,
        f"duplicate key ({shown}): expected one row per {' × '.join(keys)}, "
        f"found the same key in row {first + 1}",
    )


_PLAIN: dict[int, tuple[pa.DataFrameSchema, pa.DataFrameSchema]] = {}


def _without_unique(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """The schema minus its key check, which ``_duplicate`` runs faster (cached per schema)."""
    if not schema.unique:
        return schema
    cached = _PLAIN.get(id(schema))
    if cached is None or cached[0] is not schema:
        plain = copy.deepcopy(schema)
        plain.unique = None
        cached = _PLAIN[id(schema)] = (schema, plain)
    return cached[1]


def _row_failures(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[_Failure]:
    out: list[_Failure] = []
    for rule in row_checks(schema):
        failed = rule.failed(frame)
        if failed.any():
            at = int(np.argmax(failed))
            value, limit = frame[rule.column].iloc[at], frame[rule.limit].iloc[at]
            out.append(_Failure(int(frame.index[at]), rule.column, rule.message(value, limit)))
    return out


def _shown(raw: pd.DataFrame, schema: pa.DataFrameSchema, case: NamedTuple) -> object:
    """The failing cell as the file writes it where parsing changed more than its type (stage
    names are lower-cased to be matched: 'Growing' is shown as written, not as 'growing')."""
    column, pos = case.column, case.index
    spec = schema.columns.get(column) if isinstance(column, str) else None
    if spec is None or spec.metadata["kind"] != LOWER or pd.isna(pos) or column not in raw:
        return case.failure_case
    return as_text(raw[column].loc[[int(pos)]]).iloc[0]


def _schema_failures(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, raw: pd.DataFrame | None = None
) -> list[_Failure]:
    raw = frame if raw is None else raw
    out: list[_Failure] = []
    if schema.unique:
        duplicate = _duplicate(frame, list(schema.unique))
        if duplicate is not None:
            out.append(duplicate)
    try:
        # inplace: the frame is already the caller's private copy; validation does not change it.
        _without_unique(schema).validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return out
    for case in cases.itertuples(index=False):
        check_name = str(case.check)
        pos = None if pd.isna(case.index) else int(case.index)
        column = None if pd.isna(case.column) else str(case.column)
        if check_name == "not_nullable":
            message = "expected a value, found an empty cell"
        elif check_name == "column_in_dataframe":
            column, message = str(case.failure_case), "missing required column"
        else:
            if check_name.startswith(("dtype(", "coerce_dtype(")):
                check_name = "type " + check_name.split("(", 1)[1].rstrip(")")
            shown = _shown(raw, schema, case)
            message = f"expected {check_name}, found {describe(shown)}"
        out.append(_Failure(pos, column, message))
    return out


def _raise_first(
    failures: list[_Failure],
    frame: pd.DataFrame,
    file: str | Path | None,
    names: Mapping[str, str],
) -> None:
    if not failures:
        return
    order = {c: i for i, c in enumerate(frame.columns)}
    # Whole-column failures first, then by row, then by the column's place in the file; a row's
    # duplicate key (no column) comes after its cell errors.
    first = min(
        enumerate(failures),
        key=lambda item: (
            -1 if item[1].pos is None else item[1].pos,
            order.get(item[1].column, len(order)) if item[1].column else len(order) + 1,
            item[0],
        ),
    )[1]
    column = None if first.column is None else names.get(first.column, first.column)
    row = None if first.pos is None else first.pos + 1
    raise InputError(file, first.message, column=column, row=row)


def validate(
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    file: str | Path | None,
    names: Mapping[str, str] | None = None,
    *,
    numbers: str = PLAIN,
) -> pd.DataFrame:
    """The frame typed and checked as ``schema`` says, or InputError for its first failure.

    The frame's index must be the 0-based position of each record in ``file`` (header not
    counted). ``names`` maps a column to the name the user's file gives it, for messages, which
    read e.g. ``data/panel.csv, column 'employment', row 4: expected a number ≥ 0, found -3``.
    ``numbers``: how the file writes numbers in text cells (PLAIN, GERMAN or SEMICOLON).
    """
    names = names or {}
    typed, failures = _coerce(frame, schema, numbers)
    failures += _schema_failures(typed, schema, frame)
    failures += _row_failures(typed, schema)
    _raise_first(failures, frame, file, names)
    return typed
