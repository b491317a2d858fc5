"""Small knowledge bases and cluster cases built in tests (no project data involved)."""

from __future__ import annotations

from policy.knowledge_base import Instrument, KnowledgeBase
from policy.recommender import ClusterCase, Driver, Levers


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
