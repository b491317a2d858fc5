"""The report's inputs: reading what the earlier stages wrote, and computing on request what they
did not cover (explanations, levers and recommendations of a region other than ``score.region``).

Everything here reads files or runs the model; the view models (`pipeline.report_views`) and the
model card (`pipeline.model_card`) only transform what `load_inputs` returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.errors import InputError
from pipeline import paths
from pipeline.io import read_stage_output, restore_formulas
from pipeline.params import Params

SYNTHETIC_KEY = b"clusterstage.synthetic"


@dataclass(frozen=True)
class ReportInputs:
    """Everything one page shows, already read. Only ``features`` and ``explanations`` are needed;
    every other part is optional and the page says where it is missing."""

    region: str
    features: pd.DataFrame  # region, cluster, year, lq, growth, employment, ... (any regions)
    explanations: pd.DataFrame  # region, cluster, year, stage, p_<stage>, base, margin, drivers
    levers: pd.DataFrame | None = None
    recommendations: Sequence[Mapping[str, object]] = ()  # the lines of recommendations.jsonl
    portfolio: Mapping[str, object] | None = None  # portfolio.json's entry for this region
    metrics: Mapping[str, object] | None = None  # metrics.json
    per_region: pd.DataFrame | None = None  # per_region.csv
    mlflow_run: Mapping[str, object] | None = None  # mlflow_run.json
    model_meta: Mapping[str, object] | None = None  # data/model/model.json
    synthetic: bool = False
    synthetic_sources: tuple[str, ...] = ()  # which inputs say the data are synthetic
    max_aspect_share: float | None = None  # recommend.max_aspect_share, for the portfolio chart
    label_source: str | None = None  # labels.source: expert, or the rule labeller trained on
    notes: tuple[str, ...] = ()  # how the page was made, where it differs from the pipeline's run
    generated: str | None = None  # a timestamp shown in the footer
    sources: Mapping[str, str] = field(default_factory=dict)  # what -> file, for the footer


def _parquet_synthetic(path: Path) -> bool | None:
    """The file's clusterstage.synthetic metadata: True, False, or None where absent."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):
        return None
    value = meta.get(SYNTHETIC_KEY)
    return None if value is None else value.decode().strip().lower() == "true"


def _read_json(path: Path, what: str) -> dict[str, object] | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(path, f"expected a JSON file of {what} ({err})") from None
    if not isinstance(value, dict):
        raise InputError(path, f"expected a JSON object of {what}")
    return value


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """One JSON object per line; blank lines are skipped."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InputError(path, "expected one JSON object per line", row=number) from None
        if not isinstance(record, dict):
            raise InputError(path, "expected one JSON object per line", row=number)
        records.append(record)
    return records


def _read_own_csv(path: Path) -> pd.DataFrame | None:
    """A CSV file that ``write_table`` wrote, read back as it was meant (``restore_formulas``);
    metrics.json, which the page prefers for per-region scores, has no such ambiguity."""
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise InputError(path, f"expected a CSV file ({err})") from None
    return restore_formulas(frame)


def _has_region(frame: pd.DataFrame | None, region: str) -> bool:
    return frame is not None and "region" in frame.columns and (frame["region"] == region).any()


def _explain_on_request(
    params: Params, features: pd.DataFrame, region: str, model_dir: Path, labels_path: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explanations and levers of a region the `explain` stage did not cover, with the model."""
    from models.bundle import StageModel
    from models.explanations import comparative_rows, explanation_table, lever_table

    model = StageModel.load(model_dir)
    labels = read_stage_output(labels_path, "labels")
    rows = features[features["region"] == region]
    # The comparative clusters are the model's training rows, which leave out score.region.
    reference = comparative_rows(features, labels, model, params.score.region)
    explanations = explanation_table(model, rows, reference, params.explain.top_k)
    levers = lever_table(model, rows, reference, pair_features=params.explain.lever_pair_features)
    return explanations, levers


def _recommend_on_request(
    params: Params,
    explanations: pd.DataFrame,
    levers: pd.DataFrame | None,
    features: pd.DataFrame,
    region: str,
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Recommendations and the portfolio of a region that recommendations.jsonl lacks, as the
    `recommend` stage makes them."""
    from pipeline.recommend import recommend
    from policy.knowledge_base import load_knowledge_base

    kb = load_knowledge_base(params.recommend.knowledge_base)
    records, summary = recommend(params, explanations, levers, features, kb, region=region)
    return records, summary["regions"][region]  # type: ignore[index]


def load_inputs(
    params: Params,
    region: str | None = None,
    *,
    reports: Path = paths.REPORTS,
    features_path: Path = paths.FEATURES,
    model_dir: Path = paths.MODEL_DIR,
    labels_path: Path = paths.LABELS,
) -> ReportInputs:
    """Read every input of the page for ``region`` (default ``score.region``).

    A region missing from the explain and recommend stages' files is explained and recommended
    for here with the model in ``model_dir``; a region with no rows at all is an error.
    """
    region = params.score.region if region is None else region
    where = {
        "explanations": reports / paths.EXPLANATIONS.name,
        "levers": reports / paths.LEVERS.name,
        "recommendations": reports / paths.RECOMMENDATIONS.name,
        "portfolio": reports / paths.PORTFOLIO.name,
        "metrics": reports / paths.METRICS.name,
        "per_region": reports / paths.PER_REGION.name,
        "mlflow_run": reports / paths.MLFLOW_RUN.name,
        "model": model_dir / paths.MODEL_META.name,
    }
    features = read_stage_output(features_path, "features")
    if "region" not in features.columns:
        raise InputError(features_path, "expected a region column", column="region")
    if not (features["region"] == region).any():
        regions = [str(r) for r in pd.unique(features["region"])]
        known = ", ".join(regions[:12]) + (
            f" and {len(regions) - 12} more" if len(regions) > 12 else ""
        )
        raise InputError(
            features_path,
            f"no rows for region {region!r}; the regions are: {known}",
            column="region",
        )

    notes: list[str] = []
    explanations = (
        read_stage_output(where["explanations"], "explanations")
        if where["explanations"].exists()
        else None
    )
    levers = read_stage_output(where["levers"], "levers") if where["levers"].exists() else None
    recommendations = (
        read_jsonl(where["recommendations"]) if where["recommendations"].exists() else []
    )
    portfolio_file = _read_json(where["portfolio"], "the policy portfolio")
    regions = portfolio_file.get("regions") if portfolio_file else None
    portfolio = regions.get(region) if isinstance(regions, dict) else None
    on_request = not _has_region(explanations, region)
    if on_request:
        if not (model_dir / paths.MODEL_META.name).exists():
            raise InputError(
                where["explanations"],
                f"no explanations for region {region!r}; run `clusterstage explain` with "
                f"score.region: {region!r}, or train the model ({model_dir}) so that the report "
                "can explain it",
                column="region",
            )
        explanations, levers = _explain_on_request(params, features, region, model_dir, labels_path)
        notes.append(
            f"{region} is not the pipeline's target region ({params.score.region}): its "
            "explanations, levers and recommendations were computed for this page with the "
            "current model."
        )
    recs_from_file = any(r.get("region") == region for r in recommendations)
    if not recs_from_file:
        recommendations, portfolio = _recommend_on_request(
            params, explanations, levers, features, region
        )
        if not on_request:
            notes.append(
                f"{where['recommendations']} holds no recommendations for {region}: they were "
                "computed for this page from the explanations."
            )

    model_meta = _read_json(where["model"], "model metadata")
    training = list(model_meta.get("training_regions", [])) if model_meta else []
    if region in training:
        notes.append(
            f"{region} is one of the model's training regions: its stages are fitted, not "
            "predicted out of sample."
        )

    sources: list[str] = []
    if params.data.synthetic:
        sources.append("params.yaml data.synthetic")
    marked = [("features", features_path)]
    if not on_request:
        marked.append(("explanations", where["explanations"]))
    for what, path in marked:
        if path.exists() and _parquet_synthetic(path):
            sources.append(f"{path} ({what} metadata clusterstage.synthetic)")
    if model_meta and model_meta.get("synthetic") is True:
        sources.append(f"{where['model']} (the model was trained on synthetic data)")
    if recs_from_file and any(r.get("synthetic") is True for r in recommendations):
        sources.append(f"{where['recommendations']} (synthetic: true)")
    return ReportInputs(
        region=region,
        features=features,
        explanations=explanations,  # type: ignore[arg-type]
        levers=levers,
        recommendations=recommendations,
        portfolio=portfolio,  # type: ignore[arg-type]
        metrics=_read_json(where["metrics"], "metrics"),
        per_region=_read_own_csv(where["per_region"]),
        mlflow_run=_read_json(where["mlflow_run"], "the MLflow run"),
        model_meta=model_meta,
        synthetic=bool(sources),
        synthetic_sources=tuple(sources),
        max_aspect_share=params.recommend.max_aspect_share,
        label_source=params.labels.source,
        notes=tuple(notes),
        sources={"features": str(features_path)}
        | {k: str(v) for k, v in where.items() if v.exists()},
    )
