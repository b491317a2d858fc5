"""DVC stage `label`: the training labels, from experts or from a rule-based labeller.

Reads the features (and the ingested expert labels when there are any), writes
``data/processed/labels.parquet`` (region, cluster, year, stage, source) and
``reports/labeller_agreement.json``: how well each rule labeller matches the expert labels, so a
user who trains on weak labels knows how far to trust them. Without expert labels the report
holds nulls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.errors import InputError
from features.labellers import LABEL_COLUMNS, agreement, quadrant_labels, trajectory_labels
from features.stages import STAGES
from pipeline import paths
from pipeline.io import atomic_path, read_stage_output, write_table
from pipeline.params import LabelsParams, load_params

AGREEMENT_REPORT = paths.REPORTS / "labeller_agreement.json"
KEYS = ["region", "cluster", "year"]


def _provenance(path: Path) -> dict[str, str]:
    """The features' ``clusterstage.*`` Parquet metadata (e.g. synthetic = true), passed on."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"clusterstage.")}


def _expert(truth: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = [c for c in [*KEYS, "stage"] if c not in truth.columns]
    if missing:
        raise InputError(
            path, "expected labels with region, cluster, year, stage", column=missing[0]
        )
    out = truth[[*KEYS, "stage"]].copy()
    bad = ~out["stage"].isin(STAGES)
    if bad.any():
        pos = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            path,
            f"expected a stage of {', '.join(STAGES)}, found {out['stage'].iloc[pos]!r}",
            column="stage",
            row=pos + 1,
        )
    source = truth["source"] if "source" in truth.columns else None
    out["source"] = "expert" if source is None else source.fillna("expert").astype("string")
    return out


def rule_labels(features: pd.DataFrame, source: str, cfg: LabelsParams) -> pd.DataFrame:
    """Run the rule labeller ``source`` ("quadrant" or "trajectory") with the params' thresholds."""
    if source == "quadrant":
        q = cfg.quadrant
        return quadrant_labels(
            features,
            lq_split=q.lq_split,
            growth_split=q.growth_split,
            decline_threshold=q.decline_threshold,
            growth_columns=q.growth_columns,
        )
    if source == "trajectory":
        return trajectory_labels(features, **cfg.trajectory.model_dump())
    raise ValueError(f"unknown rule labeller {source!r}")


def _nothing_labelled(features: pd.DataFrame, cfg: LabelsParams) -> str:
    """Why the rule labeller ``cfg.source`` labelled no row, said here rather than by `train`."""
    needs = (
        f"lq and a growth rate ({', '.join(cfg.quadrant.growth_columns)})"
        if cfg.source == "quadrant"
        else f"employment growth over a window of {cfg.trajectory.window} years"
    )
    years = features["year"].nunique() if "year" in features.columns else 0
    one_year = "; growth needs earlier years, and these data hold one year" if years == 1 else ""
    return (
        f"the {cfg.source} labeller labelled none of the {len(features)} rows: none has "
        f"{needs} known{one_year}"
    )


def label_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """Write the training labels named by ``labels.source`` and the labellers' agreement report."""
    cfg = load_params(params_path).labels
    features = read_stage_output(paths.FEATURES, "features")
    truth = None
    if paths.INGESTED_LABELS.exists():
        truth = read_stage_output(paths.INGESTED_LABELS, "expert labels")
        truth = None if truth.empty else _expert(truth, paths.INGESTED_LABELS)

    rules: dict[str, pd.DataFrame | None] = {}
    for name in ("quadrant", "trajectory"):
        try:
            rules[name] = rule_labels(features, name, cfg)
        except InputError:
            if name == cfg.source:
                raise
            rules[name] = None  # features this labeller needs are absent: no agreement to show
    if cfg.source == "expert":
        if truth is None:
            raise InputError(
                paths.INGESTED_LABELS,
                "labels.source is 'expert' but no expert labels were ingested; set data.labels "
                "or choose labels.source quadrant or trajectory",
            )
        labels = truth
    else:
        labels = rules[cfg.source]
        if labels is not None and labels.empty:
            raise InputError(paths.FEATURES, _nothing_labelled(features, cfg))

    report = {
        name: (agreement(pred, truth) if truth is not None and pred is not None else None)
        for name, pred in rules.items()
    }
    labels = labels[list(LABEL_COLUMNS)].sort_values(KEYS, kind="stable").reset_index(drop=True)
    write_table(labels, paths.LABELS, metadata=_provenance(paths.FEATURES))
    with atomic_path(AGREEMENT_REPORT) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
