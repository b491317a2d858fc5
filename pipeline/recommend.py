"""DVC stage `recommend`: stage, drivers and levers of each target-region cluster -> policy.

Reads ``reports/explanations.parquet`` and ``reports/levers.parquet`` (stage `explain`) and
``data/processed/features.parquet`` (the clusters' current values, i.e. the KPI baselines), keeps
the latest year of each cluster of the target region (``score.region``), ranks the knowledge
base's instruments for each cluster, runs the four trap guards on the region's portfolio and
writes

- ``reports/recommendations.jsonl``: one line per cluster: region, cluster, year, stage,
  probabilities, drivers, recommendations (after the guards), levers or a note why there is none;
- ``reports/portfolio.json``: per region the guard results (passed before repair, what changed,
  whether the rule holds after all repairs) and counts per aspect and per stage.

Both are logged to the training MLflow run named in ``reports/mlflow_run.json`` when it exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from features.errors import InputError
from features.stages import STAGES
from pipeline import paths, tracking
from pipeline.io import atomic_path, read_stage_output
from pipeline.params import Params, RecommendParams, load_params
from policy.guards import GuardConfig, GuardResult, apply_guards, holds
from policy.knowledge_base import ASPECTS, load_knowledge_base, render_markdown
from policy.recommender import (
    ClusterCase,
    Driver,
    LeverChange,
    Levers,
    Portfolio,
    Scoring,
    build_portfolio,
    finite,
)

KEYS = ["region", "cluster", "year"]
PROBA = {s: f"p_{s}" for s in STAGES}
DRIVER_FIELDS = (
    "feature",
    "value",
    "percentile",
    "contribution",
    "direction",
    "runner_up",
    "vs_runner_up",
)


def _require(frame: pd.DataFrame, columns: Sequence[str], path: Path, what: str) -> None:
    for col in columns:
        if col not in frame.columns:
            raise InputError(path, f"expected {what} with columns {', '.join(columns)}", column=col)


def _records(cell: object, path: Path, column: str, row: int) -> list[dict[str, object]]:
    """A JSON-text or nested (list of structs) cell as a list of dicts."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    if isinstance(cell, str):
        try:
            cell = json.loads(cell) if cell.strip() else []
        except json.JSONDecodeError:
            raise InputError(path, "expected JSON text", column=column, row=row) from None
    if isinstance(cell, Mapping):
        cell = [cell]
    try:
        items = list(cell)  # type: ignore[call-overload]
    except TypeError:
        raise InputError(path, "expected a list of records", column=column, row=row) from None
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out.append(dict(item))
        elif isinstance(item, list | tuple) and len(item) == 3:  # (feature, from, to)
            out.append({"feature": item[0], "from": item[1], "to": item[2]})
        else:
            raise InputError(path, "expected a list of records", column=column, row=row)
    return out


def latest_rows(frame: pd.DataFrame, region: str, path: Path) -> pd.DataFrame:
    """The region's rows of the latest year of each cluster."""
    rows = frame[frame["region"] == region]
    if rows.empty:
        raise InputError(path, f"no rows for region {region!r}", column="region")
    latest = rows.groupby("cluster", sort=False)["year"].transform("max")
    return rows[rows["year"] == latest]


def parse_drivers(explanations: pd.DataFrame, path: Path) -> dict[tuple, list[Driver]]:
    """Drivers per (region, cluster, year): a ``drivers`` column of JSON text or lists of records,
    or a long table with one row per driver (columns feature, contribution, ... and ``rank``)."""
    out: dict[tuple, list[Driver]] = {}
    if "drivers" in explanations.columns:
        for pos, (key, cell) in enumerate(
            zip(
                explanations[KEYS].itertuples(index=False, name=None),
                explanations["drivers"],
                strict=True,
            )
        ):
            records = _records(cell, path, "drivers", pos + 1)
            out[key] = [_driver(r, path, pos + 1) for r in records]
        return out
    if {"feature", "contribution"} <= set(explanations.columns):
        frame = explanations.reset_index(drop=True)  # row numbers are file rows
        if "rank" in frame.columns:
            frame = frame.sort_values([*KEYS, "rank"], kind="stable")
        for index, record in zip(frame.index, frame.to_dict("records"), strict=True):
            key = tuple(record[k] for k in KEYS)
            out.setdefault(key, []).append(_driver(record, path, int(index) + 1))
        return out
    raise InputError(
        path, "expected a 'drivers' column or long-format driver rows", column="drivers"
    )


def _driver(record: Mapping[str, object], path: Path, row: int) -> Driver:
    driver = Driver.from_record(record)
    if driver is None:
        raise InputError(
            path, "expected each driver to have a feature and a numeric contribution", row=row
        )
    return driver


def parse_levers(levers: pd.DataFrame, path: Path) -> dict[tuple, Levers]:
    """Levers per (region, cluster, year): one row per cluster with a ``changes`` column (JSON text
    or list of {feature, from, to}), ``reachable``, ``target_stage``, ``predicted_after``,
    ``p_target_after``, ``reason``."""
    _require(levers, [*KEYS, "reachable"], path, "levers")
    out: dict[tuple, Levers] = {}
    for pos, record in enumerate(levers.to_dict("records")):
        key = tuple(record[k] for k in KEYS)
        changes = tuple(
            LeverChange(
                feature=str(c.get("feature")),
                from_value=finite(c.get("from", c.get("from_value"))),
                to_value=finite(c.get("to", c.get("to_value"))),
            )
            for c in _records(record.get("changes"), path, "changes", pos + 1)
        )
        out[key] = Levers(
            target_stage=_text(record.get("target_stage")),
            reachable=bool(record.get("reachable")) if _text(record.get("reachable")) else False,
            changes=changes,
            predicted_after=_text(record.get("predicted_after")),
            p_target_after=finite(record.get("p_target_after")),
            reason=_text(record.get("reason")),
            runner_up_after=_text(record.get("runner_up_after")),
            p_runner_up_after=finite(record.get("p_runner_up_after")),
        )
    return out


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def cluster_cases(
    explanations: pd.DataFrame,
    levers: pd.DataFrame | None,
    features: pd.DataFrame,
    region: str,
    *,
    sources: Mapping[str, Path] | None = None,
) -> list[ClusterCase]:
    """One case per cluster of ``region`` (its latest explained year) from the three inputs.

    ``sources`` names the files in error messages (keys explanations, levers, features).
    """
    where = {"explanations": paths.EXPLANATIONS, "levers": paths.LEVERS, "features": paths.FEATURES}
    where.update(sources or {})
    _require(explanations, KEYS, where["explanations"], "explanations")
    _require(features, KEYS, where["features"], "features")
    drivers = parse_drivers(explanations, where["explanations"])
    lever_map = parse_levers(levers, where["levers"]) if levers is not None else {}
    wide = explanations.drop_duplicates(KEYS)
    rows = latest_rows(wide, region, where["explanations"])
    values = features.drop_duplicates(KEYS, keep="last").set_index(KEYS)
    cases = []
    for record in rows.to_dict("records"):
        key = tuple(record[k] for k in KEYS)
        probabilities = {s: finite(record.get(col)) for s, col in PROBA.items() if col in record}
        probs = {s: p for s, p in probabilities.items() if p is not None}
        stage = _text(record.get("stage")) or (max(probs, key=probs.get) if probs else None)
        if stage not in STAGES:
            raise InputError(
                where["explanations"], f"stage must be one of {', '.join(STAGES)}", column="stage"
            )
        feature_values = values.loc[key].to_dict() if key in values.index else {}
        cases.append(
            ClusterCase(
                region=str(record["region"]),
                cluster=str(record["cluster"]),
                year=int(record["year"]),
                stage=stage,
                probabilities=probs,
                drivers=tuple(drivers.get(key, [])),
                values=feature_values,
                levers=lever_map.get(key),
            )
        )
    return cases


def _clean(value: object) -> object:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _lever_fields(case: ClusterCase) -> dict[str, object]:
    lev = case.levers
    if lev is None:
        return {
            "levers": [],
            "lever_target": None,
            "p_target_after": None,
            "runner_up_after": None,
            "p_runner_up_after": None,
            "lever_note": "no lever computed for this cluster",
        }
    if lev.reachable and lev.changes:
        after = lev.predicted_after or lev.target_stage
        return {
            "levers": [
                {
                    "feature": c.feature,
                    "from": c.from_value,
                    "to": c.to_value,
                    "predicted_stage_after": after,
                }
                for c in lev.changes
            ],
            "lever_target": lev.target_stage,
            "p_target_after": lev.p_target_after,
            "runner_up_after": lev.runner_up_after,
            "p_runner_up_after": lev.p_runner_up_after,
            "lever_note": None,
        }
    # The lever search says why in its own words (no target for the stage, nothing within the
    # comparative clusters' range reaches it, ...).
    if lev.reason:
        note = lev.reason
    elif lev.target_stage is None:
        note = f"no lever target for a {case.stage} cluster"
    else:
        note = f"no lever within bounds reaches {lev.target_stage}"
    return {
        "levers": [],
        "lever_target": lev.target_stage,
        "p_target_after": None,
        "runner_up_after": None,
        "p_runner_up_after": None,
        "lever_note": note,
    }


def caveats(case: ClusterCase, scoring: Scoring) -> list[str]:
    """What a reader must know before acting on the cluster's stage, in words."""
    out = []
    torn = case.torn_with(scoring.near_tie_margin)
    if torn is not None:
        p_top, p_torn = case.confidence, finite(case.probabilities.get(torn)) or 0.0
        out.append(
            f"the model is torn between {case.stage} ({p_top:.2f}) and {torn} ({p_torn:.2f}): "
            f"measures that fit both are preferred; check the stage against next year's data "
            "before committing to stage-specific measures"
        )
    if case.rests_on_gaps:
        out.append(
            "the stage rests mostly on values missing for this cluster ("
            + ", ".join(case.missing_drivers)
            + "): treat it as provisional until they are collected; no heavy measures"
        )
    return out


def cluster_record(case: ClusterCase, portfolio: Portfolio, synthetic: bool) -> dict[str, object]:
    # Best first: a guard's substitute takes its predecessor's slot but not necessarily its rank.
    recs = sorted(portfolio.recommendations.get(case.cluster, ()), key=lambda r: -r.score)
    runner = case.runner_up
    return _clean(
        {
            "region": case.region,
            "cluster": case.cluster,
            "year": case.year,
            "stage": case.stage,
            "confidence": round(case.confidence, 6),
            "runner_up": runner[0] if runner else None,
            "p_runner_up": round(runner[1], 6) if runner else None,
            "caveats": caveats(case, portfolio.scoring),
            "probabilities": dict(case.probabilities),
            "drivers": [{f: getattr(d, f) for f in DRIVER_FIELDS} for d in case.drivers],
            "recommendations": [r.to_dict() for r in recs],
            **_lever_fields(case),
            "synthetic": synthetic,
        }
    )  # type: ignore[return-value]


def portfolio_summary(
    before: Portfolio, after: Portfolio, results: list[GuardResult], config: GuardConfig
) -> dict[str, object]:
    final = holds(after, config)
    counts = after.count_by_aspect()
    total = sum(counts.values())
    return {
        "clusters": len(after.cases),
        "recommendations": total,
        "guards": {
            r.name: {
                "passed": r.passed,
                "changes": list(r.changes),
                "notes": list(r.notes),
                "holds_after": final[r.name],
            }
            for r in results
        },
        "count_by_aspect": counts,
        "share_by_aspect": {a: round(counts[a] / total, 4) if total else 0.0 for a in ASPECTS},
        "count_by_aspect_before_guards": before.count_by_aspect(),
        "count_by_stage": after.count_by_stage(),
    }


def scoring_of(cfg: RecommendParams) -> Scoring:
    return Scoring(
        driver_weight=cfg.driver_weight,
        lever_weight=cfg.lever_weight,
        high_percentile=cfg.high_percentile,
        low_percentile=cfg.low_percentile,
        near_tie_margin=cfg.near_tie_margin,
    )


def guard_config_of(cfg: RecommendParams) -> GuardConfig:
    return GuardConfig(
        max_aspect_share=cfg.max_aspect_share,
        min_confidence=cfg.min_confidence,
        sme_majority=cfg.sme_majority,
    )


def recommend(
    params: Params,
    explanations: pd.DataFrame,
    levers: pd.DataFrame | None,
    features: pd.DataFrame,
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The JSONL records and the portfolio summary for the target region (no I/O)."""
    cfg = params.recommend
    region = params.score.region
    kb = load_knowledge_base(cfg.knowledge_base)
    cases = cluster_cases(explanations, levers, features, region)
    before = build_portfolio(region, cases, kb, cfg.k, scoring_of(cfg))
    config = guard_config_of(cfg)
    after, results = apply_guards(before, config)
    records = [cluster_record(case, after, params.data.synthetic) for case in cases]
    summary = {
        "synthetic": params.data.synthetic,
        "knowledge_base": kb.source,
        "regions": {region: portfolio_summary(before, after, results, config)},
    }
    return records, summary


def write_outputs(records: list[dict[str, object]], summary: dict[str, object]) -> None:
    """Both files, each atomically; serialised first so a bad value leaves neither behind."""
    lines = "".join(f"{json.dumps(r, ensure_ascii=False, allow_nan=False)}\n" for r in records)
    text = json.dumps(_clean(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(paths.RECOMMENDATIONS) as tmp:
        tmp.write_text(lines, encoding="utf-8")
    with atomic_path(paths.PORTFOLIO) as tmp:
        tmp.write_text(text, encoding="utf-8")


def log_to_training_run(files: Iterable[Path], run_file: Path = paths.MLFLOW_RUN) -> bool:
    """Add ``files`` to the training MLflow run; warn and skip when there is none."""
    return tracking.log_to_training_run(files, "policy", "recommendations", run_file)


def recommend_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """The DVC stage: read the explain stage's outputs and the features, write the policy."""
    params = load_params(params_path)
    explanations = read_stage_output(paths.EXPLANATIONS, "explanations")
    levers = read_stage_output(paths.LEVERS, "levers")
    features = read_stage_output(paths.FEATURES, "features")
    records, summary = recommend(params, explanations, levers, features)
    write_outputs(records, summary)
    log_to_training_run([paths.RECOMMENDATIONS, paths.PORTFOLIO])


def instruments_command(out: Path) -> None:
    """Write the packaged knowledge base as Markdown (docs/policy.md)."""
    text = render_markdown(load_knowledge_base())
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
