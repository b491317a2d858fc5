"""Reading user inputs into the validated grains (panel, firms, labels; see features/schemas.py).

``load_input`` is the one entry point the rest of the project calls: whatever the grain of the
file, it returns a validated panel (one row per region × cluster × year). Every problem with the
file is an ``InputError`` naming the file, and where it can the column and the 1-based data row.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from features import schemas
from features.aggregate import firms_to_panel
from features.errors import InputError, read_utf8
from features.schemas import KEYS, TOTAL_LABEL

if TYPE_CHECKING:
    from pandera.pandas import DataFrameSchema

Grain = Literal["panel", "firms", "cmp"]

# frame.attrs key holding national totals (rows whose region is the total label). A mapping of
# column -> list of values, not a DataFrame: attrs must stay JSON-serialisable (pyarrow stores them
# in the Parquet file) and comparable (pandas compares attrs when it merges or concatenates).
NATIONAL_TOTALS = "national_totals"

_SUFFIXES = (".csv", ".parquet")
_DELIMITERS = (",", ";", "\t")


def normalise_name(name: object) -> str:
    """A column name in snake_case: stripped, lower case, runs of spaces and dashes become '_'."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def repeated_name_error(path: Path, names: Iterable[object]) -> InputError | None:
    """The error for two columns whose snake_case names are one, or None."""
    seen: set[str] = set()
    for name in names:
        snake = normalise_name(name)
        if snake in seen:
            return InputError(
                path, f"two columns are named {snake!r} (ignoring case); expected unique names"
            )
        seen.add(snake)
    return None


def csv_header(path: Path, sep: str) -> list[str]:
    """The header's names as written, blank ones left out: pandas' reader renames a repeated
    name ('employment', 'employment.1'), which would hide the repeat."""
    raw = pd.read_csv(
        path,
        sep=sep,
        header=None,
        nrows=1,
        dtype=str,
        encoding="utf-8-sig",
        skipinitialspace=True,
        index_col=False,
    )
    return [name for name in raw.iloc[0].tolist() if isinstance(name, str) and name.strip()]


def sniff_delimiter(path: Path) -> str:
    """The most frequent of comma, semicolon and tab in the header line (comma if none)."""
    with path.open("rb") as handle:
        head = handle.readline(65536)
    try:
        line = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ","  # let the reader report the bad bytes with their position
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_csv(path: Path) -> pd.DataFrame:
    # Every cell is read as text: the schemas parse numbers, so a column's type never depends
    # on pandas' guess (leading zeros of codes survive, 'abc' in a number column is reported).
    # index_col=False: with pandas' default, rows one field longer than the header (a trailing
    # comma on every row) silently turn the first column into the index and shift the others.
    sep = sniff_delimiter(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                encoding="utf-8-sig",
                skipinitialspace=True,
                index_col=False,
            )
    except UnicodeDecodeError:
        raise not_utf8_error(path) from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "empty file: expected a header row and data rows") from None
    except pd.errors.ParserError as err:
        check_field_counts(path, sep)
        detail = str(err).strip().splitlines()[-1]
        raise InputError(path, f"not a well-formed CSV file ({detail})") from None
    # Rows with every cell empty (',,,,' from a spreadsheet) are skipped like blank lines, and
    # like them not counted as rows.
    frame = frame[frame.notna().any(axis=1)].reset_index(drop=True)
    named = [c for c in frame.columns if not str(c).startswith("Unnamed: ")]
    # Scanning costs half a read, so only when a row may be short or long: a short row shows as
    # a blank last column, a long one as pandas' warning that it dropped fields.
    dropped = any(issubclass(w.category, pd.errors.ParserWarning) for w in caught)
    if dropped or (named and frame[named[-1]].isna().any()):
        check_field_counts(path, sep)
    repeated = repeated_name_error(path, csv_header(path, sep))
    if repeated is not None:
        raise repeated
    return frame


def check_field_counts(path: Path, sep: str) -> None:
    """InputError at the first record with fewer fields than the header names, or with values
    beyond the header's fields; blank lines are skipped and empty trailing fields (a spreadsheet's
    trailing delimiter) are allowed, as the reader does."""
    try:
        _scan_field_counts(path, sep)
    except UnicodeDecodeError:
        raise not_utf8_error(path) from None
    except csv.Error as err:
        raise InputError(path, f"not a well-formed CSV file ({err})") from None


def _scan_field_counts(path: Path, sep: str) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        records = csv.reader(handle, delimiter=sep, skipinitialspace=True)
        header = next(records, [])
        # Trailing header cells without a name are leftovers too: rows need not fill them.
        needed = len(header)
        while needed and not header[needed - 1].strip():
            needed -= 1
        row = 0
        for record in records:
            if not any(cell.strip() for cell in record):
                continue  # a blank line, or a row of empty cells: skipped, as the reader does
            row += 1
            if len(record) < needed:
                names, expected = needed, "one value, or an empty one, per column"
            elif any(cell.strip() for cell in record[len(header) :]):
                names, expected = len(header), "no values beyond the header's columns"
            else:
                continue
            raise InputError(
                path,
                f"{len(record)} fields where the header names {names} (line "
                f"{records.line_num}); expected {expected}",
                row=row,
            )


def number_style(path: Path, frame: pd.DataFrame, schema: DataFrameSchema) -> str:
    """How ``path`` writes the numbers of ``frame`` (its rows as read, columns under contract
    names): schemas.PLAIN, or for a ';'-separated CSV (a spreadsheet's CSV where the decimal mark
    is a comma) schemas.GERMAN when any number cell has a decimal comma, else schemas.SEMICOLON,
    which refuses a cell like 1.250 that reads as 1250 in Germany and 1.25 elsewhere."""
    if path.suffix.lower() != ".csv" or sniff_delimiter(path) != ";":
        return schemas.PLAIN
    return schemas.GERMAN if schemas.has_decimal_comma(frame, schema) else schemas.SEMICOLON


def not_utf8_error(path: Path) -> InputError:
    """The error for a CSV file that is not UTF-8, naming the first bad byte and its line."""
    # The reader decodes in blocks, so its offset is not the file's: decode the whole file to
    # name the line a user can open (this runs only on the error path).
    try:
        read_utf8(
            path,
            "a UTF-8 encoded CSV file (re-save it as UTF-8, e.g. 'CSV UTF-8' in a spreadsheet)",
        )
    except InputError as err:
        return err
    return InputError(path, "not UTF-8 text; expected a UTF-8 encoded CSV file")


def unreadable_parquet(path: Path, err: Exception) -> InputError:
    """The error for a Parquet file that pyarrow cannot read (or not as text where it should)."""
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return InputError(path, f"not a readable Parquet file ({detail})")


def parquet_frame(frame: pd.DataFrame, path: Path, first_row: int = 1) -> pd.DataFrame:
    """A frame read from Parquet with pandas' index (``df.set_index([...]).to_parquet``) back
    among the columns, and its text checked: pyarrow decodes text only when a cell is used, so
    bytes that are not UTF-8 would otherwise surface later as a crash. ``first_row``: the
    1-based row of the frame's first record, for the message."""
    named = [n for n in frame.index.names if n is not None and n not in frame.columns]
    if named:
        frame = frame.reset_index(level=named)
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
            try:
                pa.array(series).validate(full=True)  # the arrow buffer, not a copy
            except pa.ArrowException as err:
                detail = str(err).strip().splitlines()[-1]
                raise InputError(
                    path, f"not a readable Parquet file (column {column!r}: {detail})"
                ) from None
        elif series.dtype == object:
            for pos, cell in enumerate(series):
                if isinstance(cell, bytes):
                    try:
                        cell.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InputError(
                            path,
                            f"not a readable Parquet file (column {column!r}, row "
                            f"{first_row + pos}: bytes that are not UTF-8 text)",
                        ) from None
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise unreadable_parquet(path, err) from None
    return parquet_frame(frame, path)


def open_input(path: Path, head_bytes: int) -> bytes:
    """The first bytes of a CSV or Parquet input, after checking it can be read at all: a known
    suffix, a file (not a folder) that exists, may be read and is not empty; else InputError."""
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(
            path, f"unsupported file type {suffix or '(none)'!r}; expected .csv or .parquet"
        )
    try:
        if path.is_dir():
            raise InputError(path, "cannot read: it is a folder, expected a file")
        with path.open("rb") as handle:
            head = handle.read(head_bytes)
    except FileNotFoundError:
        raise InputError(path, "cannot read: no such file") from None
    except PermissionError:
        raise InputError(path, "cannot read: permission denied") from None
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror or err}") from None
    if not head:
        raise InputError(path, "empty file: expected a header row and data rows")
    return head


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (chosen by suffix) with snake_case column names.

    CSV cells come back as text (missing cells as NaN); Parquet columns keep their types. The
    index is the 0-based position of each record, which error messages turn into 1-based rows.
    A missing, unreadable, empty or header-only file, or an unknown suffix, is an InputError.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    open_input(path, 1)
    frame = _read_csv(path) if suffix == ".csv" else _read_parquet(path)
    if frame.empty:
        raise InputError(path, "no data rows: expected at least one row below the header")
    # Columns without a header and without values are spreadsheet leftovers (a trailing comma).
    blank = [c for c in frame.columns if str(c).startswith("Unnamed: ") and frame[c].isna().all()]
    frame = frame.drop(columns=blank).reset_index(drop=True)
    repeated = repeated_name_error(path, frame.columns)
    if repeated is not None:
        raise repeated
    frame.columns = [normalise_name(c) for c in frame.columns]
    return frame


def mapping_by_contract(
    columns: Mapping[str, str | None] | None, path: Path | None
) -> dict[str, str | None]:
    """A column mapping keyed by snake_case contract names; InputError where two of its keys
    name one contract column (``employment`` and ``Employment``) with different sources."""
    out: dict[str, str | None] = {}
    written: dict[str, str | None] = {}
    for key, source in (columns or {}).items():
        contract = normalise_name(key)
        if contract in out and source_key(out[contract]) != source_key(source):
            raise InputError(path, mapped_twice(contract, written[contract], source))
        out[contract], written[contract] = source, source
    return out


def source_key(source: str | None) -> str | None:
    """A mapping's source column as compared with another: snake_case, None when absent."""
    return None if source is None or not str(source).strip() else normalise_name(source)


def mapped_twice(
    contract: str, first: str | None, second: str | None, what: str = "column mapping"
) -> str:
    """The message for a contract column given two different sources."""

    def shown(source: str | None) -> str:
        return "nothing (absent)" if source_key(source) is None else repr(str(source).strip())

    return (
        f"{what} maps {contract!r} twice, from {shown(first)} and from {shown(second)}; "
        "expected one source per contract column"
    )


def apply_columns(
    frame: pd.DataFrame,
    path: Path,
    columns: Mapping[str, str | None] | None,
    *,
    required: tuple[str, ...],
    known: tuple[str, ...],
    grain: str,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rename source columns to contract names; return the frame and contract -> source names.

    A None source declares the contract column absent from the source: it is added all-missing.
    A required column that is neither present nor mapped is an error listing the columns found.
    """
    columns = mapping_by_contract(columns, path)
    found = list(frame.columns)
    names: dict[str, str] = {}
    renames: dict[str, str] = {}
    absent: list[str] = []
    for contract, source in columns.items():
        if contract not in known:
            raise InputError(
                path,
                f"column mapping names unknown {grain} column {contract!r}; "
                f"expected one of {', '.join(known)}",
            )
        if source is None or str(source).strip() == "":
            # establishments may be declared absent (many official tables lack it); the
            # measure of size may not: every indicator rests on it.
            if contract in ("region", "cluster", "year", "firm_id", "employees", "employment"):
                raise InputError(
                    path, f"column mapping declares {contract!r} absent; it is required"
                )
            absent.append(contract)
            continue
        source = normalise_name(source)
        if source not in found:
            raise InputError(
                path,
                f"column mapping {contract}={source}: no column {source!r} in the file; "
                f"columns found: {', '.join(found)}",
            )
        if source in renames:
            raise InputError(
                path,
                f"column mapping sends {source!r} to both {renames[source]!r} and {contract!r}; "
                "expected one contract column per source column",
            )
        renames[source] = contract
        names[contract] = source
    # A mapping wins over a same-named column of the file.
    shadowed = [c for c in renames.values() if c in found and c not in renames]
    out = frame.drop(columns=shadowed).rename(columns=renames)
    for contract in absent:
        out[contract] = np.nan
    for column in required:
        if column not in out.columns:
            raise InputError(
                path,
                f"missing required column; expected {', '.join(required)} "
                f"(map other names with --column CONTRACT=SOURCE or data.columns); "
                f"columns found: {', '.join(found)}",
                column=column,
            )
    return out[[c for c in out.columns if c in known]], names


_PANEL_KNOWN = (
    *schemas.PANEL_REQUIRED,
    *schemas.PANEL_OPTIONAL,
    *schemas.PANEL_MICRODATA,
    *schemas.PANEL_CMP,
)


def _finish_panel(frame: pd.DataFrame) -> pd.DataFrame:
    """Contract column order, float64 numbers, sorted by region, cluster, year, fresh index."""
    order = [c for c in _PANEL_KNOWN if c in frame.columns]
    out = frame[order].copy()
    for column in order:
        spec = schemas.PANEL_SCHEMA.columns[column]
        if spec.metadata["kind"] == schemas.NUMBER:
            out[column] = out[column].astype("float64")
    est = out["establishments"]
    if est.notna().all():
        out["establishments"] = est.astype("int64")
    else:
        out["establishments"] = est.astype("float64")
    out["year"] = out["year"].astype("int64")
    out = out.sort_values(list(KEYS), kind="stable").reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def national_totals(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The national totals ``load_panel`` kept in ``frame.attrs``, as a frame (or None).

    Columns: cluster, year, employment (and any other panel number the total rows had), plus
    ``national_employment_total`` (the row whose region and cluster are both the total label).
    """
    raw = frame.attrs.get(NATIONAL_TOTALS)
    if not raw:
        return None
    out = pd.DataFrame(raw)
    out["cluster"] = out["cluster"].astype("str")
    out["year"] = out["year"].astype("int64")
    for column in out.columns.drop(["cluster", "year"]):
        out[column] = pd.to_numeric(out[column]).astype("float64")
    return out


def is_total(names: pd.Series, total_label: str) -> pd.Series:
    """Whether each name is the total label: 'insgesamt', 'INSGESAMT' and ' Insgesamt ' are
    'Insgesamt' too (spreadsheets change case, and a total read as a cluster is counted twice)."""
    label = total_label.strip().casefold()
    return names.astype("str").str.strip().str.casefold().eq(label).fillna(False)


def _split_totals(
    frame: pd.DataFrame, total_label: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cluster rows, region total rows (cluster is the label), national rows (region is)."""
    national = is_total(frame["region"], total_label)
    regional = is_total(frame["cluster"], total_label) & ~national
    return frame[~national & ~regional], frame[regional], frame[national]


def check_region_totals(
    clusters: pd.DataFrame, totals: pd.DataFrame, path: Path | None, total_label: str
) -> None:
    """InputError for the first region-year of ``clusters`` (region, year, in file order)
    without a total in ``totals`` (region, year) when ``totals`` has some: summing its clusters
    instead would mix two kinds of total (and double count overlapping sections)."""
    if totals.empty or clusters.empty:
        return
    keys = pd.MultiIndex.from_frame(clusters[["region", "year"]])
    lacking = ~keys.isin(pd.MultiIndex.from_frame(totals[["region", "year"]]))
    if lacking.any():
        region, year = keys[int(np.argmax(lacking))]
        raise InputError(
            path,
            f"no total row for region {region!r} in {year}, while other regions have one; "
            f"expected a total ({total_label}) row for every region and year, or none",
        )


def national_attr(national: pd.DataFrame, label: str) -> dict[str, list[object]]:
    """The national rows (clusters, with the grand total of the year beside each) as the
    column -> list of values kept in ``attrs[NATIONAL_TOTALS]``."""
    numbers = [
        c
        for c in national.columns
        if c not in ("region", "cluster", "year")
        and pd.api.types.is_numeric_dtype(national[c].dtype)
        and not pd.api.types.is_bool_dtype(national[c].dtype)
        and national[c].notna().any()
    ]
    grand_rows = is_total(national["cluster"], label).to_numpy()
    grand = national[grand_rows]
    rows = national[~grand_rows][["cluster", "year", *numbers]]
    rows = rows.merge(
        grand[["year", "employment"]].rename(columns={"employment": "national_employment_total"}),
        on="year",
        how="left",
    )
    if rows.empty and not grand.empty:
        rows = grand[["year", "employment"]].rename(
            columns={"employment": "national_employment_total"}
        )
        rows.insert(0, "cluster", label)
    rows = rows.sort_values(["cluster", "year"], kind="stable")
    attr: dict[str, list[object]] = {}
    for column in rows.columns:
        values = rows[column].astype(object).where(rows[column].notna(), None)
        attr[column] = [v.item() if isinstance(v, np.generic) else v for v in values]
    return attr


def _join_region_totals(
    panel: pd.DataFrame, region_totals: str | Path, input: Path
) -> pd.DataFrame:
    """Join a region, year, region_employment_total file; its values win over any others. A
    region-year of ``input`` with no total from the file (or otherwise) is an InputError: its
    clusters would be summed instead, while the other regions have their stated totals."""
    path = Path(region_totals)
    raw = read_table(path)
    frame, _ = apply_columns(
        raw,
        path,
        None,
        required=schemas.REGION_TOTALS_COLUMNS,
        known=schemas.REGION_TOTALS_COLUMNS,
        grain="region totals",
    )
    schema = schemas.REGION_TOTALS_SCHEMA
    totals = schemas.validate(frame, schema, path, numbers=number_style(path, frame, schema))
    attrs = dict(panel.attrs)
    joined = panel.merge(
        totals.rename(columns={"region_employment_total": "_file_total"}),
        on=["region", "year"],
        how="left",
    )
    if "region_employment_total" in joined.columns:
        joined["region_employment_total"] = joined["_file_total"].combine_first(
            joined["region_employment_total"]
        )
    else:
        joined["region_employment_total"] = joined["_file_total"]
    joined = joined.drop(columns="_file_total")
    lacking = joined["region_employment_total"].isna().to_numpy()
    if lacking.any():
        region, year = joined[["region", "year"]].iloc[int(np.argmax(lacking))]
        raise InputError(
            path,
            f"no row for region {region!r} in {year}, a region and year of {input.name}; "
            "expected a total for every region and year of the input, the region written as there",
        )
    joined.attrs = attrs
    return joined


def attach_region_totals(clusters: pd.DataFrame, total_rows: pd.DataFrame) -> pd.DataFrame:
    """Each region-year's total row (its employment) as ``region_employment_total`` of its
    cluster rows; a total row wins over a value the cluster rows already carry."""
    given = total_rows[["region", "year", "employment"]].rename(columns={"employment": "_total"})
    out = clusters.merge(given, on=["region", "year"], how="left")
    if "region_employment_total" in out.columns:
        out["region_employment_total"] = out["_total"].combine_first(out["region_employment_total"])
    else:
        out["region_employment_total"] = out["_total"]
    return out.drop(columns="_total")


def load_panel(
    path: str | Path,
    *,
    columns: Mapping[str, str | None] | None = None,
    total_label: str | None = TOTAL_LABEL,
    region_totals: str | Path | None = None,
) -> pd.DataFrame:
    """Read and validate a panel-grain file: one row per region × cluster × year.

    ``columns`` maps contract column -> source column; a None source declares the contract column
    absent (added all-missing, allowed even for ``establishments``). Columns outside the contract
    (other than the project's own microdata and US Cluster Mapping columns) are dropped.

    Totals: a row whose cluster is ``total_label`` is its region's total, not a cluster. It becomes
    ``region_employment_total`` of that region-year. Region totals must come from such rows (or
    the ``region_totals`` file), never from summing the clusters: official tables often list
    overlapping sections (the German Länder table has both "Produzierendes Gewerbe ohne Baugewerbe
    (B-E)" and the "Verarbeitendes Gewerbe (C)" inside it), so a sum double counts. A row whose
    region is ``total_label`` is a national total: it is dropped from the panel and kept in
    ``frame.attrs["national_totals"]`` (read it with ``national_totals(frame)``).

    ``region_totals``: an optional file of region, year, region_employment_total; its values take
    precedence over total rows, which take precedence over a region_employment_total column.
    """
    path = Path(path)
    raw = read_table(path)
    inherited = raw.attrs.get(NATIONAL_TOTALS)
    frame, names = apply_columns(
        raw,
        path,
        columns,
        required=schemas.PANEL_REQUIRED,
        known=_PANEL_KNOWN,
        grain="panel",
    )
    schema = schemas.PANEL_SCHEMA
    frame = schemas.validate(frame, schema, path, names, numbers=number_style(path, frame, schema))
    attrs: dict[str, object] = {}
    if total_label is not None and total_label.strip():
        label = total_label.strip()
        clusters, regional, national = _split_totals(frame, label)
        if clusters.empty:
            raise InputError(
                path, f"no cluster rows: every row is a total ({label!r}); expected clusters too"
            )
        if not regional.empty:
            given = clusters.get("region_employment_total", pd.Series(np.nan, clusters.index))
            check_region_totals(clusters[given.isna()], regional, path, label)
            clusters = attach_region_totals(clusters, regional)
        if not national.empty:
            attrs[NATIONAL_TOTALS] = national_attr(national, label)
        frame = clusters
    if NATIONAL_TOTALS not in attrs and inherited:
        attrs[NATIONAL_TOTALS] = inherited
    frame.attrs = attrs
    if region_totals is not None:
        frame = _join_region_totals(frame, region_totals, path)
    return _finish_panel(frame)


def load_firms(
    path: str | Path, *, columns: Mapping[str, str | None] | None = None
) -> pd.DataFrame:
    """Read and validate firm microdata: one row per region × firm_id × year."""
    path = Path(path)
    known = (*schemas.FIRMS_REQUIRED, *schemas.FIRMS_OPTIONAL)
    frame, names = apply_columns(
        read_table(path),
        path,
        columns,
        required=schemas.FIRMS_REQUIRED,
        known=known,
        grain="firms",
    )
    schema = schemas.FIRMS_SCHEMA
    frame = schemas.validate(frame, schema, path, names, numbers=number_style(path, frame, schema))
    return frame.reset_index(drop=True)


def load_labels(path: str | Path) -> pd.DataFrame:
    """Read and validate stage labels: region, cluster, year, stage, source, confidence.

    Stage names are matched case-insensitively and returned in lower case; an unknown stage is an
    error naming its row and the allowed names. Missing optional columns are added empty. Rows
    keep the file's order.
    """
    path = Path(path)
    known = (*schemas.LABELS_REQUIRED, *schemas.LABELS_OPTIONAL)
    frame, _ = apply_columns(
        read_table(path),
        path,
        None,
        required=schemas.LABELS_REQUIRED,
        known=known,
        grain="labels",
    )
    schema = schemas.LABELS_SCHEMA
    frame = schemas.validate(frame, schema, path, numbers=number_style(path, frame, schema))
    if "source" not in frame.columns:
        frame["source"] = pd.Series(np.nan, index=frame.index, dtype="str")
    if "confidence" not in frame.columns:
        frame["confidence"] = np.nan
    frame["confidence"] = frame["confidence"].astype("float64")
    # File order is kept so that later messages can name a label's row in the file.
    return frame[list(known)].reset_index(drop=True)


def load_relatedness(path: str | Path, measure: str | None = None) -> pd.DataFrame:
    """A relatedness table (``features.indicators.linkages.relatedness_matrix``) read from the US
    Cluster Mapping Project's ``related_clusters.json``: a non-empty JSON list of cluster-pair
    records with ``cluster_name``, ``cluster_name_2`` and one field per measure (``measure``,
    by default ``linkages.DEFAULT_MEASURE``)."""
    from features.indicators.linkages import DEFAULT_MEASURE, check_measure, relatedness_matrix

    path = Path(path)
    measure = DEFAULT_MEASURE if measure is None else measure
    check_measure(measure, path)  # before reading: a misspelt name is the first thing to fix
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"expected a JSON list of cluster pairs ({err})") from None
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(r, dict) for r in records)
    ):
        raise InputError(path, "expected a non-empty JSON list of cluster-pair records")
    return relatedness_matrix(pd.DataFrame.from_records(records), measure, path)


def load_input(
    path: str | Path,
    grain: Grain,
    *,
    columns: Mapping[str, str | None] | None = None,
    total_label: str | None = TOTAL_LABEL,
    region_totals: str | Path | None = None,
) -> pd.DataFrame:
    """Any input grain as a validated panel (one row per region × cluster × year).

    panel: ``load_panel``; firms: ``load_firms`` aggregated by ``features.aggregate.firms_to_panel``
    (adds hhi, gini, median_firm_age, entries, exits); cmp: ``features.cmp.load_cmp``.
    region and cluster are str, year int64, numbers float64 (establishments int64, or float64
    when some are missing); rows sorted by region, cluster, year.
    """
    if grain == "panel":
        return load_panel(
            path, columns=columns, total_label=total_label, region_totals=region_totals
        )
    if grain == "firms":
        panel = firms_to_panel(load_firms(path, columns=columns))
    elif grain == "cmp":
        from features.cmp import load_cmp

        if columns:
            raise InputError(
                path, "a column mapping is not used for the cmp grain; its columns are fixed"
            )
        panel = load_cmp(path)
    else:
        raise InputError(path, f"unknown grain {grain!r}; expected panel, firms or cmp")
    if region_totals is not None:
        panel = _join_region_totals(panel, region_totals, Path(path))
    return _finish_panel(schemas.validate(panel, schemas.PANEL_SCHEMA, path))
