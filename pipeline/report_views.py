"""The report's view models: what each part of the page shows (stage summary, cluster cards,
bubble chart, portfolio), built from `ReportInputs` without I/O; `context` gathers them, with
the model card, for the template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from features.errors import InputError
from features.stages import STAGES
from pipeline import paths
from pipeline.model_card import model_card
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
from pipeline.report_inputs import ReportInputs
from policy.cases import cell_records, optional_text
from policy.recommender import Driver

KEYS = ["region", "cluster", "year"]
GROWTH_COLUMNS = (RELATIVE_GROWTH, OWN_GROWTH)  # the chart's y: the first the features hold

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
