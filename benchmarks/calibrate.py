"""Compare the reference world's 2016 panel with the real 2016 US state cluster file.

    .venv/bin/python benchmarks/calibrate.py [--world DIR] [--seed N] [--scale X] [--real CSV]

Without --world it generates the default world into a temporary folder. Prints P10/P50/P90 of
log employment, log establishments, average firm size and wage for both, and the P50 ratio
(world / real, in levels), which should lie within a factor of 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.reference_world.calibration import calibration_table, load_real_traded  # noqa: E402
from pipeline.generate import generate_world  # noqa: E402

REAL = ROOT / ".." / "shared" / "data" / "us-cluster-mapping" / "states_2016.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="folder written by `clusterstage generate`")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--year", type=int, default=2016)
    parser.add_argument("--real", type=Path, default=REAL)
    args = parser.parse_args()

    if args.world is None:
        with tempfile.TemporaryDirectory(prefix="clusterstage-cal-") as tmp:
            generate_world(Path(tmp), seed=args.seed, scale=args.scale)
            world = pd.read_parquet(Path(tmp) / "panel.parquet")
    else:
        world = pd.read_parquet(args.world / "panel.parquet")
    world = world[world["year"] == args.year]
    real = load_real_traded(args.real)
    table = calibration_table(world, real)
    with pd.option_context("display.width", 200, "display.float_format", "{:,.2f}".format):
        print(
            f"reference world {args.year} ({len(world)} rows) vs {args.real.name} traded "
            f"clusters with employment > 0 ({len(real)} rows)"
        )
        print(table.to_string(index=False))
    off = table[(table["p50_ratio"] > 2) | (table["p50_ratio"] < 0.5)]
    if len(off):
        print(f"outside the factor-of-2 bound: {', '.join(off['measure'])}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
