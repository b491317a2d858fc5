"""The report's model card: how the model scores against its baselines, per region and after
calibration, what it learnt from, and what MLflow recorded of its run (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.report_charts import finite, fmt_number
from pipeline.report_inputs import ReportInputs
from policy.cases import optional_text

METRIC_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    # key, heading, higher is better
    ("macro_f1", "Macro-F1", True),
    ("balanced_accuracy", "Balanced accuracy", True),
    ("adjacent_accuracy", "Adjacent accuracy", True),
    ("ece", "ECE", False),
    ("ece_region_mean", "ECE per region", False),  # the mean over held-out regions
    ("log_loss", "Log loss", False),
)
MODEL_NAME = "xgboost"


# What the model learnt from, as the model card says it: rule labels are weak labels.
_WEAK = (
    "weak labels from the {} rule (no expert labels): the model reproduces that rule, and its "
    "scores say how well, not how true the stages are"
)
LABEL_SOURCES = {
    "expert": "expert labels (data.labels)",
    "quadrant": _WEAK.format("LQ x growth quadrant"),
    "trajectory": _WEAK.format("life-cycle trajectory"),
}


def _flag(value: object) -> bool | None:
    """A JSON boolean; the strings "true" / "false" that older mlflow_run.json files hold are
    parsed, and anything else is unknown (None), never truthy: "false" must not read as yes."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _metric_rows(metrics: Mapping[str, object]) -> list[dict[str, object]]:
    rows: list[tuple[str, Mapping[str, object], bool]] = []
    if isinstance(metrics.get("model"), Mapping):
        rows.append((f"{MODEL_NAME} (this model)", metrics["model"], True))  # type: ignore[arg-type]
    for name, m in (metrics.get("baselines") or {}).items():  # type: ignore[union-attr]
        if isinstance(m, Mapping):
            rows.append((str(name).replace("_", " "), m, False))
    best = {}
    for key, _, higher in METRIC_COLUMNS:
        vals = [finite(m.get(key)) for _, m, _ in rows]
        vals = [v for v in vals if v is not None]
        if vals:
            best[key] = max(vals) if higher else min(vals)
    return [
        {
            "name": name,
            "main": main,
            "n": m.get("n"),
            "cells": [
                {
                    "text": _fixed(m.get(key)),
                    "best": finite(m.get(key)) is not None and finite(m.get(key)) == best.get(key),
                }
                for key, _, _ in METRIC_COLUMNS
            ],
        }
        for name, m, main in rows
    ]


def _lead_rows(metrics: Mapping[str, object]) -> list[dict[str, object]]:
    """The model's macro-F1 lead over each baseline, with its interval and regions won."""
    leads = metrics.get("lead")
    if not isinstance(leads, Mapping):
        return []
    rows = []
    for name, lead in leads.items():
        if not isinstance(lead, Mapping) or finite(lead.get("macro_f1")) is None:
            continue
        low, high = finite(lead.get("ci_low")), finite(lead.get("ci_high"))
        level = finite(lead.get("level"))
        rows.append(
            {
                "name": str(name).replace("_", " "),
                "lead": f"{finite(lead.get('macro_f1')):+.3f}",
                "interval": "–" if low is None or high is None else f"{low:+.3f} to {high:+.3f}",
                "level": "" if level is None else f"{100 * level:.0f} %",
                "sure": low is not None and low > 0,
                "won": lead.get("regions_won"),
                "lost": lead.get("regions_lost"),
                "regions": lead.get("regions"),
            }
        )
    return rows


def _fixed(value: object) -> str:
    number = finite(value)
    return "–" if number is None else f"{number:.3f}"


def model_card(inputs: ReportInputs) -> dict[str, object]:
    metrics = inputs.metrics or {}
    meta = inputs.model_meta or {}
    main = metrics.get("model") if isinstance(metrics.get("model"), Mapping) else {}
    # metrics.json holds the names as they are; per_region.csv, written for spreadsheets, holds
    # them formula-quoted, which reading can undo only where a name did not begin with "'".
    scored = main.get("per_region") if main else None  # type: ignore[union-attr]
    per_region = (
        pd.DataFrame(
            [{**dict(v), "region": k} for k, v in scored.items() if isinstance(v, Mapping)]
        )
        if isinstance(scored, Mapping)
        else inputs.per_region
    )
    regions: list[dict[str, object]] = []
    if per_region is not None and "region" in per_region.columns:
        for r in per_region.to_dict("records"):
            regions.append(
                {
                    "region": str(r.get("region")),
                    "n": r.get("n"),
                    "macro_f1": _fixed(r.get("macro_f1")),
                    "accuracy": _fixed(r.get("accuracy")),
                    "adjacent": _fixed(r.get("adjacent_accuracy")),
                    "ece": _fixed(r.get("ece")),
                }
            )
    training = [str(r) for r in meta.get("training_regions") or []] or [
        r["region"] for r in regions
    ]
    transfer = metrics.get("transfer") if isinstance(metrics.get("transfer"), Mapping) else None
    calibration = metrics.get("calibration")
    run = inputs.mlflow_run or {}
    return {
        "available": bool(metrics),
        "labels": LABEL_SOURCES.get(inputs.label_source or ""),
        "rows": main.get("n") if main else None,  # type: ignore[union-attr]
        "training_regions": training,
        "held_out": inputs.region not in training,
        "features": len(meta.get("features") or []),
        "metrics": _metric_rows(metrics) if metrics else [],
        "leads": _lead_rows(metrics),
        "columns": [(heading, higher) for _, heading, higher in METRIC_COLUMNS],
        "transfer": (
            {
                "region": str(transfer.get("region", "")),
                "n": transfer.get("n"),
                "cells": [_fixed(transfer.get(k)) for k, _, _ in METRIC_COLUMNS],
            }
            if transfer
            else None
        ),
        "calibration": (
            {
                "fitted": finite(calibration.get("temperature")) is not None,
                "applied": bool(calibration.get("applied")),
                "temperature": fmt_number(calibration.get("temperature")),
                "ece_raw": _fixed(calibration.get("ece_raw")),
                "ece_scaled": _fixed(calibration.get("ece_scaled")),
            }
            if isinstance(calibration, Mapping) and calibration
            else None
        ),
        "per_region": regions,
        "run": {
            "run_id": optional_text(run.get("run_id")),
            "experiment_id": optional_text(run.get("experiment_id")),
            "version": optional_text(run.get("registered_version")),
            "champion_moved": _flag(run.get("champion_moved")),
            "champion_reason": optional_text(run.get("champion_reason")),
        }
        if run
        else None,
    }
