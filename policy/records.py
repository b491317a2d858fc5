"""What the recommend stage writes, built from cluster cases: one JSON-ready record per cluster
(stage, runner-up, caveats, drivers, recommendations, levers) and the region's portfolio summary
(the four trap guards' results, counts by aspect and by stage).

``recommend_region`` runs the whole policy step for one region: rank the knowledge base's
instruments for each case, repair the portfolio with the guards, then build both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from policy.guards import GuardConfig, GuardResult, apply_guards, holds
from policy.knowledge_base import ASPECTS, KnowledgeBase
from policy.ranking import Scoring
from policy.recommender import ClusterCase, Portfolio, build_portfolio, finite

DRIVER_FIELDS = (
    "feature",
    "value",
    "percentile",
    "contribution",
    "direction",
    "runner_up",
    "vs_runner_up",
)


def json_safe(value: object) -> object:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
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
    """The cluster's line of recommendations.jsonl, JSON-safe."""
    # Best first: a guard's substitute takes its predecessor's slot but not necessarily its rank.
    recs = sorted(portfolio.recommendations.get(case.cluster, ()), key=lambda r: -r.score)
    runner = case.runner_up
    return json_safe(
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
    """The region's entry of portfolio.json: each guard's result, the counts before and after."""
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


def recommend_region(
    region: str,
    cases: Sequence[ClusterCase],
    kb: KnowledgeBase,
    *,
    k: int,
    scoring: Scoring,
    guards: GuardConfig,
    synthetic: bool,
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The region's records (one per case) and its portfolio summary (portfolio.json's shape,
    the region under ``regions``), after the guards' repairs."""
    before = build_portfolio(region, cases, kb, k, scoring)
    after, results = apply_guards(before, guards)
    records = [cluster_record(case, after, synthetic) for case in cases]
    summary = {
        "synthetic": synthetic,
        "knowledge_base": kb.source,
        "regions": {region: portfolio_summary(before, after, results, guards)},
    }
    return records, summary
