"""The output file of `clusterstage score`: Arrow tables of the output schema appended to a
Parquet, CSV or JSON Lines file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.scoring import empty_table
from pipeline.io import to_csv

if TYPE_CHECKING:
    import pyarrow as pa


def output_schema(top_k: int) -> pa.Schema:
    """The Arrow schema of the output table (models.scoring.empty_table), with the pandas
    metadata that gives its columns their pandas types back."""
    import pyarrow as pa

    return pa.Schema.from_pandas(empty_table(top_k), preserve_index=False)


class Writer:
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
