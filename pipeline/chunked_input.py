"""The input of `clusterstage score` read in chunks (pandas ``read_csv(chunksize=...)`` /
Parquet record batches), only the columns the grain uses, under their contract names, as
features.loaders reads a whole file."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features import schemas
from features.cmp_rows import cmp_columns
from features.errors import InputError
from features.loaders import (
    check_field_counts,
    csv_header,
    normalise_name,
    not_utf8_error,
    open_input,
    parquet_frame,
    repeated_name_error,
    sniff_delimiter,
    unreadable_parquet,
)
from features.row_checks import column_sources

if TYPE_CHECKING:
    import pandera.pandas as pandera

SCHEMAS = {"panel": schemas.PANEL_SCHEMA, "firms": schemas.FIRMS_SCHEMA}
_TEXT_KINDS = (schemas.TEXT, schemas.LOWER, schemas.IDENT, schemas.FLAG)
_NUMBER_KINDS = (schemas.NUMBER, schemas.INTEGER)


@dataclass
class Source:
    """An input file: its columns (snake_case -> as written), size and Parquet attributes."""

    path: Path
    columns: dict[str, str]
    rows_hint: int
    attrs: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> Source:
        path = Path(path)
        suffix = path.suffix.lower()
        head = open_input(path, 65536)
        size = path.stat().st_size
        if suffix == ".csv":
            sep = sniff_delimiter(path)
            try:
                header = csv_header(path, sep)
            except Exception as err:
                raise _csv_error(path, err) from None
            # One pass of the csv module, small beside scoring: a short or long row is a
            # malformed file, not a row with missing values.
            check_field_counts(path, sep)
            lines = max(head.count(b"\n"), 1)
            rows_hint = max(int(size / (len(head) / lines)), 1)
            attrs: dict[str, object] = {}
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                meta = pq.ParquetFile(path)
            except (OSError, ValueError, pa.ArrowException) as err:
                raise unreadable_parquet(path, err) from None
            header = list(meta.schema_arrow.names)
            rows_hint = meta.metadata.num_rows
            raw = (meta.schema_arrow.metadata or {}).get(b"PANDAS_ATTRS")
            attrs = json.loads(raw) if raw else {}
        repeated = repeated_name_error(path, header)
        if repeated is not None:
            raise repeated
        columns = {normalise_name(name): name for name in header}
        return cls(path, columns, rows_hint, attrs if isinstance(attrs, dict) else {})

    def chunks(
        self, read: Mapping[str, str | None], text: set[str], chunk_rows: int
    ) -> Iterator[pd.DataFrame]:
        """Chunks with the columns of ``read`` (name -> the file's snake_case column it is read
        from; None: absent, all-missing), in its order; ``text`` ones are read as text."""
        rename = {self.columns[s]: c for c, s in read.items() if s is not None}
        n = 0
        if self.path.suffix.lower() == ".csv":
            dtype = {source: str for source, c in rename.items() if c in text}
            reader = _csv_reader(self.path, usecols=list(rename), dtype=dtype, chunksize=chunk_rows)
            with reader:
                for chunk in _guarded(self.path, reader):
                    # Rows of empty cells (',,,,' from a spreadsheet) are skipped like blank
                    # lines, and like them not counted, as features.loaders reads them.
                    chunk = chunk[chunk.notna().any(axis=1)].reset_index(drop=True)
                    n += len(chunk)
                    # A number column the parser read as true/false is text that is no number:
                    # each cell is then reported, as when the whole file is read as text.
                    for column in chunk.columns[chunk.dtypes.map(pd.api.types.is_bool_dtype)]:
                        chunk[column] = chunk[column].map(str).astype("str")
                    yield _named(chunk, rename, read)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(self.path)
            try:
                for batch in parquet.iter_batches(batch_size=chunk_rows, columns=list(rename)):
                    frame = batch.to_pandas()
                    # The file's attrs (its national totals) are read once, in `open`; left on
                    # every chunk, pandas would deep-copy them into each derived frame.
                    frame.attrs = {}
                    # pandas' index, if the file has one, back among the columns.
                    chunk = parquet_frame(frame, self.path, first_row=n + 1)
                    n += batch.num_rows
                    yield _named(chunk, rename, read)
            except InputError:
                raise
            except (OSError, ValueError, pa.ArrowException) as err:
                raise unreadable_parquet(self.path, err) from None
        if n == 0:
            raise InputError(self.path, "no data rows: expected at least one row below the header")


def _named(
    chunk: pd.DataFrame, rename: dict[str, str], read: Mapping[str, str | None]
) -> pd.DataFrame:
    """A chunk's columns under their contract names, in ``read``'s order; a column declared
    absent is all-missing, as features.loaders reads it."""
    chunk = chunk.rename(columns=rename)
    for column, source in read.items():
        if source is None:
            chunk[column] = np.nan
    return chunk[list(read)]


def _csv_reader(path: Path, **options: object):
    # As features.loaders reads a CSV (sniffed delimiter, UTF-8 with or without BOM); numbers are
    # left to the fast C parser here, and a column it cannot parse arrives as text, cell by cell
    # checked like the loaders' text cells.
    try:
        return pd.read_csv(
            path,
            sep=sniff_delimiter(path),
            encoding="utf-8-sig",
            skipinitialspace=True,
            **options,
        )
    except Exception as err:
        raise _csv_error(path, err) from None


def _csv_error(path: Path, err: Exception) -> Exception:
    if isinstance(err, UnicodeDecodeError):
        return not_utf8_error(path)
    if isinstance(err, pd.errors.EmptyDataError):
        return InputError(path, "empty file: expected a header row and data rows")
    if isinstance(err, pd.errors.ParserError | ValueError):
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return InputError(path, f"not a well-formed CSV file ({detail})")
    return err


def _guarded(path: Path, reader) -> Iterator[pd.DataFrame]:
    while True:
        try:
            chunk = next(reader)
        except StopIteration:
            return
        except Exception as err:
            raise _csv_error(path, err) from None
        yield chunk


def _number_style(
    source: Source,
    read: Mapping[str, str | None],
    numeric: set[str],
    schema: pandera.DataFrameSchema,
    rename: Mapping[str, str],
    chunk_rows: int,
) -> str:
    """How the input writes numbers, decided for the whole file as features.loaders.number_style
    decides it: for a ';'-separated CSV a first pass reads the ``numeric`` columns of ``read``
    as text (``rename``: their names in ``schema``)."""
    if source.path.suffix.lower() != ".csv" or sniff_delimiter(source.path) != ";":
        return schemas.PLAIN
    wanted = {c: f for c, f in read.items() if c in numeric and f is not None}
    if wanted:
        for chunk in source.chunks(wanted, set(wanted), chunk_rows):
            if schemas.has_decimal_comma(chunk.rename(columns=rename), schema):
                return schemas.GERMAN
    return schemas.SEMICOLON


def grain_reader(
    source: Source, grain: str, chunk_rows: int, columns: Mapping[str, str | None] | None
) -> tuple[Iterator[pd.DataFrame], dict[str, str], str]:
    """The input's chunks with the columns the grain reads, under their contract names, the
    file's name of each renamed one (for messages) and how the file writes numbers
    (schemas.PLAIN, GERMAN or SEMICOLON). A required column missing or a bad column mapping is
    an InputError before anything is read."""
    if grain == "cmp":
        from features.cmp import SOURCE_SCHEMA

        if columns:
            raise InputError(
                source.path, "a column mapping is not used for the cmp grain; its columns are fixed"
            )
        mapping = cmp_columns()
        kinds = {export: SOURCE_SCHEMA.columns[c].metadata["kind"] for export, c in mapping.items()}
        text = {export for export, kind in kinds.items() if kind in _TEXT_KINDS}
        numeric = {export for export, kind in kinds.items() if kind in _NUMBER_KINDS}
        read = {c: c for c in mapping if c in source.columns}
        numbers = _number_style(source, read, numeric, SOURCE_SCHEMA, mapping, chunk_rows)
        if numbers != schemas.PLAIN:
            text |= numeric  # parsed as the file writes them, not by pandas' parser
        return source.chunks(read, text, chunk_rows), {}, numbers
    schema = SCHEMAS[grain]
    read = column_sources(source.columns, schema, columns, source.path, grain)
    text = {c for c, spec in schema.columns.items() if spec.metadata["kind"] in _TEXT_KINDS}
    numeric = set(schemas.number_columns(schema))
    numbers = _number_style(source, read, numeric, schema, {}, chunk_rows)
    if numbers != schemas.PLAIN:
        text |= numeric
    names = {c: s for c, s in read.items() if s is not None and s != c}
    return source.chunks(read, text, chunk_rows), names, numbers
