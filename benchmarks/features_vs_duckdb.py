"""How fast and lean is the project's firms -> panel -> features path, next to DuckDB?

    .venv/bin/python benchmarks/features_vs_duckdb.py [--rows 10000000] [--seed 0]
        [--input firms.parquet | --random] [--keep DIR] [--repeat 2]

Input: a firm-grain Parquet file (one row per firm x year). ``--input`` reads an existing one;
by default the synthetic reference world is simulated (``pipeline.generate.generate_world``) at
the scale that gives about ``--rows`` rows; with ``--random`` (or without the generator) random
firm rows of the same schema are written instead: firms that enter, live a geometric number of
years and exit, in 16 regions x 14 clusters x 2000-2024, with log-normal sizes and every
optional column.

Each side runs in its own fresh Python process, so that its peak memory (VmHWM, see
benchmarks/peak_memory.py) is its own:

- own: read the Parquet file -> ``features.aggregate.firms_to_panel`` (every panel column: the
  contract's sums and counts, entries, exits, SME and top-4 employment, HHI, Gini, median firm
  age) -> ``build_features`` (the 42 indicators of the catalogue);
- duckdb: 6 aggregates only, in SQL on the same file (employment, establishments, SME share, HHI,
  entries and exits per region x cluster x year), fetched as a pandas frame.

The two sides do NOT do the same work: the own side computes the whole panel and every indicator,
the DuckDB side a core of the aggregation. So the time ratio is weighted against the project
(an upper bound on its cost over DuckDB's for the same work); the ratio of the own side's read +
firms_to_panel alone is printed beside it, still with more columns than DuckDB's 6.

Each side runs ``--repeat`` times, interleaved, and its fastest run is kept (other work on the
machine slows single runs; the load average is printed). Printed per side: wall and CPU seconds
(user + system, all threads), input rows per second, peak RSS and the RSS of the bare process
after its imports; then the ratios and the input's in-memory size (the Arrow table of every
column). Targets: own time (all of it) <= 2x DuckDB's (6 aggregates); own peak RSS < 3x the
input's in-memory size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peak_memory import peak_rss_mib  # noqa: E402

N_REGIONS = 16
N_CLUSTERS = 14
YEARS = (2000, 2024)
OWNERSHIPS = ("private", "foreign", "state", "collective")
CLUSTERS = (
    "Footwear", "Apparel", "Eyeglasses", "Lighters", "Low-voltage electrics", "Pumps and valves",
    "Auto parts", "Textiles", "Furniture", "Machinery", "Electronics", "Software", "Biopharma",
    "Chemicals",
)  # fmt: skip


def random_firms(path: Path, rows: int, seed: int) -> int:
    """Write about ``rows`` random firm-year rows to ``path``, one row group per region."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from features.reference_world.simulate import FIRM_SCHEMA

    rng = np.random.default_rng(seed)
    first, last = YEARS
    mean_life = 6.0

    def lifetimes(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start = rng.integers(first - 10, last + 1, n)
        life = rng.geometric(1.0 / mean_life, n)
        return start, np.maximum(start, first), np.minimum(start + life - 1, last)

    _, b, e = lifetimes(100_000)  # rows per firm after cutting to the years covered
    n_firms = max(int(rows / np.maximum(e - b + 1, 0).mean()), 1)
    per_region = np.bincount(rng.integers(0, N_REGIONS, n_firms), minlength=N_REGIONS)
    written = 0
    schema = FIRM_SCHEMA
    with pq.ParquetWriter(path, schema) as writer:
        for r, n in enumerate(per_region):
            start, begin, end = lifetimes(n)
            keep = end >= begin
            begin, end = begin[keep], end[keep]
            founded = start[keep]
            span = end - begin + 1
            firm = np.repeat(np.arange(len(span)), span)
            offset = np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span)
            year = begin[firm] + offset
            cluster = rng.integers(0, N_CLUSTERS, len(span))[firm]
            size = np.exp(rng.normal(2.2, 1.3, len(span)))[firm]
            employees = np.maximum(np.rint(size * np.exp(rng.normal(0, 0.15, len(firm)))), 1)
            m = len(firm)
            revenue = employees * rng.lognormal(11, 0.4, m)
            revenue[rng.random(m) < 0.03] = np.nan
            names = pa.array(CLUSTERS).take(pa.array(cluster))
            table = pa.table(
                {
                    "region": pa.array([f"Region {r:02d}"] * m, pa.string()),
                    "cluster": names,
                    "year": year.astype(np.int64),
                    "firm_id": (firm + 1).astype(np.int64),
                    "employees": employees.astype(np.int64),
                    "revenue": revenue,
                    "exports": revenue * rng.uniform(0, 0.6, m),
                    "rd_expenditure": revenue * rng.uniform(0, 0.04, m),
                    "patents": rng.poisson(0.05 * np.sqrt(employees)).astype(np.int64),
                    "wages": employees * rng.lognormal(10.5, 0.3, m),
                    "founded_year": founded[firm].astype(np.int64),
                    "ownership": pa.array(OWNERSHIPS).take(pa.array(rng.integers(0, 4, m))),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=1 << 20)
            written += m
    return written


def world_firms(folder: Path, rows: int, seed: int) -> Path:
    """Simulate the reference world at the scale that gives about ``rows`` firm-year rows."""
    import pyarrow.parquet as pq

    from pipeline.generate import generate_world

    probe = folder / "probe"
    generate_world(probe, seed=seed, scale=0.1)
    per_scale = pq.ParquetFile(probe / "firms.parquet").metadata.num_rows / 0.1
    out = folder / "world"
    generate_world(out, seed=seed, scale=rows / per_scale)
    return out / "firms.parquet"


# --- the two sides, each run in a child process ------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_own(path: Path) -> dict[str, object]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from features.aggregate import firms_to_panel
    from features.build import FEATURE_NAMES, build_features
    from features.schemas import FIRMS_OPTIONAL, FIRMS_REQUIRED

    # Only the columns firms_to_panel uses (all but ownership); region and cluster stay
    # dictionary-encoded (pandas categoricals) instead of ten million Python-visible strings.
    columns = [*FIRMS_REQUIRED, *(c for c in FIRMS_OPTIONAL if c != "ownership")]
    base = peak_rss_mib()
    c0 = _cpu_s()
    t0 = time.perf_counter()
    table = pq.read_table(path, columns=columns, read_dictionary=["region", "cluster"])
    firms = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    # Arrow's allocator keeps the freed decode buffers for reuse; numpy cannot use them.
    pa.default_memory_pool().release_unused()
    t_read = time.perf_counter()
    panel = firms_to_panel(firms)
    del firms
    t_panel = time.perf_counter()
    features = build_features(panel)
    t1 = time.perf_counter()
    return {
        "wall_s": t1 - t0,
        "cpu_s": _cpu_s() - c0,
        "read_s": t_read - t0,
        "firms_to_panel_s": t_panel - t_read,
        "build_features_s": t1 - t_panel,
        "panel_rows": len(panel),
        "panel_columns": len(panel.columns),
        "features_shape": list(features.shape),
        "indicators": sum(name in features.columns for name in FEATURE_NAMES),
        "peak_rss_mib": peak_rss_mib(),
        "base_rss_mib": base,
    }


DUCKDB_SQL = """
WITH f AS (
    SELECT region, cluster, year, employees::DOUBLE AS e,
           lag(year) OVER w AS prev_year,
           lead(year) OVER w AS next_year
    FROM read_parquet($path)
    WINDOW w AS (PARTITION BY region, cluster, firm_id ORDER BY year)
),
agg AS (
    SELECT region, cluster, year,
           sum(e) AS employment,
           count(*) AS establishments,
           sum(CASE WHEN e < 250 THEN e ELSE 0 END) / nullif(sum(e), 0) AS sme_share,
           sum(e * e) / nullif(sum(e) * sum(e), 0) AS hhi,
           sum(CASE WHEN prev_year IS NULL OR prev_year <> year - 1 THEN 1 ELSE 0 END) AS entries
    FROM f GROUP BY region, cluster, year
),
ex AS (
    SELECT region, cluster, year + 1 AS year, count(*) AS exits
    FROM f WHERE next_year IS NULL OR next_year <> year + 1
    GROUP BY region, cluster, year + 1
)
SELECT agg.*, coalesce(ex.exits, 0) AS exits
FROM agg LEFT JOIN ex USING (region, cluster, year)
ORDER BY region, cluster, year
"""


def run_duckdb(path: Path) -> dict[str, object]:
    import duckdb

    base = peak_rss_mib()
    c0 = _cpu_s()
    t0 = time.perf_counter()
    con = duckdb.connect()
    out = con.execute(DUCKDB_SQL, {"path": str(path)}).df()
    t1 = time.perf_counter()
    return {
        "wall_s": t1 - t0,
        "cpu_s": _cpu_s() - c0,
        "panel_rows": len(out),
        "panel_columns": len(out.columns),
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "peak_rss_mib": peak_rss_mib(),
        "base_rss_mib": base,
    }


def run_side(side: str, path: Path) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--side", side, "--input", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def input_size(path: Path) -> tuple[int, float]:
    """Rows and the in-memory size (MiB) of the whole file as an Arrow table."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.num_rows, table.nbytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input", type=Path, default=None)
    parser.add_argument(
        "--random",
        action="store_true",
        help="random firm rows even where the reference world generator is available",
    )
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the input in")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side (best kept)")
    parser.add_argument("--side", choices=["own", "duckdb"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side is not None:
        fn = run_own if args.side == "own" else run_duckdb
        print(json.dumps(fn(args.input)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.input is not None:
            path, source = args.input, f"given file {args.input}"
        elif not args.random and importlib.util.find_spec("pipeline.generate") is not None:
            t = time.perf_counter()
            path, source = world_firms(folder, args.rows, args.seed), "reference world"
            print(f"generated the reference world in {time.perf_counter() - t:.1f} s")
        else:
            path, source = folder / "firms.parquet", "random firm rows"
            t = time.perf_counter()
            random_firms(path, args.rows, args.seed)
            print(f"wrote random firm rows in {time.perf_counter() - t:.1f} s")
        rows, size_mib = input_size(path)
        print(f"input: {source}, {rows:,} rows, {path.stat().st_size / 2**20:,.0f} MiB on disk, ")
        print(f"       {size_mib:,.0f} MiB in memory (Arrow, all columns)")
        # Interleaved repeats, best of each: other work on the machine slows single runs.
        runs: dict[str, list[dict[str, object]]] = {"own": [], "duckdb": []}
        for _ in range(args.repeat):
            for side in runs:
                runs[side].append(run_side(side, path))
        best = {side: min(rs, key=lambda r: r["wall_s"]) for side, rs in runs.items()}
        own, duck = best["own"], best["duckdb"]
        for name, r in best.items():
            walls = ", ".join(f"{x['wall_s']:.1f}" for x in runs[name])
            print(
                f"{name:>7}: {r['wall_s']:7.2f} s wall (runs: {walls}), {r['cpu_s']:6.2f} s CPU, "
                f"{rows / r['wall_s']:11,.0f} rows/s, peak RSS {r['peak_rss_mib']:6,.0f} MiB "
                f"(bare process {r['base_rss_mib']:,.0f}), panel rows {r['panel_rows']:,}"
            )
        print(
            f"    own: read {own['read_s']:.2f} s, firms_to_panel {own['firms_to_panel_s']:.2f} s,"
            f" build_features {own['build_features_s']:.2f} s; duckdb threads {duck['threads']}"
        )
        print(f"load average while running: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(
            f"unequal work: own computes the panel ({own['panel_columns']} columns) and "
            f"{own['indicators']} indicators; duckdb {duck['panel_columns'] - 3} aggregates "
            "(employment, establishments, SME share, HHI, entries, exits)"
        )
        print(
            f"time own (all) / duckdb: {own['wall_s'] / duck['wall_s']:.2f} wall (target <= 2), "
            f"{own['cpu_s'] / duck['cpu_s']:.2f} CPU"
        )
        aggregate_s = own["read_s"] + own["firms_to_panel_s"]
        print(
            f"time own read + firms_to_panel / duckdb: {aggregate_s / duck['wall_s']:.2f} wall "
            "(the aggregation alone, still more columns than duckdb's)"
        )
        print(f"peak RSS own / duckdb: {own['peak_rss_mib'] / duck['peak_rss_mib']:.2f}")
        mem_ratio = own["peak_rss_mib"] / size_mib
        print(f"peak RSS own / input in memory: {mem_ratio:.2f} (target < 3)")


if __name__ == "__main__":
    main()
