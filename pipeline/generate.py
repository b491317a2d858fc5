"""`clusterstage generate`: write the synthetic reference world, region by region.

Firms are streamed to firms.parquet one region (one row group or more) at a time, so memory stays
bounded by the largest region, whatever the scale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.errors import InputError
from features.reference_world import GENERATOR_VERSION, SOURCE, TARGET_REGION, YEARS
from features.reference_world.archetypes import REGIONS
from features.reference_world.nation import national_rows
from features.reference_world.simulate import FIRM_SCHEMA, build_panel, simulate_region
from features.schemas import TOTAL_LABEL
from pipeline.io import atomic_outputs, write_table, writing

# Row groups of about this many rows keep readers' memory small at large scales.
ROW_GROUP_ROWS = 1_000_000
OUTPUT_FILES = ("firms.parquet", "panel.parquet", "labels.csv", "target_labels.csv", "world.json")
MAX_SCALE = 100.0  # about 120 million firm-year rows; memory grows with the largest region
# Dictionary encoding pays only for the repetitive columns; trying it on money columns costs time.
WRITER_OPTIONS: dict[str, object] = {
    "use_dictionary": ["region", "cluster", "year", "founded_year", "ownership"],
    "compression": "snappy",
}


def _metadata(seed: int, scale: float) -> dict[str, str]:
    return {
        "clusterstage.synthetic": "true",
        "clusterstage.generator": f"features.reference_world {GENERATOR_VERSION}",
        "clusterstage.seed": str(seed),
        "clusterstage.scale": repr(scale),
    }


def _check_args(out: Path, seed: int, scale: float) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(None, f"--seed {seed!r}: expected a whole number >= 0")
    if not (isinstance(scale, int | float) and math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise InputError(None, f"--scale {scale!r}: expected a number > 0 and <= {MAX_SCALE:g}")
    if out.exists() and not out.is_dir():
        raise InputError(out, "expected a folder to write the reference world to, found a file")


def _labels(stages: pd.DataFrame) -> pd.DataFrame:
    return stages[["region", "cluster", "year", "stage"]].assign(source=SOURCE, confidence=1.0)


def generate_world(out: Path, *, seed: int, scale: float, total_label: str = TOTAL_LABEL) -> None:
    """Simulate the reference world and write firms, panel, labels, target labels and world.json.

    The panel ends with the nation's rows (region ``total_label``), the national reference of
    its indicators (features.reference_world.nation).

    Same seed and scale give byte-identical files. All five are written to temporary siblings
    and moved into place together (``pipeline.io.atomic_outputs``), so a failure leaves the
    previous world as it was.
    """
    out = Path(out)
    _check_args(out, seed, scale)
    if not total_label.strip():
        raise InputError(None, "--total-label: expected a label for the national rows")
    if total_label in {region.name for region in REGIONS}:
        # the nation's rows would share their keys with that region's
        raise InputError(
            None, f"--total-label {total_label!r}: expected a label that is no region's name"
        )
    meta = _metadata(seed, scale)
    order = sorted(range(len(REGIONS)), key=lambda i: REGIONS[i].name)
    panels: list[pd.DataFrame] = []
    stages: list[pd.DataFrame] = []
    n_firms = 0
    # Checked before the simulation (a folder that cannot be made or takes no files is one
    # line at once), and moved into place together once all five are written.
    files = [out / name for name in OUTPUT_FILES]
    with atomic_outputs(files) as staged:
        firms_path, panel_path, labels_path, target_path, world_path = (staged[f] for f in files)
        schema = FIRM_SCHEMA.with_metadata({k.encode(): v.encode() for k, v in meta.items()})
        with writing(files[0]), pq.ParquetWriter(firms_path, schema, **WRITER_OPTIONS) as writer:
            for index in order:
                world = simulate_region(index, seed=seed, scale=scale)
                firms = world.firms.replace_schema_metadata(schema.metadata)
                writer.write_table(firms, row_group_size=ROW_GROUP_ROWS)
                n_firms += world.firms.num_rows
                panels.append(build_panel(world.firms.to_pandas(), world.clusters))
                stages.append(world.clusters[["region", "cluster", "year", "stage"]])
                del world
        panel = pd.concat(panels, ignore_index=True)
        nation = national_rows(panel, seed, total_label)
        panel = pd.concat([panel, nation], ignore_index=True)
        labels = _labels(pd.concat(stages, ignore_index=True))
        target = labels["region"] == TARGET_REGION
        write_table(panel, panel_path, metadata=meta)
        write_table(labels[~target], labels_path)
        write_table(labels[target], target_path)
        info = {
            "synthetic": True,
            "generator": "features.reference_world",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "scale": scale,
            "years": [YEARS[0], YEARS[-1]],
            "target_region": TARGET_REGION,
            "total_label": total_label,
            "regions": {r.name: r.archetype for r in sorted(REGIONS, key=lambda r: r.name)},
            "rows": {
                "firms": n_firms,
                "panel": len(panel),
                "national": len(nation),
                "labels": int((~target).sum()),
                "target_labels": int(target.sum()),
            },
            "note": "Synthetic data from a documented stochastic process "
            "(docs/reference-world.md); not observations of real places.",
        }
        with writing(files[-1]):
            world_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", "utf-8")
