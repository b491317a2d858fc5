"""Compare the reference world's 2016 panel with the real 2016 US state cluster file.

    .venv/bin/python benchmarks/calibrate.py [--world DIR] [--seed N] [--scale X] [--real CSV]

Without --world it generates the default world into a temporary folder. Prints P10/P50/P90 of
log employment, log establishments, average firm size and wage for both, then of the location
quotient and the national share (the project's features of both, the world's against its national
rows), and the P50 ratio (world / real, in levels), which should lie within a factor of 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.cmp import load_cmp  # noqa: E402
from features.loaders import load_panel  # noqa: E402
from features.reference_world.calibration import (  # noqa: E402
    calibration_table,
    load_real_traded,
    specialisation_table,
)
from pipeline.build_features import compute_features  # noqa: E402
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
            panel = load_panel(Path(tmp) / "panel.parquet")
    else:
        panel = load_panel(args.world / "panel.parquet")
    world_features = compute_features(panel, grain="panel")
    world = panel[panel["year"] == args.year]
    real = load_real_traded(args.real)
    real_features = compute_features(load_cmp(args.real), grain="cmp")
    real_features = real_features[real_features["traded"] & (real_features["employment"] > 0)]
    table = pd.concat(
        [
            calibration_table(world, real),
            specialisation_table(
                world_features[world_features["year"] == args.year], real_features
            ),
        ],
        ignore_index=True,
    )
    with pd.option_context("display.width", 200, "display.float_format", "{:,.3f}".format):
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
