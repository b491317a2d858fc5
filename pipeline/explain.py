"""DVC stage `explain`: why each cluster of the target region sits in its stage, and what would
move it on.

Reads ``data/processed/features.parquet``, ``data/processed/labels.parquet`` and the model folder
``data/model``; the target region is ``score.region``. The comparative clusters are the training
rows: labelled rows of every other region. Writes

- ``reports/explanations.parquet``: one row per target-region cluster and year (every year;
  ``latest`` marks each cluster's latest): region, cluster, year, latest, stage, p_<stage> for
  the five stages, ``margin`` and ``base`` (the explained stage's raw margin and its expected
  value) and ``drivers``: JSON text, a list of the ``explain.top_k`` drivers, each
  {feature, value, percentile, contribution, direction, stage, runner_up, vs_runner_up} (see
  models.explain.top_drivers: vs_runner_up is the contribution to the stage's margin minus that
  to the runner-up stage's);
  the percentile is among the comparative clusters of the row's own year;
- ``reports/levers.parquet``: one row per cluster, its latest year only: region, cluster, year,
  stage, target_stage, reachable, ``changes`` (JSON text, a list of {feature, from, to,
  to_percentile, change_iqr, derived}, ``derived`` the same-year features that follow the change
  as {feature, from, to}), n_changes, cost_iqr, predicted_after, p_target_before,
  p_target_after, runner_up_after and p_runner_up_after (the best other stage after the move:
  how close the lever is to tipping back), reason (see models.levers);
- ``reports/shap/mean_abs_shap.csv`` (feature x stage mean |SHAP|) and
  ``reports/shap/beeswarm_<stage>.png``, on the comparative rows (a seeded sample of
  ``explain.global_max_rows`` where there are more).

Percentiles and lever bounds come from the comparative clusters of the same year, since nominal
levels (productivity, wages) drift over the years; where fewer than
``models.reference.MIN_YEAR_ROWS`` of them have a value, from the nearest years around it
(``models.reference.year_reference``).
Contributions are to the raw margin; the probabilities are softmax(margin / T) with the model's
temperature T. The files are then logged to the training MLflow run (``reports/mlflow_run.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import InputError
from models.bundle import PROBA_COLUMNS, StageModel
from models.dataset import training_set
from models.explain import (
    Contributions,
    beeswarm_plots,
    contributions,
    global_importance,
    runner_up_stages,
    top_drivers,
)
from models.levers import LeverResult, catalogue_levers, find_levers
from models.reference import year_reference
from pipeline import paths, tracking
from pipeline.io import read_stage_output, write_table
from pipeline.params import ExplainParams, Params, load_params

KEYS = ["region", "cluster", "year"]


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


def explain(params: Params) -> dict[str, Path]:
    """Everything the stage does, given validated params; returns the files written."""
    cfg: ExplainParams = params.explain
    region = params.score.region
    features = read_stage_output(paths.FEATURES, "features")
    labels = read_stage_output(paths.LABELS, "labels")
    model = StageModel.load(paths.MODEL_DIR)
    if "region" not in features.columns:
        raise InputError(paths.FEATURES, "expected a region column", column="region")
    rows = features[features["region"] == region]
    if rows.empty:
        raise InputError(
            paths.FEATURES, f"no rows for region {region!r} (score.region)", column="region"
        )
    reference = comparative_rows(features, labels, model, region)
    sample = reference
    if len(reference) > cfg.global_max_rows:
        rng = np.random.default_rng(cfg.seed)
        pick = np.sort(rng.choice(len(reference), size=cfg.global_max_rows, replace=False))
        sample = reference.iloc[pick]

    explanations = explanation_table(model, rows, reference, cfg.top_k)
    levers = lever_table(model, rows, reference, pair_features=cfg.lever_pair_features)
    importance = global_importance(model, sample).reset_index()

    metadata = {"clusterstage.synthetic": str(model.meta.synthetic).lower()}
    write_table(explanations, paths.EXPLANATIONS, metadata=metadata)
    write_table(levers, paths.LEVERS, metadata=metadata)
    write_table(importance, paths.MEAN_ABS_SHAP)
    plots = beeswarm_plots(
        model,
        sample,
        paths.SHAP,
        max_display=cfg.beeswarm_features,
        synthetic=model.meta.synthetic,
        seed=cfg.seed,
    )
    for stale in paths.SHAP.glob(paths.BEESWARM.format(stage="*")):
        if stale not in plots.values():
            stale.unlink()
    return {
        "explanations": paths.EXPLANATIONS,
        "levers": paths.LEVERS,
        "mean_abs_shap": paths.MEAN_ABS_SHAP,
        **{f"beeswarm_{stage}": path for stage, path in plots.items()},
    }


def _artifact_folder(path: Path) -> str:
    return "explain/shap" if path.parent == paths.SHAP else "explain"


def log_to_training_run(files: list[Path], run_file: Path = paths.MLFLOW_RUN) -> bool:
    """Add ``files`` to the training MLflow run; warn and skip when there is none."""
    return tracking.log_to_training_run(files, _artifact_folder, "explanations", run_file)


def explain_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """The DVC stage `explain`."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    written = explain(load_params(params_path))
    log_to_training_run(list(written.values()))
