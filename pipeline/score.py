"""`clusterstage score`: stage, drivers and recommendations for every row of an input of any size.

Memory stays bounded by the size of a group of regions, not of the input:

1. **Read** the input in chunks (pandas ``read_csv(chunksize=...)`` / Parquet record batches,
   only the columns the grain uses). Each chunk's rows are checked one by one
   (features.row_checks.check_rows): bad rows are set aside with their reason, good rows are
   spilled to a temporary Parquet folder partitioned by a hash of the region, so that all rows of
   a region land in one bucket. National total rows (panel grain) are kept in memory (a few per
   cluster-year).
2. **Prepare** each bucket (a bounded group of regions): repeated keys, total rows, firm
   aggregation (firms grain), shared region names (cmp grain); the bucket's share of the national
   totals is summed, and, once those are known, its share of the co-location counts.
3. **Score** each bucket with the national context of the whole input (so its indicators equal a
   one-shot build of the whole input), spilling its table, sorted by ``row``, to Parquet.
4. **Write** the scored rows in input order, one window of row numbers at a time read from every
   bucket's table (Parquet statistics skip the row groups outside the window), then the rows
   without a row number (aggregated from firm rows), into a temporary file renamed onto OUT
   only when everything succeeded (pipeline.io.atomic_path).

Output columns: models.scoring. Rows that cannot be scored keep their row number and get the
reason in ``error``; stderr gets one line per kind of them (``ScoreSummary``): rows that could not
be used, rows without any change over time known, and total rows (a note: they are reference).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features import schemas
from features.cmp_rows import CmpLevels, cmp_columns, cmp_rows
from features.errors import InputError
from features.groups import (
    Group,
    empty_firms,
    empty_panel,
    given_national,
    national_errors,
    prepare_group,
    region_years,
    shared_region_names,
    split_national,
)
from features.loaders import (
    NATIONAL_TOTALS,
    check_field_counts,
    check_region_totals,
    normalise_name,
    not_utf8_error,
    open_input,
    parquet_frame,
    sniff_delimiter,
    unreadable_parquet,
)
from features.national_context import cooccurrence, national_context, partial_totals
from features.row_checks import ROW, check_rows, column_sources, no_errors
from features.schemas import TOTAL_LABEL
from models.bundle import StageModel
from models.scoring import (
    N_RECOMMENDATIONS,
    conform,
    default_knowledge_base,
    empty_table,
    not_scored_kind,
    score_group,
)
from pipeline.io import atomic_path, check_writable, to_csv, writing
from pipeline.model_source import resolve_model
from pipeline.params import accepts, expected_of
from policy.knowledge_base import load_knowledge_base
from policy.ranking import DEFAULT_SCORING, Scoring

if TYPE_CHECKING:
    import pandera.pandas as pandera
    import pyarrow as pa

OUTPUT_SUFFIXES = (".parquet", ".csv", ".jsonl")
CHUNK_ROWS = 100_000  # input rows read at a time
GROUP_ROWS = 100_000  # input rows per group of regions (aimed at; regions are never split)
# Rows per row group of a spilled scored table: small enough that a window of row numbers reads
# little beyond itself from each bucket.
SCORED_ROW_GROUP = 8_192


# The settings of the output that params.yaml holds too, each the key of an option (--top-k,
# --k, --driver-weight, ...): the option defaults to the key's default, takes what params.yaml
# takes there, and dvc.yaml's score stage passes it from the key, as recommend reads the
# recommend.* ones (pipeline.params.RecommendParams.scoring), so that both rank alike. Not among
# them: recommend.lever_weight, since score computes no levers (its weight changes nothing here).
SETTINGS = {
    "top_k": "explain.top_k",
    "k": "recommend.k",
    "driver_weight": "recommend.driver_weight",
    "high_percentile": "recommend.high_percentile",
    "low_percentile": "recommend.low_percentile",
    "near_tie_margin": "recommend.near_tie_margin",
    "total_label": "data.total_label",
}
SCORING_SETTINGS = ("driver_weight", "high_percentile", "low_percentile", "near_tie_margin")

_SCHEMAS = {"panel": schemas.PANEL_SCHEMA, "firms": schemas.FIRMS_SCHEMA}
_TEXT_KINDS = (schemas.TEXT, schemas.LOWER, schemas.IDENT, schemas.FLAG)
_NUMBER_KINDS = (schemas.NUMBER, schemas.INTEGER)


# --- reading the input in chunks ----------------------------------------------------------


@dataclass
class _Source:
    """An input file: its columns (snake_case -> as written), size and Parquet attributes."""

    path: Path
    columns: dict[str, str]
    rows_hint: int
    attrs: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> _Source:
        path = Path(path)
        suffix = path.suffix.lower()
        head = open_input(path, 65536)
        size = path.stat().st_size
        if suffix == ".csv":
            header = list(_csv_reader(path, nrows=0).columns)
            # One pass of the csv module, small beside scoring: a short or long row is a
            # malformed file, not a row with missing values.
            check_field_counts(path, sniff_delimiter(path))
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
        columns: dict[str, str] = {}
        for name in header:
            snake = normalise_name(name)
            if snake in columns:
                raise InputError(
                    path, f"two columns are named {snake!r} (ignoring case); expected unique names"
                )
            columns[snake] = name
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


# --- the spill: rows partitioned by region ---------------------------------------------------


def _buckets(region: pd.Series, n: int) -> np.ndarray:
    """A stable bucket per region name (the same in every chunk and every run)."""
    names = region.astype(object).where(region.notna(), "").to_numpy(dtype=object)
    return (pd.util.hash_array(names) % np.uint64(n)).astype(np.int64)


_SPILL_HINT = " (the run's temporary folder; TMPDIR names where it goes)"


class _Spill:
    """Temporary Parquet files: per bucket, the checked rows, the rows that failed and the
    scored table. A full disk there is an InputError naming the temporary folder."""

    def __init__(self, root: Path, n_buckets: int) -> None:
        self.root = root
        self.n_buckets = n_buckets
        self.rows_per_bucket = np.zeros(n_buckets, dtype=np.int64)
        self._parts = 0

    def add(self, kind: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        bucket = _buckets(frame["region"], self.n_buckets)
        order = np.argsort(bucket, kind="stable")
        ids, starts = np.unique(bucket[order], return_index=True)
        bounds = [*starts[1:], len(order)]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for b, start, stop in zip(ids, starts, bounds, strict=True):
            part = table.take(order[start:stop])
            folder = self.root / kind / f"b{b:05d}"
            with writing(self.root, _SPILL_HINT):
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, folder / f"{self._parts:07d}.parquet")
            self._parts += 1
            if kind == "rows":
                self.rows_per_bucket[b] += stop - start

    def read(self, kind: str, bucket: int) -> pd.DataFrame | None:
        folder = self.root / kind / f"b{bucket:05d}"
        if not folder.is_dir():
            return None
        import pyarrow.dataset as ds

        return ds.dataset(str(folder), format="parquet").to_table().to_pandas()

    def save(self, kind: str, bucket: int, frame: pd.DataFrame) -> None:
        folder = self.root / kind
        with writing(self.root, _SPILL_HINT):
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(folder / f"b{bucket:05d}.parquet", index=False)

    def load(self, kind: str, bucket: int) -> pd.DataFrame:
        return pd.read_parquet(self.root / kind / f"b{bucket:05d}.parquet")

    def save_scored(self, bucket: int, table: pd.DataFrame, schema: pa.Schema) -> None:
        """A bucket's output table (``conform``ed to ``schema``), sorted by row, empty rows last."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.root / "scored"
        table = table.sort_values("row", kind="stable", na_position="last")
        arrow = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
        with writing(self.root, _SPILL_HINT):
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                arrow, folder / f"b{bucket:05d}.parquet", row_group_size=SCORED_ROW_GROUP
            )

    def scored_in_row_order(self, last_row: int, window: int) -> Iterator[pa.Table]:
        """The scored tables of every bucket (``save_scored``) as Arrow tables in input order:
        rows 1..``last_row``, ``window`` row numbers at a time, then the rows without a row
        number, bucket by bucket."""
        import pyarrow.dataset as ds

        folder = self.root / "scored"
        if not folder.is_dir():
            return
        files = sorted(str(path) for path in folder.iterdir())
        dataset = ds.dataset(files, format="parquet")
        row = ds.field("row")
        window = max(window, 1)
        for start in range(1, last_row + 1, window):
            part = dataset.to_table(filter=(row >= start) & (row < start + window))
            if part.num_rows:
                yield part.sort_by("row")
        for path in files:
            part = ds.dataset(path, format="parquet").to_table(filter=row.is_null())
            if part.num_rows:
                yield part


# --- writing the output ----------------------------------------------------------------------


def output_schema(top_k: int) -> pa.Schema:
    """The Arrow schema of the output table (models.scoring.empty_table), with the pandas
    metadata that gives its columns their pandas types back."""
    import pyarrow as pa

    return pa.Schema.from_pandas(empty_table(top_k), preserve_index=False)


class _Writer:
    """Appends Arrow tables of ``output_schema`` to a Parquet, CSV or JSON Lines file (by
    suffix)."""

    def __init__(self, path: Path, suffix: str, top_k: int) -> None:
        self.suffix = suffix
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            self.parquet = pq.ParquetWriter(path, output_schema(top_k))
        else:
            self.handle = path.open("w", encoding="utf-8", newline="")
            if suffix == ".csv":
                to_csv(empty_table(top_k), self.handle)

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.suffix == ".parquet":
            self.parquet.write_table(table)
        elif self.suffix == ".csv":
            to_csv(table.to_pandas(), self.handle, header=False)
        else:
            table.to_pandas().to_json(self.handle, orient="records", lines=True, force_ascii=False)

    def close(self) -> None:
        if self.suffix == ".parquet":
            self.parquet.close()
        else:
            self.handle.close()


# --- the run ------------------------------------------------------------------------------


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


@contextmanager
def _progress(enabled: bool) -> Iterator[object]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    ) as progress:
        yield progress


def _number_style(
    source: _Source,
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


def _grain_reader(
    source: _Source, grain: str, chunk_rows: int, columns: Mapping[str, str | None] | None
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
    schema = _SCHEMAS[grain]
    read = column_sources(source.columns, schema, columns, source.path, grain)
    text = {c for c, spec in schema.columns.items() if spec.metadata["kind"] in _TEXT_KINDS}
    numeric = set(schemas.number_columns(schema))
    numbers = _number_style(source, read, numeric, schema, {}, chunk_rows)
    if numbers != schemas.PLAIN:
        text |= numeric
    names = {c: s for c, s in read.items() if s is not None and s != c}
    return source.chunks(read, text, chunk_rows), names, numbers


def option_of(setting: str) -> str:
    """The command-line option of a setting: 'top_k' -> '--top-k'."""
    return "--" + setting.replace("_", "-")


def check_settings(*, top_k: int, k: int, scoring: Scoring, total_label: str) -> None:
    """An InputError naming the option for a value params.yaml would refuse for its key
    (``SETTINGS``): e.g. '--k 0: expected a whole number from 1 to 30 (params.yaml recommend.k)'."""
    values = {"top_k": top_k, "k": k, "total_label": total_label}
    values.update({name: getattr(scoring, name) for name in SCORING_SETTINGS})
    for name, key in SETTINGS.items():
        value = values[name]
        if not accepts(key, value):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise InputError(
                None, f"{option_of(name)} {shown}: expected {expected_of(key)} (params.yaml {key})"
            )


def score_file(
    input: str | Path,
    out: str | Path,
    model: StageModel,
    *,
    grain: str,
    top_k: int = 3,
    region: str | None = None,
    kb=None,
    columns: Mapping[str, str | None] | None = None,
    total_label: str = TOTAL_LABEL,
    chunk_rows: int = CHUNK_ROWS,
    group_rows: int = GROUP_ROWS,
    n_recommendations: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
    progress: bool = True,
) -> ScoreSummary:
    """Score every row of ``input`` (a CSV or Parquet file of the grain) into ``out``.

    See the module docstring for how; models.scoring for the columns. ``columns`` maps contract
    columns onto the file's (`--column CONTRACT=SOURCE`, as `clusterstage features` takes it;
    panel and firms grains). ``top_k`` drivers and ``n_recommendations`` instruments per row,
    ranked with ``scoring`` (policy.ranking), each checked as ``check_settings`` does. Bad input
    as a whole (no such file, a required column missing, a bad column mapping, not CSV /
    Parquet, a bad setting) is an InputError before anything is written; a failure midway leaves
    nothing at ``out``.
    """
    input, out = Path(input), Path(out)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(out, "expected an output ending in .parquet, .csv or .jsonl")
    if grain not in ("panel", "firms", "cmp"):
        raise InputError(input, f"unknown grain {grain!r}; expected panel, firms or cmp")
    check_settings(top_k=top_k, k=n_recommendations, scoring=scoring, total_label=total_label)
    kb = kb if kb is not None else default_knowledge_base()
    source = _Source.open(input)
    reader, names, numbers = _grain_reader(source, grain, chunk_rows, columns)
    n_buckets = max(1, math.ceil(source.rows_hint / max(group_rows, 1)))
    summary = ScoreSummary()
    with ExitStack() as stack:
        bar = stack.enter_context(_progress(progress))
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clusterstage-")))
        spill = _Spill(root, n_buckets)

        # 1. read, check, spill
        national_rows: list[pd.DataFrame] = []
        # Region-years of cluster rows without a stated total, and those of total rows.
        untotalled: list[pd.DataFrame] = []
        totalled: list[pd.DataFrame] = []
        levels: CmpLevels | None = None
        reading = bar.add_task("read", total=source.rows_hint)
        first = 1
        for chunk in reader:
            if grain == "cmp":
                rows, errors, found = cmp_rows(chunk, first_row=first, file=input, numbers=numbers)
                levels = found if levels is None else levels.merge(found)
            else:
                rows, errors = check_rows(
                    chunk,
                    _SCHEMAS[grain],
                    first_row=first,
                    file=input,
                    names=names,
                    numbers=numbers,
                )
                if grain == "panel":
                    rows, national = split_national(rows, total_label)
                    if len(national):
                        national_rows.append(national)
                    keys, totals = region_years(rows, errors, total_label)
                    untotalled.append(keys)
                    totalled.append(totals)
            spill.add("rows", rows)
            spill.add("errors", errors)
            first += len(chunk)
            bar.update(reading, completed=first - 1)
        bar.update(reading, total=first - 1)
        if levels is not None:
            levels.check(input)
        if grain == "panel" and total_label and total_label.strip():
            check_region_totals(
                pd.concat(untotalled).sort_values(ROW, kind="stable"),
                pd.concat(totalled),
                input,
                total_label.strip(),
            )
        shared = shared_region_names(levels.names) if levels is not None else set()
        national = pd.concat(national_rows, ignore_index=True) if national_rows else None
        given = given_national(national, total_label, source.attrs.get(NATIONAL_TOTALS))

        # 2. prepare each group of regions: its panel, its errors, its share of the totals
        preparing = bar.add_task("prepare", total=2 * n_buckets)
        partials, regions = [], set()
        for b in range(n_buckets):
            rows = spill.read("rows", b)
            errors = spill.read("errors", b)
            if rows is None and grain != "firms":
                group = Group(empty_panel(), no_errors() if errors is None else errors)
            else:
                # Firm rows that failed still spoil their cluster-year, even in a group whose
                # every firm row failed.
                rows = empty_firms() if rows is None else rows
                group = prepare_group(
                    rows, grain, errors=errors, total_label=total_label, shared_names=shared
                )
            spill.save("panel", b, group.panel)
            spill.save("failed", b, group.errors)
            partials.append(partial_totals(group.panel))
            regions.update(group.panel["region"].unique())
            regions.update(group.errors["region"].dropna().unique())
            bar.advance(preparing)
        if region is not None and region not in regions:
            raise InputError(input, f"no rows for region {region!r}", column="region")
        context = national_context(partials, given, total_label=total_label)
        counts = []
        for b in range(n_buckets):
            counts.append(cooccurrence(spill.load("panel", b), context))
            bar.advance(preparing)
        context = context.with_cooccurrence(counts)

        # 3. score each group into the spill
        schema = output_schema(top_k)
        scoring_task = bar.add_task("score", total=n_buckets)
        for b in range(n_buckets):
            group = Group(spill.load("panel", b), spill.load("failed", b))
            if region is not None:
                group = Group(
                    group.panel[group.panel["region"] == region].reset_index(drop=True),
                    group.errors[group.errors["region"] == region],
                )
            table = score_group(
                group,
                context,
                model,
                top_k=top_k,
                kb=kb,
                n_recommendations=n_recommendations,
                scoring=scoring,
            )
            spill.save_scored(b, table, schema)
            summary.add(table)
            bar.advance(scoring_task)
        if national is not None and region is None:
            table = conform(national_errors(national, total_label), top_k)
            spill.save_scored(n_buckets, table, schema)
            summary.add(table)

        # 4. write the output in input order (buckets hold regions, not runs of rows)
        with atomic_path(out) as tmp, writing(out):
            writer = _Writer(tmp, suffix, top_k)
            try:
                for table in spill.scored_in_row_order(first - 1, group_rows):
                    writer.write(table)
            finally:
                writer.close()
    return summary


def score_command(
    input: Path,
    *,
    grain: str,
    out: Path,
    model: str | None,
    top_k: int,
    region: str | None,
    columns: Mapping[str, str | None] | None = None,
    knowledge_base: Path | None = None,
    k: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
    total_label: str = TOTAL_LABEL,
) -> None:
    """The CLI command: check the settings and that OUT can be written, resolve the model, score,
    and say on stderr how many rows were not scored, and why. ``knowledge_base``: the policy file
    the recommendations come from (None: the packaged one), read before any scoring, so a bad one
    costs nothing; a bad setting costs nothing either (``score_file`` checks it by the same rule,
    for callers that come to it directly)."""
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(out, "expected an output ending in .parquet, .csv or .jsonl")
    check_settings(top_k=top_k, k=k, scoring=scoring, total_label=total_label)
    check_writable(out, inputs=[input])  # before the model is downloaded and the input read
    kb = default_knowledge_base() if knowledge_base is None else load_knowledge_base(knowledge_base)
    stage_model = resolve_model(model)
    summary = score_file(
        input,
        out,
        stage_model,
        grain=grain,
        top_k=top_k,
        region=region,
        columns=columns,
        kb=kb,
        total_label=total_label,
        n_recommendations=k,
        scoring=scoring,
    )
    for line in summary.lines(Path(out)):
        print(line, file=sys.stderr)
