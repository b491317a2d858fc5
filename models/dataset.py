"""Joining features to stage labels: the training matrix, its targets and its region groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import InputError
from features.stages import STAGE_ID, STAGES

KEYS = ["region", "cluster", "year"]
NO_MATCH = "no labelled row matches a feature row"


@dataclass
class TrainingSet:
    keys: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    regions: np.ndarray


def model_features(features: pd.DataFrame, candidates: Sequence[str]) -> list[str]:
    """The candidate features present as numbers with at least one value."""
    chosen = []
    for name in candidates:
        column = features.get(name)
        if column is not None and pd.api.types.is_numeric_dtype(column) and column.notna().any():
            chosen.append(name)
    return chosen


def training_set(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    exclude_regions: Sequence[str] = (),
) -> TrainingSet:
    """Labelled rows of the feature frame (inner join on the keys), minus excluded regions."""
    lab = labels[[*KEYS, "stage"]]
    merged = features.merge(lab, on=KEYS, how="inner", validate="one_to_one")
    merged = merged[~merged["region"].isin(list(exclude_regions))]
    if merged.empty:
        raise InputError(None, f"{NO_MATCH} (keys region, cluster, year)")
    merged = merged.sort_values(KEYS, kind="stable").reset_index(drop=True)
    y = merged["stage"].map(STAGE_ID)
    if y.isna().any():
        bad = merged.loc[y.isna(), "stage"].iloc[0]
        raise InputError(None, f"unknown stage {bad!r}", column="stage")
    found = np.unique(y.to_numpy(dtype=int))
    if len(found) < 3:
        raise InputError(
            None,
            f"the labels hold {len(found)} stage(s) ({', '.join(STAGES[i] for i in found)}); "
            "a stage classifier needs at least three: give expert labels (data.labels) or "
            "choose another labels.source",
            column="stage",
        )
    return TrainingSet(
        keys=merged[KEYS],
        X=merged[list(feature_names)].astype("float64"),
        y=y.to_numpy(dtype=int),
        regions=merged["region"].astype(str).to_numpy(),
    )


def row_counts(
    features: pd.DataFrame,
    change: np.ndarray,
    labels: pd.DataFrame,
    *,
    exclude_regions: Sequence[str] = (),
) -> dict[str, int]:
    """Where the comparative feature rows went: left out for lack of any change over time
    (``change`` False), left out for lack of a label, or learned from and judged. A label source
    that covers only part of the panel shrinks the evaluation silently otherwise."""
    comparative = ~features["region"].isin(list(exclude_regions)).to_numpy()
    labelled_keys = pd.MultiIndex.from_frame(labels[KEYS].astype({"year": "int64"}))
    keys = pd.MultiIndex.from_frame(features[KEYS].astype({"year": "int64"}))
    labelled = keys.isin(labelled_keys)
    return {
        "comparative": int(comparative.sum()),
        "first_year": int((comparative & ~change).sum()),
        "unlabelled": int((comparative & change & ~labelled).sum()),
        "used": int((comparative & change & labelled).sum()),
    }
