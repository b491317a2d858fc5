"""DVC stage `report`: one self-contained HTML page per region for the analyst who reads it.

Reads what the earlier stages wrote (``data/processed/features.parquet``,
``reports/explanations.parquet`` and ``reports/levers.parquet`` from `explain`,
``reports/recommendations.jsonl`` and ``reports/portfolio.json`` from `recommend`,
``reports/metrics.json``, ``reports/per_region.csv`` and ``reports/mlflow_run.json`` from `train`,
``data/model/model.json``) and writes ``reports/<region>.html``: the synthetic-data banner,
the stage summary, the LQ x growth bubble chart, one card per cluster (stage probabilities, a
SHAP waterfall of its drivers, recommendations with their reasons and KPIs, levers), the region's
policy portfolio with the four trap guards, and a model card.

A region other than ``score.region`` is explained and recommended for on request, in memory, with
the current model (the page says so). The page needs no network and runs no JavaScript: CSS is
inline, charts are inline SVG built by the templates, a Content-Security-Policy forbids scripts
and remote loads, and every text from the inputs goes through Jinja's autoescaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd

from features.errors import InputError
from features.stages import STAGES
from pipeline import paths
from pipeline.io import atomic_path, check_writable, read_stage_output, restore_formulas
from pipeline.params import Params, load_params
from pipeline.report_charts import (
    ASPECT_TITLES,
    OWN_GROWTH,
    RELATIVE_GROWTH,
    STAGE_COLOURS,
    BarChart,
    BubbleChart,
    Waterfall,
    aspect_bars,
    bubble_chart,
    finite,
    fmt_feature,
    fmt_growth,
    fmt_number,
    fmt_percent,
    formulas,
    probability_bars,
    waterfall,
)
from policy.cases import cell_records, optional_text
from policy.recommender import Driver

TEMPLATES = Path(__file__).resolve().parent / "templates"
KEYS = ["region", "cluster", "year"]
GROWTH_COLUMNS = (RELATIVE_GROWTH, OWN_GROWTH)  # the chart's y: the first the features hold
SYNTHETIC_KEY = b"clusterstage.synthetic"

STAGE_MEANING: dict[str, str] = {
    "emerging": "small or unspecialised, specialisation rising, high entry",
    "growth": "specialised and growing faster than the industry nationally",
    "mature": "strong and large, growing about as fast as the nation",
    "decline": "employment and specialisation falling, net exit",
    "renewal": "employment flat or falling while productivity, wages or innovation rise",
}
GUARD_TITLES: dict[str, tuple[str, str]] = {
    "governance_in_vain": (
        "Governance in vain",
        "every measure has a measurable KPI with a baseline; no heavy intervention where the "
        "model is unsure of the stage",
    ),
    "unbalanced_support": (
        "Unbalanced support",
        "all four aspects are present and none takes too large a share of the measures",
    ),
    "big_enterprise_only": (
        "Big enterprises only",
        "clusters whose employment is mostly in SMEs get measures aimed at SMEs",
    ),
    "strong_over_weak": (
        "Strong over weak",
        "emerging and declining clusters get at least as many measures as mature ones",
    ),
}
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


# --- inputs ------------------------------------------------------------------------------------


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


def file_name(region: str) -> str:
    """The region's name as the page's file name: unchanged, as dvc.yaml's report stage names its
    output (``reports/${score.region}.html``), so that the command and the pipeline write one
    file. Only a separator or control character, which score.region may not hold, becomes '_'
    (a region asked for with --region is not checked like score.region)."""
    return re.sub(r"[/\\\x00-\x1f]", "_", region)


def default_output(region: str, reports: Path = paths.REPORTS) -> Path:
    return reports / f"{file_name(region)}.html"


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
    from policy.cases import cluster_cases
    from policy.knowledge_base import load_knowledge_base
    from policy.records import recommend_region

    cfg = params.recommend
    kb = load_knowledge_base(cfg.knowledge_base)
    sources = {
        "explanations": paths.EXPLANATIONS,
        "levers": paths.LEVERS,
        "features": paths.FEATURES,
    }
    cases = cluster_cases(explanations, levers, features, region, sources=sources)
    records, summary = recommend_region(
        region,
        cases,
        kb,
        k=cfg.k,
        scoring=cfg.scoring(),
        guards=cfg.guard_config(),
        synthetic=params.data.synthetic,
    )
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


# --- view model: the page ----------------------------------------------------------------------


def _flag(value: object) -> bool | None:
    """A JSON boolean; the strings "true" / "false" that older mlflow_run.json files hold are
    parsed, and anything else is unknown (None), never truthy: "false" must not read as yes."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


@dataclass(frozen=True)
class LeverView:
    reachable: bool
    target: str | None
    changes: list[dict[str, str]]  # feature, from, to, percentile
    predicted_after: str | None
    p_before: str
    p_after: str
    note: str | None
    runner_up: str = ""  # "decline 33 %": the best other stage after the move


@dataclass(frozen=True)
class ClusterView:
    cluster: str
    anchor: str
    year: int
    stage: str
    colour: str
    confidence: float | None
    employment: str
    lq: str
    growth_vs_nation: str  # growth_vs_national_3y, in percentage points per year
    employment_growth: str  # emp_cagr_3y: the cluster's own employment growth
    probabilities: BarChart
    waterfall: Waterfall | None
    drivers: list[dict[str, object]]
    recommendations: list[dict[str, object]]
    lever: LeverView | None
    caveats: list[str] = field(default_factory=list)  # from recommendations.jsonl, in words
    # drivers that, told against the runner-up stage, favour the other stage: "feature pushes ..."
    turned: list[str] = field(default_factory=list)


def turned_drivers(drivers: Sequence[Mapping[str, object]], stage: str) -> list[str]:
    """The drivers whose pull reverses once told against the runner-up stage, in words."""
    out = []
    for record in drivers:
        driver = Driver.from_record(record)
        if driver is not None and driver.turned:
            out.append(f"{driver.feature} {driver.pull(stage)}")
    return out


def _latest(explanations: pd.DataFrame, region: str) -> pd.DataFrame:
    rows = explanations[explanations["region"] == region]
    latest = rows.groupby("cluster", sort=False)["year"].transform("max")
    return rows[rows["year"] == latest].drop_duplicates(["cluster"], keep="last")


def _lever_view(record: Mapping[str, object] | None, rec: Mapping[str, object] | None) -> LeverView:
    """From a levers.parquet row (preferred: it has percentiles) or a recommendations line."""
    if record is not None:
        changes = [
            {
                "feature": str(c.get("feature")),
                "from": fmt_feature(str(c.get("feature")), c.get("from")),
                "to": fmt_feature(str(c.get("feature")), c.get("to")),
                "percentile": (
                    f"P{finite(c.get('to_percentile')):.0f}"
                    if finite(c.get("to_percentile")) is not None
                    else ""
                ),
                "verb": (
                    "raise"
                    if (finite(c.get("to")) or 0) > (finite(c.get("from")) or 0)
                    else "lower"
                ),
                "following": ", ".join(
                    str(d.get("feature"))
                    for d in (c.get("derived") or [])
                    if isinstance(d, Mapping)
                ),
            }
            for c in cell_records(record.get("changes"), str(paths.LEVERS), "changes", None)
        ]
        reachable = bool(record.get("reachable")) and bool(changes)
        target = optional_text(record.get("target_stage"))
        note = None
        if not reachable:
            reason = optional_text(record.get("reason"))
            if target is None:
                note = f"No lever needed: {reason}." if reason else "No lever target."
            else:
                note = f"No lever within bounds reaches {target}" + (
                    f": {reason}." if reason else "."
                )
        p_before = finite(record.get("p_target_before"))
        p_after = finite(record.get("p_target_after"))
        runner, p_runner = (
            optional_text(record.get("runner_up_after")),
            finite(record.get("p_runner_up_after")),
        )
        return LeverView(
            reachable=reachable,
            target=target,
            changes=changes if reachable else [],
            predicted_after=optional_text(record.get("predicted_after")),
            p_before=fmt_percent(p_before, digits=0) if p_before is not None else "",
            p_after=fmt_percent(p_after, digits=0) if p_after is not None else "",
            note=note,
            runner_up=(
                f"{runner} {fmt_percent(p_runner, digits=0)}"
                if reachable and runner is not None and p_runner is not None
                else ""
            ),
        )
    rec = rec or {}
    raw = rec.get("levers") or []
    changes = [
        {
            "feature": str(c.get("feature")),
            "from": fmt_feature(str(c.get("feature")), c.get("from")),
            "to": fmt_feature(str(c.get("feature")), c.get("to")),
            "percentile": "",
            "verb": "raise"
            if (finite(c.get("to")) or 0) > (finite(c.get("from")) or 0)
            else "lower",
        }
        for c in raw
        if isinstance(c, Mapping)
    ]
    after = next(
        (optional_text(c.get("predicted_stage_after")) for c in raw if isinstance(c, Mapping)), None
    )
    p_after = finite(rec.get("p_target_after"))
    return LeverView(
        reachable=bool(changes),
        target=optional_text(rec.get("lever_target")),
        changes=changes,
        predicted_after=after,
        p_before="",
        p_after=fmt_percent(p_after, digits=0) if p_after is not None else "",
        note=optional_text(rec.get("lever_note")) or (None if changes else "No lever computed."),
    )


def _recommendation_view(rec: Mapping[str, object]) -> dict[str, object]:
    kpi = str(rec.get("kpi") or "")
    baseline = rec.get("baseline")
    direction = str(rec.get("kpi_direction") or "")
    return {
        "title": str(rec.get("title") or rec.get("id") or ""),
        "id": str(rec.get("id") or ""),
        "aspect": ASPECT_TITLES.get(str(rec.get("aspect")), str(rec.get("aspect") or "")),
        "aspect_key": str(rec.get("aspect") or ""),
        "because": str(rec.get("because") or ""),
        "kpi": kpi,
        "kpi_formula": formulas().get(kpi, ""),
        "arrow": {"increase": "↑", "decrease": "↓"}.get(direction, ""),
        "direction": direction,
        "baseline": fmt_feature(kpi, baseline) if kpi else "–",
        "targets": {"smes": "SMEs", "all_firms": "all firms", "large_firms": "large firms"}.get(
            str(rec.get("targets") or ""), str(rec.get("targets") or "")
        ),
        "intensity": str(rec.get("intensity") or ""),
        "added_by": (
            GUARD_TITLES.get(str(rec["added_by"]), (str(rec["added_by"]),))[0]
            if rec.get("added_by")
            else None
        ),
    }


def _growth_column(features: pd.DataFrame) -> str | None:
    for col in GROWTH_COLUMNS:
        if col in features.columns and features[col].notna().any():
            return col
    return None


def cluster_views(
    inputs: ReportInputs,
) -> tuple[list[ClusterView], BubbleChart | None, str | None, list[str]]:
    """The cards (ordered by stage, then employment), the bubble chart, its growth column and the
    clusters left unstaged ("name (year)"): those whose latest year has no change over time."""
    from models.scoring import change_known

    region = inputs.region
    ex = inputs.explanations
    for col in (*KEYS, "stage"):
        if col not in ex.columns:
            raise InputError(
                str(paths.EXPLANATIONS),
                "expected explanations with region, cluster, year, stage",
                column=col,
            )
    latest = _latest(ex, region)
    if latest.empty:
        raise InputError(str(paths.EXPLANATIONS), f"no rows for region {region!r}", column="region")
    bad = ~latest["stage"].isin(STAGES)
    if bad.any():
        raise InputError(
            str(paths.EXPLANATIONS),
            f"expected a stage of {', '.join(STAGES)}, found {latest['stage'][bad].iloc[0]!r}",
            column="stage",
        )
    feats = inputs.features[inputs.features["region"] == region]
    growth_col = _growth_column(feats)
    values = feats.drop_duplicates(["cluster", "year"], keep="last").set_index(["cluster", "year"])
    # `explain` stages every row, but `score` refuses one with no change over time known (the
    # first year of a history, judged from levels alone): the page shows no stage `score` refuses.
    known = dict(zip(values.index, change_known(values), strict=True))
    unstaged: list[str] = []
    levers: dict[str, Mapping[str, object]] = {}
    if inputs.levers is not None and {"region", "cluster"} <= set(inputs.levers.columns):
        lv = inputs.levers[inputs.levers["region"] == region]
        if "year" in lv.columns:
            lv = lv.sort_values("year", kind="stable")
        levers = {str(r["cluster"]): r for r in lv.to_dict("records")}
    recs = {str(r.get("cluster")): r for r in inputs.recommendations if r.get("region") == region}

    rows = []
    for pos, record in enumerate(latest.to_dict("records"), start=1):
        cluster, year = str(record["cluster"]), int(record["year"])
        if not known.get((record["cluster"], record["year"]), True):
            unstaged.append(f"{cluster} ({year})")
            continue
        stage = str(record["stage"])
        own = (
            values.loc[(record["cluster"], record["year"])]
            if (record["cluster"], record["year"]) in values.index
            else pd.Series(dtype=object)
        )
        probs = {s: finite(record.get(f"p_{s}")) for s in STAGES}
        drivers = cell_records(record.get("drivers"), str(paths.EXPLANATIONS), "drivers", pos)
        emp = finite(own.get("employment"))
        rows.append(
            {
                "cluster": cluster,
                "year": year,
                "stage": stage,
                "record": record,
                "probs": probs,
                "drivers": drivers,
                "employment": emp,
                "lq": finite(own.get("lq")),
                "growth": finite(own.get(growth_col)) if growth_col else None,
                "relative": finite(own.get(RELATIVE_GROWTH)),
                "own_growth": finite(own.get(OWN_GROWTH)),
            }
        )
    if not rows:
        raise InputError(
            inputs.sources.get("features", str(paths.FEATURES)),
            f"no cluster of region {region!r} has a change over time known in its latest year "
            "(it needs the year before): no stage can be judged",
            column="year",
        )
    rows.sort(key=lambda r: (STAGES.index(r["stage"]), -(r["employment"] or 0.0), r["cluster"]))

    views = []
    for i, r in enumerate(rows, start=1):
        record = r["record"]
        probability = r["probs"].get(r["stage"])
        rec = recs.get(r["cluster"])
        recommendations = [
            _recommendation_view(x)
            for x in ((rec or {}).get("recommendations") or [])
            if isinstance(x, Mapping)
        ]
        views.append(
            ClusterView(
                cluster=r["cluster"],
                anchor=f"cluster-{i}",
                year=r["year"],
                stage=r["stage"],
                colour=STAGE_COLOURS[r["stage"]],
                confidence=probability,
                employment=f"{r['employment']:,.0f}" if r["employment"] is not None else "–",
                lq=f"{r['lq']:.2f}" if r["lq"] is not None else "–",
                growth_vs_nation=fmt_growth(r["relative"], relative=True),
                employment_growth=fmt_growth(r["own_growth"], relative=False),
                probabilities=probability_bars(r["probs"], r["stage"]),
                waterfall=waterfall(
                    record.get("base"), record.get("margin"), r["drivers"], r["stage"], probability
                ),
                drivers=r["drivers"],
                recommendations=recommendations,
                lever=(
                    _lever_view(levers.get(r["cluster"]), rec)
                    if levers.get(r["cluster"]) is not None or rec is not None
                    else None
                ),
                caveats=[str(c) for c in ((rec or {}).get("caveats") or []) if c],
                turned=turned_drivers(r["drivers"], r["stage"]),
            )
        )
    chart = None
    if growth_col is not None and "lq" in feats.columns:
        points = pd.DataFrame(
            {
                "cluster": [r["cluster"] for r in rows],
                "anchor": [v.anchor for v in views],
                "stage": [r["stage"] for r in rows],
                "lq": [r["lq"] for r in rows],
                "growth": [r["growth"] for r in rows],
                "own_growth": [r["own_growth"] for r in rows],
                "employment": [r["employment"] for r in rows],
            }
        )
        chart = bubble_chart(points, growth_col)
    return views, chart, growth_col, unstaged


def stage_summary(views: Sequence[ClusterView]) -> list[dict[str, object]]:
    total = len(views)
    out = []
    for stage in STAGES:
        members = [v for v in views if v.stage == stage]
        out.append(
            {
                "stage": stage,
                "colour": STAGE_COLOURS[stage],
                "meaning": STAGE_MEANING[stage],
                "count": len(members),
                "share": len(members) / total if total else 0.0,
                "clusters": [(v.cluster, v.anchor) for v in members],
            }
        )
    return out


def portfolio_view(
    portfolio: Mapping[str, object] | None, max_share: float | None
) -> dict[str, object] | None:
    if not portfolio:
        return None
    counts = portfolio.get("count_by_aspect") or {}
    guards = []
    raw_guards = portfolio.get("guards") or {}
    for name, g in raw_guards.items() if isinstance(raw_guards, Mapping) else []:
        g = g if isinstance(g, Mapping) else {}
        passed = bool(g.get("passed"))
        holds_after = g.get("holds_after", True)
        title, rule = GUARD_TITLES.get(str(name), (str(name), ""))
        status = "passed" if passed else ("repaired" if holds_after is not False else "failing")
        guards.append(
            {
                "title": title,
                "rule": rule,
                "status": status,
                "changes": [str(c) for c in g.get("changes") or []],
                "notes": [str(c) for c in g.get("notes") or []],
            }
        )
    by_stage = portfolio.get("count_by_stage") or {}
    stages = [
        {
            "stage": s,
            "colour": STAGE_COLOURS[s],
            "clusters": int((by_stage.get(s) or {}).get("clusters", 0)),
            "recommendations": int((by_stage.get(s) or {}).get("recommendations", 0)),
            "mean": fmt_number((by_stage.get(s) or {}).get("mean_per_cluster"), 2),
        }
        for s in STAGES
    ]
    before = portfolio.get("count_by_aspect_before_guards") or {}
    return {
        "clusters": portfolio.get("clusters"),
        "total": portfolio.get("recommendations", sum(int(v) for v in counts.values())),
        "aspects": aspect_bars({k: int(v) for k, v in counts.items()}, max_share),
        "aspects_before": {ASPECT_TITLES.get(k, k): int(v) for k, v in before.items()},
        "stages": stages,
        "guards": guards,
    }


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


def context(inputs: ReportInputs) -> dict[str, object]:
    """Everything the template shows, computed from the inputs (no I/O)."""
    views, chart, growth_col, unstaged = cluster_views(inputs)
    years = sorted({v.year for v in views})
    year_text = str(years[0]) if len(years) == 1 else f"{years[0]}–{years[-1]}"
    return {
        "region": inputs.region,
        "year": year_text,
        "synthetic": inputs.synthetic,
        "synthetic_sources": list(inputs.synthetic_sources),
        "notes": list(inputs.notes),
        "clusters": views,
        "summary": stage_summary(views),
        "chart": chart,
        "growth_column": growth_col,
        "unstaged": unstaged,
        "stages": [(s, STAGE_COLOURS[s]) for s in STAGES],
        "portfolio": portfolio_view(inputs.portfolio, inputs.max_aspect_share),
        "card": model_card(inputs),
        "generated": inputs.generated,
        "sources": dict(inputs.sources),
    }


@cache
def _environment():  # -> jinja2.Environment, imported lazily with the rest of the report
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, digits=0: fmt_percent(v, digits=digits)
    env.filters["num"] = fmt_number
    env.filters["stage_colour"] = lambda stage: STAGE_COLOURS.get(str(stage), "#777777")
    return env


def render_report(inputs: ReportInputs) -> str:
    """The page as one HTML string."""
    return _environment().get_template("report.html.j2").render(**context(inputs))


def write_report(inputs: ReportInputs, out: str | Path) -> Path:
    """Render and write atomically: a failure leaves no partial page behind."""
    out = Path(out)
    html = render_report(inputs)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out


def report_command(
    params_path: str | Path = paths.PARAMS, region: str | None = None, out: Path | None = None
) -> Path:
    """`clusterstage report`: the page of ``region`` (default score.region) to ``out`` (default
    ``reports/<region>.html``, the file dvc.yaml's report stage writes)."""
    params = load_params(params_path)
    target = out or default_output(params.score.region if region is None else region)
    # Before the work, not after it; the default keeps the region's name, which may be too long,
    # and check_writable's first look at a name the file system refuses raises a bare OSError.
    try:
        out = check_writable(target)
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise InputError(target, f"cannot write: {reason}") from None
    inputs = load_inputs(params, region)
    inputs = replace(inputs, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return write_report(inputs, out)
