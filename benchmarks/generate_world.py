"""Time the reference-world generator against plain Parquet writing of the same rows.

    .venv/bin/python benchmarks/generate_world.py [--scale X] [--seed N]

Prints firm-year rows, wall seconds, rows/s and peak memory (ru_maxrss) of the generator, then,
as a reference run in the same process, the seconds pyarrow takes just to write as many rows of
random data of the same schema (same row groups and writer options), and the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.reference_world.archetypes import OWNERSHIPS, REGIONS, SECTORS  # noqa: E402
from features.reference_world.simulate import FIRM_SCHEMA  # noqa: E402
from pipeline.generate import ROW_GROUP_ROWS, WRITER_OPTIONS, generate_world  # noqa: E402


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _random_chunk(n: int, rng: np.random.Generator) -> pa.Table:
    def strings(values: list[str]) -> pa.Array:
        idx = pa.array(rng.integers(0, len(values), n).astype(np.int32))
        return pa.DictionaryArray.from_arrays(idx, pa.array(values)).cast(pa.string())

    money = lambda scale: pa.array(rng.lognormal(np.log(scale), 1.0, n))  # noqa: E731
    cols = {
        "region": strings([r.name for r in REGIONS]),
        "cluster": strings(list(SECTORS)),
        "year": pa.array(rng.integers(2000, 2025, n)),
        "firm_id": pa.array(rng.integers(1, 10_000_000, n)),
        "employees": pa.array(rng.integers(1, 500, n)),
        "revenue": money(2e6),
        "exports": money(5e5),
        "rd_expenditure": money(2e4),
        "patents": pa.array(rng.poisson(0.3, n).astype(np.int64)),
        "wages": money(5e5),
        "founded_year": pa.array(rng.integers(1950, 2025, n)),
        "ownership": strings(list(OWNERSHIPS)),
    }
    return pa.Table.from_arrays([cols[f.name] for f in FIRM_SCHEMA], schema=FIRM_SCHEMA)


def plain_write_seconds(rows: int, path: Path, seed: int = 0) -> float:
    """Seconds spent in pyarrow writing ``rows`` random rows (making the data is not timed)."""
    rng = np.random.default_rng(seed)
    spent = 0.0
    with pq.ParquetWriter(path, FIRM_SCHEMA, **WRITER_OPTIONS) as writer:
        done = 0
        while done < rows:
            chunk = _random_chunk(min(ROW_GROUP_ROWS, rows - done), rng)
            start = time.perf_counter()
            writer.write_table(chunk, row_group_size=ROW_GROUP_ROWS)
            spent += time.perf_counter() - start
            done += chunk.num_rows
        start = time.perf_counter()
    return spent + (time.perf_counter() - start)  # closing writes the footer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clusterstage-bench-") as tmp:
        out = Path(tmp) / "world"
        start = time.perf_counter()
        generate_world(out, seed=args.seed, scale=args.scale)
        wall = time.perf_counter() - start
        peak = _peak_mib()
        info = json.loads((out / "world.json").read_text(encoding="utf-8"))
        rows = int(info["rows"]["firms"])
        size_mib = (out / "firms.parquet").stat().st_size / 2**20

        ref_path = Path(tmp) / "plain.parquet"
        ref = plain_write_seconds(rows, ref_path)

    print(f"scale                       {args.scale:g}")
    print(f"firm-year rows              {rows:,}")
    print(f"panel rows                  {info['rows']['panel']:,}")
    print(f"generator wall seconds      {wall:.2f}")
    print(f"generator rows/s            {rows / wall:,.0f}")
    print(f"generator peak RSS (MiB)    {peak:,.0f}")
    print(f"firms.parquet size (MiB)    {size_mib:,.1f}")
    print(f"plain pyarrow write seconds {ref:.2f}  (reference: random rows, same schema)")
    print(f"plain write rows/s          {rows / ref:,.0f}")
    print(f"generator / plain write     {wall / ref:.1f}x")


if __name__ == "__main__":
    main()
