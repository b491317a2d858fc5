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
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pipeline import paths, tracking
from pipeline.io import atomic_outputs, atomic_path, check_outputs, read_stage_output, writing
from pipeline.params import Params, load_params
from policy.cases import cluster_cases
from policy.knowledge_base import KnowledgeBase, load_knowledge_base, render_markdown
from policy.records import json_safe, recommend_region

# The files the frames come from, for error messages.
SOURCES = {"explanations": paths.EXPLANATIONS, "levers": paths.LEVERS, "features": paths.FEATURES}


def recommend(
    params: Params,
    explanations: pd.DataFrame,
    levers: pd.DataFrame | None,
    features: pd.DataFrame,
    kb: KnowledgeBase,
    region: str | None = None,
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The JSONL records and the portfolio summary of ``region`` (default: the target region,
    params.yaml score.region), with no I/O."""
    cfg = params.recommend
    region = params.score.region if region is None else region
    cases = cluster_cases(explanations, levers, features, region, sources=SOURCES)
    return recommend_region(
        region,
        cases,
        kb,
        k=cfg.k,
        scoring=cfg.scoring(),
        guards=cfg.guard_config(),
        synthetic=params.data.synthetic,
    )


# Both outputs, replaced together (atomic_outputs).
OUTPUTS = (paths.RECOMMENDATIONS, paths.PORTFOLIO)


def write_outputs(records: list[dict[str, object]], summary: dict[str, object]) -> None:
    """Both files, moved into place together only once both are written; serialised first so a
    bad value leaves neither behind."""
    lines = "".join(f"{json.dumps(r, ensure_ascii=False, allow_nan=False)}\n" for r in records)
    text = json.dumps(json_safe(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_outputs(OUTPUTS) as staged:
        for target, content in zip(OUTPUTS, (lines, text), strict=True):
            with writing(target):
                staged[target].write_text(content, encoding="utf-8")


def log_to_training_run(files: Iterable[Path], run_file: Path = paths.MLFLOW_RUN) -> bool:
    """Add ``files`` to the training MLflow run; warn and skip when there is none."""
    return tracking.log_to_training_run(files, "policy", "recommendations", run_file)


def recommend_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """The DVC stage: read the explain stage's outputs and the features, write the policy."""
    params = load_params(params_path)
    check_outputs(OUTPUTS)  # before the work, not after it
    explanations = read_stage_output(paths.EXPLANATIONS, "explanations")
    levers = read_stage_output(paths.LEVERS, "levers")
    features = read_stage_output(paths.FEATURES, "features")
    kb = load_knowledge_base(params.recommend.knowledge_base)
    records, summary = recommend(params, explanations, levers, features, kb)
    write_outputs(records, summary)
    log_to_training_run([paths.RECOMMENDATIONS, paths.PORTFOLIO])


def instruments_command(out: Path) -> None:
    """Write the packaged knowledge base as Markdown (docs/policy.md)."""
    text = render_markdown(load_knowledge_base())
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
