"""Compare the reference world's 2016 panel with the real 2016 US state cluster file.

    .venv/bin/python benchmarks/calibrate.py [--world DIR] [--seed N] [--scale X] [--year Y]
        [--real CSV]

Without --world it generates the default world into a temporary folder. ``--year`` (default
2016) is the world's year compared; keep it equal to the year of the ``--real`` file, the US
Cluster Mapping state export (default ../shared/data/us-cluster-mapping/states_2016.csv beside
the project folder; a missing file is one line and exit code 2, before any work). Prints
P10/P50/P90 of log employment, log establishments, average firm size and wage for both, then of
the location quotient and the national share (the project's features of both, the world's
against its national rows), and the P50 ratio (world / real, in levels), which should lie within
a factor of 2 (exit code 1 when one does not).
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
from features.errors import InputError  # noqa: E402
from features.loaders import load_panel  # noqa: E402
from features.reference_world.calibration import (  # noqa: E402
    calibration_table,
    load_real_traded,
    specialisation_table,
)
from pipeline.build_features import compute_features  # noqa: E402
from pipeline.generate import generate_world  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "us-cluster-mapping" / "states_2016.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="folder written by `clusterstage generate`")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--year", type=int, default=2016, help="the world's year compared")
    parser.add_argument("--real", type=Path, default=REAL, help="US Cluster Mapping state CSV")
    args = parser.parse_args()
    # Checked first, so that a missing file does not cost a world and its features before failing.
    if not args.real.is_file():
        print(
            f"{args.real}: no such file (the US Cluster Mapping state export); "
            "pass its path with --real CSV",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        compare(args)
    except InputError as err:
        print(err, file=sys.stderr)
        raise SystemExit(2) from None


def compare(args: argparse.Namespace) -> None:
    """Print the table of world vs real; exit 1 when a P50 ratio leaves the factor-of-2 bound."""
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
