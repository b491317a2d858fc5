"""The DVC stage `ingest`: the input named in params.yaml, validated, as the panel grain.

Writes pipeline.paths.INGESTED_PANEL, INGESTED_LABELS and INGESTED_TARGET_LABELS (Parquet). A
label file that params.yaml does not name is written with no rows, so later stages never read
labels left over from an earlier input. Everything is validated before anything is written, and
the files are moved into place together, so a bad input leaves the previous outputs untouched.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.errors import InputError
from features.loaders import load_input, load_labels
from features.schemas import KEYS, LABELS_OPTIONAL, LABELS_REQUIRED, describe, empty_frame
from pipeline import paths
from pipeline.io import atomic_outputs, check_outputs, write_table
from pipeline.params import DataParams, load_params


def _no_labels() -> pd.DataFrame:
    return empty_frame(
        {
            "region": "str",
            "cluster": "str",
            "year": "int64",
            "stage": "str",
            "source": "str",
            "confidence": "float64",
        }
    )[[*LABELS_REQUIRED, *LABELS_OPTIONAL]]


def labels_in_panel(labels: pd.DataFrame, panel: pd.DataFrame, file: str | Path) -> None:
    """Every label must name a region × cluster × year of the panel; else InputError for the first.

    The row reported is the 1-based row in ``labels`` (load_labels keeps the file's order).
    """
    keys = list(KEYS)
    known = panel[keys].drop_duplicates()
    joined = labels[keys].merge(known, on=keys, how="left", indicator=True)
    missing = (joined["_merge"] == "left_only").to_numpy()
    if not missing.any():
        return
    pos = int(missing.argmax())
    shown = ", ".join(f"{k} {describe(labels[k].iloc[pos])}" for k in keys)
    raise InputError(
        file,
        f"label for {shown} matches no row of the input; expected labels only for "
        "region × cluster × year rows of the panel",
        row=pos + 1,
    )


def _labels(path: str | None, panel: pd.DataFrame) -> pd.DataFrame:
    if path is None:
        return _no_labels()
    labels = load_labels(path)
    labels_in_panel(labels, panel, path)
    return labels.sort_values(list(KEYS), kind="stable").reset_index(drop=True)


def _ingest(data: DataParams) -> dict[Path, pd.DataFrame]:
    panel = load_input(
        data.path,
        data.grain,
        columns=data.columns,
        total_label=data.total_label,
        region_totals=data.region_totals,
    )
    return {
        paths.INGESTED_PANEL: panel,
        paths.INGESTED_LABELS: _labels(data.labels, panel),
        paths.INGESTED_TARGET_LABELS: _labels(data.target_labels, panel),
    }


# Every output, replaced together (atomic_outputs).
OUTPUTS = (paths.INGESTED_PANEL, paths.INGESTED_LABELS, paths.INGESTED_TARGET_LABELS)


def ingest_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """Validate ``data.path`` (and the label files) and write the ingested Parquet files."""
    data = load_params(params_path).data
    check_outputs(OUTPUTS)  # an unwritable data/interim is one line before the input is read
    outputs = _ingest(data)
    metadata = {
        "clusterstage.synthetic": str(data.synthetic).lower(),
        "clusterstage.grain": data.grain,
        "clusterstage.source": str(data.path),
    }
    # Either all outputs are replaced or none is.
    with atomic_outputs(OUTPUTS) as staged:
        for target in OUTPUTS:
            write_table(outputs[target], staged[target], metadata=metadata)
