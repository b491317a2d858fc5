"""Small knowledge bases, cluster cases and explain-stage frames built in tests (no project data
involved)."""

from __future__ import annotations

import json

import pandas as pd

from policy.knowledge_base import Instrument, KnowledgeBase
from policy.recommender import ClusterCase, Driver, Levers

REGION = "Wenzhou-like"


def instrument(
    id: str,
    aspect: str = "investment_guidance",
    stages: tuple[str, ...] = ("mature",),
    *,
    kpi: str = "productivity",
    kpi_direction: str = "increase",
    triggers: tuple[tuple[str, str], ...] = (),
    targets: str = "all_firms",
    intensity: str = "light",
) -> Instrument:
    return Instrument.model_validate(
        {
            "id": id,
            "title": f"Instrument {id}",
            "aspect": aspect,
            "stages": list(stages),
            "triggers": [{"feature": f, "direction": d} for f, d in triggers],
            "rationale": "A rationale long enough for the schema.",
            "kpi": {"feature": kpi, "direction": kpi_direction},
            "targets": targets,
            "intensity": intensity,
            "source": {"work": "OECD Competitive Regional Clusters 2007"},
        }
    )


def kb(*instruments: Instrument) -> KnowledgeBase:
    """A knowledge base without the coverage checks (tests pick exactly what they need)."""
    return KnowledgeBase(tuple(instruments), source="test")


def case(
    cluster: str = "shoes",
    stage: str = "mature",
    *,
    confidence: float = 0.9,
    values: dict[str, float] | None = None,
    drivers: tuple[Driver, ...] = (),
    levers: Levers | None = None,
    region: str = "R",
) -> ClusterCase:
    rest = (1.0 - confidence) / 4
    probabilities = {s: rest for s in ("emerging", "growth", "mature", "decline", "renewal")}
    probabilities[stage] = confidence
    return ClusterCase(
        region=region,
        cluster=cluster,
        year=2024,
        stage=stage,
        probabilities=probabilities,
        drivers=drivers,
        values={"productivity": 50.0, "sme_share": 0.3} if values is None else values,
        levers=levers,
    )


def drivers_json(*items: tuple[str, float, float, float]) -> str:
    """A drivers cell as the explain stage writes it: (feature, value, percentile, contribution)."""
    return json.dumps(
        [
            {
                "feature": f,
                "value": v,
                "percentile": p,
                "contribution": c,
                "direction": "towards" if c > 0 else "away from",
                "stage": "x",
            }
            for f, v, p, c in items
        ]
    )


def _proba(stage: str, top: float) -> dict[str, float]:
    rest = (1 - top) / 4
    return {
        f"p_{s}": (top if s == stage else rest)
        for s in ("emerging", "growth", "mature", "decline", "renewal")
    }


def explanations_frame() -> pd.DataFrame:
    """Explanations of four clusters of REGION (footwear also in an older year) and one of
    another region, drivers as JSON text."""
    rows = [
        # an older year of footwear: only the latest year is recommended for
        (REGION, "footwear", 2023, "mature", 0.8, drivers_json(("cr4", 0.3, 70.0, 0.4))),
        (REGION, "footwear", 2024, "decline", 0.55, drivers_json(
            ("exit_rate", 0.14, 93.0, 0.9), ("rd_intensity", 0.001, 8.0, 0.5),
            ("productivity", 30.0, 20.0, -0.2))),
        (REGION, "eyeglasses", 2024, "mature", 0.85, drivers_json(
            ("hhi", 0.2, 88.0, 0.7), ("relative_wage", 0.8, 25.0, 0.3))),
        (REGION, "drones", 2024, "emerging", 0.7, drivers_json(("entry_rate", 0.2, 90.0, 0.6))),
        (REGION, "pumps", 2024, "growth", 0.75, drivers_json(("emp_cagr_3y", 0.1, 85.0, 0.5))),
        ("Other", "footwear", 2024, "growth", 0.9, drivers_json(("lq", 2.0, 90.0, 0.5))),
    ]  # fmt: skip
    return pd.DataFrame(
        [
            {"region": r, "cluster": c, "year": y, "stage": s, **_proba(s, p), "drivers": d}
            for r, c, y, s, p, d in rows
        ]
    )


def levers_frame() -> pd.DataFrame:
    """The four clusters' levers: footwear's reachable, the others not, each with its reason."""
    change = json.dumps([{"feature": "patents_per_10k", "from": 0.5, "to": 2.0}])
    return pd.DataFrame(
        {
            "region": [REGION] * 4,
            "cluster": ["footwear", "eyeglasses", "drones", "pumps"],
            "year": [2024] * 4,
            "target_stage": ["renewal", None, "growth", None],
            "reachable": [True, False, False, False],
            "changes": [change, "[]", "[]", "[]"],
            "predicted_after": ["renewal", None, None, None],
            "p_target_after": [0.52, None, None, None],
            "runner_up_after": ["decline", None, None, None],
            "p_runner_up_after": [0.31, None, None, None],
            "reason": [
                "patents_per_10k: the model then predicts renewal",
                "decline is not likely: no lever target for a mature cluster",
                "no change within P5-P95 reaches growth",
                "growth is already desirable",
            ],
        }
    )


def features_frame() -> pd.DataFrame:
    """The same feature values for each of the four clusters in 2023 and 2024."""
    values = {
        "productivity": 30.0,
        "exit_rate": 0.14,
        "entry_rate": 0.05,
        "net_entry_rate": -0.09,
        "relative_wage": 0.8,
        "export_intensity": 0.6,
        "patents_per_10k": 0.5,
        "rd_intensity": None,  # missing: instruments watching R&D cannot be measured here
        "sme_share": 0.85,
        "institutions_per_100_est": 1.5,
        "lq": 3.0,
        "emp_cagr_3y": -0.04,
        "regional_shift_rate": -0.03,
        "hhi": 0.05,
        "cr4": 0.2,
    }
    rows = []
    for cluster in ("footwear", "eyeglasses", "drones", "pumps"):
        for year in (2023, 2024):
            rows.append({"region": REGION, "cluster": cluster, "year": year, **values})
    return pd.DataFrame(rows)
