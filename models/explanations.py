"""The explain stage's two tables, built from a model and frames: per cluster and year the stage,
its probabilities and its drivers; per cluster (its latest year) the lever to the next stage.

The comparative clusters are the model's training rows (``comparative_rows``). Where the rows and
the comparative clusters both carry a ``year``, a driver's percentile and a lever's bounds come
from the comparative clusters of the row's own year (``models.reference.year_reference``), since
nominal levels (productivity, wages) drift over the years. Drivers and levers are JSON text, so
that the tables stay flat for Parquet and spreadsheets.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.bundle import KEYS, PROBA_COLUMNS, StageModel
from models.dataset import training_set
from models.explain import Contributions, contributions, runner_up_stages, top_drivers
from models.levers import LeverResult, catalogue_levers, find_levers
from models.reference import year_reference


def _json(value: object) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def latest_flags(rows: pd.DataFrame) -> np.ndarray:
    """True on each cluster's latest year."""
    latest = rows.groupby(["region", "cluster"], sort=False)["year"].transform("max")
    return (rows["year"] == latest).to_numpy()


def _by_year(rows: pd.DataFrame, reference_X: pd.DataFrame) -> bool:
    """Whether both carry a year, so that each row is compared with its own year's clusters."""
    return "year" in rows.columns and "year" in reference_X.columns


def _part(contribs: Contributions, at: np.ndarray) -> Contributions:
    return Contributions(
        contribs.values[at], contribs.base[at], contribs.stage[at], contribs.features
    )


def _drivers(
    contribs: Contributions,
    rows: pd.DataFrame,
    reference_X: pd.DataFrame,
    top_k: int,
    versus: Contributions | None = None,
) -> list[list[dict[str, object]]]:
    if not _by_year(rows, reference_X):
        return top_drivers(contribs, rows, reference_X, k=top_k, versus=versus)
    features = reference_X.drop(columns="year")
    ref_years = reference_X["year"].to_numpy()
    out: list[list[dict[str, object]]] = [[] for _ in range(len(rows))]
    for year, at in rows.groupby("year", sort=False).indices.items():
        ref = year_reference(features, ref_years, year)
        found = top_drivers(
            _part(contribs, at),
            rows.iloc[at],
            ref,
            k=top_k,
            versus=_part(versus, at) if versus is not None else None,
        )
        for i, d in zip(at, found, strict=True):
            out[i] = d
    return out


def explanation_table(
    model: StageModel, rows: pd.DataFrame, reference_X: pd.DataFrame, top_k: int
) -> pd.DataFrame:
    """Keys, latest flag, stage, probabilities, margin, base and the drivers as JSON text.

    Where ``rows`` and ``reference_X`` both have a ``year`` column, each row's percentiles are
    among the comparative clusters of its year (``models.reference.year_reference``)."""
    rows = rows.reset_index(drop=True)
    scored = model.predict_frame(rows)
    contribs = contributions(model, rows)
    # A driver's pull is also told against the runner-up stage: the softmax weighs margins
    # against each other, so one stage's margin alone can point the wrong way.
    runner_up = runner_up_stages(model, rows)
    versus = contributions(model, rows, runner_up) if runner_up is not None else None
    drivers = _drivers(contribs, rows, reference_X, top_k, versus)
    out = rows[KEYS].copy()
    out["latest"] = latest_flags(rows)
    out["stage"] = contribs.stage_name.astype(str)
    for col in PROBA_COLUMNS:
        out[col] = scored[col].to_numpy()
    out["margin"] = contribs.margin
    out["base"] = contribs.base
    out["drivers"] = [_json(d) for d in drivers]
    return out


def _changes(result: LeverResult) -> list[dict[str, object]]:
    return [
        {
            "feature": c.feature,
            "from": c.from_value,
            "to": c.to_value,
            "to_percentile": round(100 * q, 1),
            "change_iqr": cost,
            "derived": [{"feature": d.feature, "from": d.from_value, "to": d.to_value} for d in ds],
        }
        for c, q, cost, ds in zip(
            result.changes, result.to_quantiles, result.change_costs, result.derived, strict=True
        )
    ]


def lever_table(
    model: StageModel,
    rows: pd.DataFrame,
    reference_X: pd.DataFrame,
    *,
    pair_features: int,
    actionable: dict[str, int | None] | None = None,
) -> pd.DataFrame:
    """One row per cluster (its latest year): the lever found, or why there is none.

    Where ``rows`` and ``reference_X`` both have a ``year`` column, the levers are bounded by the
    comparative clusters of the row's year (``models.levers.find_levers``)."""
    rows = rows[latest_flags(rows)].reset_index(drop=True)
    levers = actionable if actionable is not None else catalogue_levers()
    years = (
        {"years": rows["year"].to_numpy(), "reference_years": reference_X["year"].to_numpy()}
        if _by_year(rows, reference_X)
        else {}
    )
    results = find_levers(
        model, rows, reference_X, list(levers), levers, pair_features=pair_features, **years
    )
    out = rows[KEYS].copy()
    out["stage"] = [r.stage for r in results]
    out["target_stage"] = pd.array([r.target_stage for r in results], dtype="string")
    out["reachable"] = [r.reachable for r in results]
    out["changes"] = [_json(_changes(r)) for r in results]
    out["n_changes"] = [len(r.changes) for r in results]
    out["cost_iqr"] = pd.array([r.cost for r in results], dtype="Float64")
    out["predicted_after"] = pd.array([r.predicted_after for r in results], dtype="string")
    out["p_target_before"] = pd.array([r.p_target_before for r in results], dtype="Float64")
    out["p_target_after"] = pd.array([r.p_target_after for r in results], dtype="Float64")
    out["runner_up_after"] = pd.array([r.runner_up_after for r in results], dtype="string")
    out["p_runner_up_after"] = pd.array([r.p_runner_up_after for r in results], dtype="Float64")
    out["reason"] = [r.reason for r in results]
    return out


def comparative_rows(
    features: pd.DataFrame, labels: pd.DataFrame, model: StageModel, region: str
) -> pd.DataFrame:
    """The training rows: labelled rows of every region but the target, as the model's matrix
    with their ``year`` (a last column, which ``model.matrix`` drops again), so that a cluster is
    compared with the clusters of its own year."""
    present = [f for f in model.meta.features if f in features.columns]
    data = training_set(features, labels, present, exclude_regions=[region])
    out = model.matrix(data.X)
    out["year"] = data.keys["year"].to_numpy()
    return out
