"""The spill of `clusterstage score`: temporary Parquet files of the checked rows, the rows that
failed and the scored tables, partitioned by a hash of the region so that all rows of a region
land in one bucket (a bounded group of regions)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.io import writing

if TYPE_CHECKING:
    import pyarrow as pa

# Rows per row group of a spilled scored table: small enough that a window of row numbers reads
# little beyond itself from each bucket.
SCORED_ROW_GROUP = 8_192


def _buckets(region: pd.Series, n: int) -> np.ndarray:
    """A stable bucket per region name (the same in every chunk and every run)."""
    names = region.astype(object).where(region.notna(), "").to_numpy(dtype=object)
    return (pd.util.hash_array(names) % np.uint64(n)).astype(np.int64)


_SPILL_HINT = " (the run's temporary folder; TMPDIR names where it goes)"


class Spill:
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
