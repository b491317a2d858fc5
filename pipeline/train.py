"""DVC stage `train`: leave-one-region-out evaluation of the model and its baselines, the final
fit, the transfer test on the target region, reports, and one MLflow run."""

from __future__ import annotations

import json
from dataclasses import fields
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import InputError
from features.labellers.quadrant import quadrant_labels
from features.stages import STAGE_ID, STAGES
from models.bundle import (
    ModelMeta,
    StageModel,
    feature_quantiles,
    feature_ranges,
    year_quantiles,
)
from models.cv import CVResult, leave_one_region_out
from models.dataset import NO_MATCH, model_features, row_counts, training_set
from models.defaults import XGBSettings
from models.estimators import (
    RuleBaseline,
    StageClassifier,
    forest_baseline,
    logistic_baseline,
    majority_baseline,
)
from models.metrics import (
    confusion,
    confusion_counts,
    macro_f1_lead,
    per_region,
    stage_metrics,
)
from models.scoring import change_known
from pipeline import paths
from pipeline.io import atomic_outputs, atomic_path, check_outputs, write_table, writing
from pipeline.params import Params, QuadrantParams, TrainParams, flatten, load_params

MAIN = "xgboost"
CONFUSION = paths.REPORTS / "confusion.csv"
PLOTS = paths.REPORTS / "plots"
OOF = PLOTS / "cv_predictions.csv"
FOLDS = PLOTS / "cv_folds.csv"
TUNING = paths.REPORTS / "tuning.csv"
# The report files, replaced together with the model folder (atomic_outputs) before the MLflow run
# logs them; reports/mlflow_run.json, which names that run, is written at its end.
REPORT_FILES = (paths.METRICS, TUNING, paths.PER_REGION, CONFUSION, OOF, FOLDS)


def quadrant_rule(X: pd.DataFrame, settings: QuadrantParams | None = None) -> np.ndarray:
    """The LQ x growth quadrant, with the thresholds of ``labels.quadrant``, as stage ids; rows
    it cannot place get the 'mature' default."""
    keyed = X.assign(region="", cluster="", year=np.arange(len(X)))
    labelled = quadrant_labels(keyed, **(settings or QuadrantParams()).model_dump())
    stages = np.full(len(X), STAGE_ID["mature"])
    stages[labelled["year"].to_numpy()] = labelled["stage"].map(STAGE_ID).to_numpy()
    return stages


def stage_classifier(p: TrainParams) -> StageClassifier:
    """The main model with train's settings: every setting it shares with the library's defaults
    (models/defaults.py), so a new one reaches the model without a line here."""
    return StageClassifier(**p.model_dump(include={f.name for f in fields(XGBSettings)}))


def model_factories(p: TrainParams, quadrant: QuadrantParams | None = None) -> dict:
    return {
        MAIN: lambda: stage_classifier(p),
        "logistic_regression": lambda: logistic_baseline(p.seed),
        "random_forest": lambda: forest_baseline(p.seed),
        "quadrant": lambda: RuleBaseline(partial(quadrant_rule, settings=quadrant)),
        "majority": majority_baseline,
    }


def summarise(
    results: dict[str, CVResult],
    y: np.ndarray,
    regions: np.ndarray,
    n_boot: int = 0,
    seed: int = 0,
) -> dict[str, object]:
    """metrics.json: the main model under `model`, the others under `baselines.<name>`, each
    with its per-region scores and confusion matrix, and under `lead.<name>` the main model's
    macro-F1 lead over each with its region-bootstrap interval."""
    scored = {name: _model_metrics(y, r.proba, regions) for name, r in results.items()}
    main = results[MAIN].proba
    return {
        "model": scored[MAIN],
        "baselines": {k: v for k, v in scored.items() if k != MAIN},
        "lead": {
            name: macro_f1_lead(y, main, r.proba, regions, n_boot=n_boot, seed=seed)
            for name, r in results.items()
            if name != MAIN
        },
    }


def _model_metrics(y: np.ndarray, proba: np.ndarray, regions: np.ndarray) -> dict[str, object]:
    table = per_region(regions, y, proba)
    return {
        **stage_metrics(y, proba),
        # a user scores one region at a time, and pooled bins can hide a model over-confident
        # in some regions and under-confident in others
        "ece_region_mean": float(table["ece"].mean()),
        "ece_region_max": float(table["ece"].max()),
        "per_region": {
            str(r["region"]): {k: v for k, v in r.items() if k != "region"}
            for r in table.to_dict("records")
        },
        "confusion": confusion_counts(y, proba.argmax(axis=1)),
    }


def label_notes(source: str) -> dict[str, object]:
    """Which labels the metrics measure agreement with, and which baselines apply the very rule
    that made them: such a baseline's score measures the rule against itself, not skill."""
    return {
        "source": source,
        "baselines_scored_on_own_rule": ["quadrant"] if source == "quadrant" else [],
    }


def tuning_table(result: CVResult, final: object) -> pd.DataFrame:
    """Every setting the nested search tried: one row per fit (``held_out`` region, or
    "(final)" for the model fitted on every region) and candidate (0: params.yaml's settings),
    with its inner macro-F1 (empty where nothing competed) and whether it won."""
    held_out = [str(fold["region"]) for fold in result.folds]
    fits = list(zip(held_out, result.tuning, strict=True))
    fits.append(("(final)", list(getattr(final, "tuning_", []))))
    rows = []
    for held_out, tried in fits:
        scores = np.nan_to_num([t["inner_macro_f1"] for t in tried], nan=-np.inf)
        for i, setting in enumerate(tried):
            won = i == int(np.argmax(scores))
            rows.append({"held_out": held_out, "candidate": i, **setting, "chosen": won})
    return pd.DataFrame(rows)


def _plain(value: object) -> int | float:
    # A setting keeps its kind: max_depth 6 is no 6.0, which reads as a fraction of a level.
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, int) and not isinstance(value, bool) else float(value)


def calibration_summary(final: object) -> dict[str, object]:
    """For metrics.json: the fitted temperature with the ECE before and after it (the estimator's
    ``calibration_``), and whether the model applies it."""
    # A copy: the fitted estimator's own record must not gain the report's key.
    summary = dict(getattr(final, "calibration_", {}))
    summary["applied"] = final.temperature_ != 1.0  # type: ignore[attr-defined]
    return summary


def tuning_summary(table: pd.DataFrame, final: object) -> dict[str, object]:
    """For metrics.json: the settings the final model uses, and how often params.yaml's own
    settings won (a variant of a tuned param can end in the same model when a draw wins)."""
    chosen = table[table["chosen"]]  # one row per fit: every fit records the setting it used
    is_final = chosen["held_out"] == "(final)"
    return {
        "final": {k: _plain(v) for k, v in getattr(final, "best_params_", {}).items()},
        "final_is_configured": bool((chosen.loc[is_final, "candidate"] == 0).all()),
        "folds_configured_won": int((chosen.loc[~is_final, "candidate"] == 0).sum()),
        "folds": int((~is_final).sum()),
    }


def train(params: Params) -> dict[str, object]:
    """Everything the stage does, given validated params. Returns the metrics written."""
    import mlflow
    from rich.console import Console

    from pipeline import tracking

    console = Console(stderr=True, quiet=not Console(stderr=True).is_terminal)
    p = params.train
    # before the work, not after it
    check_outputs([*REPORT_FILES, paths.MLFLOW_RUN], [paths.MODEL_DIR])
    features = pd.read_parquet(paths.FEATURES)
    labels = pd.read_parquet(paths.LABELS)
    from features.build import FEATURE_NAMES
    from features.lags import lag_columns

    candidates = p.features or [*FEATURE_NAMES, *lag_columns(features.columns)]
    names = model_features(features, candidates)
    target = params.score.region
    # Rows without any change over time known (the first year of each history) are neither
    # learned from nor judged: `score` gives them no stage, so the metrics describe the rows the
    # tool stages.
    change = change_known(features)
    changing = features[change]
    rows = row_counts(features, change, labels, exclude_regions=[target])
    try:
        data = training_set(changing, labels, names, exclude_regions=[target])
    except InputError as err:
        if err.file is not None:
            raise
        message = err.message
        if message.startswith(NO_MATCH) and len(changing) < len(features):
            message = (
                "no labelled row has a year-on-year change known (the first year of each "
                "history is left out, as `score` gives it no stage); expected labels for "
                "clusters with at least two consecutive years"
            )
        raise InputError(paths.LABELS, message, column=err.column, row=err.row) from None

    console.log(
        f"leave-one-region-out over {len(set(data.regions))} regions, {len(names)} features"
    )
    if rows["unlabelled"]:
        console.log(
            f"{rows['unlabelled']} of {rows['comparative']} comparative rows have no label and "
            "are left out (metrics.json: rows)"
        )
    results = leave_one_region_out(
        data.X,
        data.y,
        data.regions,
        model_factories(p, params.labels.quadrant),
        n_jobs=p.n_jobs,
        refit=MAIN,
    )
    metrics = summarise(results, data.y, data.regions, n_boot=p.bootstrap, seed=p.seed)
    metrics["rows"] = rows
    metrics["labels"] = label_notes(params.labels.source)
    main = results[MAIN]

    final = main.refitted
    model = StageModel(
        final.booster,
        ModelMeta(
            features=names,
            classes=[int(c) for c in final.classes_],
            temperature=float(final.temperature_),
            params={**final.get_params(), **final.best_params_},
            ranges=feature_ranges(data.X),
            quantiles=feature_quantiles(data.X),
            year_quantiles=year_quantiles(data.X, data.keys["year"].to_numpy()),
            max_missing=int(data.X.isna().sum(axis=1).max()),
            training_regions=sorted(set(data.regions)),
            synthetic=params.data.synthetic,
            metrics={"cv_macro_f1": metrics["model"]["macro_f1"]},
        ),
    )
    metrics["calibration"] = calibration_summary(final)

    truth = pd.read_parquet(paths.INGESTED_TARGET_LABELS)
    target_rows = changing[changing["region"] == target]
    if not truth.empty and not target_rows.empty:
        joined = target_rows.merge(
            truth[["region", "cluster", "year", "stage"]], on=["region", "cluster", "year"]
        )
        if not joined.empty:
            y_t = joined["stage"].map(STAGE_ID).to_numpy(dtype=int)
            metrics["transfer"] = {
                "region": target,
                **stage_metrics(y_t, model.predict_proba(joined)),
            }

    tuning = tuning_table(main, final)
    metrics["tuning"] = tuning_summary(tuning, final)
    _write_outputs(metrics, data, main, tuning, model)

    tracking.use_project_store()
    with mlflow.start_run(run_name=f"train {target}") as run:
        mlflow.log_params(flatten(params))
        # what the final model really uses: a draw of the nested search can replace params.yaml's
        mlflow.log_params({f"tuned.{k}": v for k, v in final.best_params_.items()})
        trained_on = pd.concat([data.keys, data.X], axis=1).assign(stage=data.y)
        mlflow.set_tags(
            {
                **tracking.git_revision(),
                **tracking.dvc_experiment(),
                "training_data_hash": tracking.frame_hash(trained_on),
                "synthetic_data": str(params.data.synthetic).lower(),
                "feature_count": str(len(names)),
            }
        )
        for name, result in results.items():
            for step, fold in enumerate(result.folds):
                mlflow.log_metrics(
                    {
                        f"fold.{name}.{k}": float(v)
                        for k, v in fold.items()
                        if k != "region" and v is not None  # a rule's log loss is None
                    },
                    step=step,
                )
        mlflow.log_metrics(_flat_metrics(metrics))
        for path in (paths.METRICS, paths.PER_REGION, CONFUSION, TUNING, OOF, FOLDS):
            tracking.artifact_file(path, "reports")
        info = _log_pyfunc(model, data.X)
        record = tracking.register_and_gate(
            info.model_uri,
            metrics["model"]["macro_f1"],
            p.champion_gate,
            data_hash=tracking.labelled_rows_hash(data.keys, data.y),
            tags={
                "label_source": params.labels.source,
                "synthetic_data": str(params.data.synthetic).lower(),
                "data_path": str(params.data.path),
            },
        )
        mlflow.set_tags(tracking.run_tags(record))
        console.log(f"MLflow run {run.info.run_id}: {record['champion_reason']}")
        with atomic_path(paths.MLFLOW_RUN) as tmp:
            run_ids = {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id}
            tmp.write_text(json.dumps({**run_ids, **record}, indent=2), encoding="utf-8")
    return metrics


def _flat_metrics(metrics: dict[str, object]) -> dict[str, float]:
    """The scalar metrics for MLflow; per-region tables and confusion matrices go as artifacts
    (metrics.json, per_region.csv, confusion.csv) and per-fold metrics by step."""
    flat: dict[str, float] = {}

    def walk(prefix: str, value: object) -> None:
        if prefix.rsplit(".", 1)[-1] in ("per_region", "confusion"):
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, bool | int | float) and np.isfinite(float(value)):
            flat[prefix] = float(value)

    walk("", {k: v for k, v in metrics.items()})
    return flat


def _write_outputs(
    metrics: dict[str, object], data, main: CVResult, tuning: pd.DataFrame, model: StageModel
) -> None:
    """The report files and the model folder, moved into place together once all are written."""
    pred = main.proba.argmax(axis=1)
    oof = data.keys.assign(
        actual=np.asarray(STAGES, dtype=object)[data.y],
        predicted=np.asarray(STAGES, dtype=object)[pred],
    )
    text = json.dumps(metrics, indent=2, default=float)
    with atomic_outputs(REPORT_FILES, [paths.MODEL_DIR]) as staged:
        with writing(paths.METRICS):
            staged[paths.METRICS].write_text(text, encoding="utf-8")
        write_table(tuning, staged[TUNING])
        write_table(per_region(data.regions, data.y, main.proba), staged[paths.PER_REGION])
        write_table(confusion(data.y, pred).reset_index(), staged[CONFUSION])
        write_table(oof, staged[OOF])
        write_table(pd.DataFrame(main.folds), staged[FOLDS])
        with writing(paths.MODEL_DIR):
            model.save(staged[paths.MODEL_DIR])


def _log_pyfunc(model: StageModel, X: pd.DataFrame):
    """Log the model folder as the pyfunc that scores panel rows (pipeline.model_logging.log_model);
    the input example is panel rows of the ingested input: the whole history of two clusters of
    one region, as the pyfunc asks to be sent (lags and multi-year growth need earlier years)."""
    from pipeline.model_logging import log_model

    return log_model(paths.MODEL_DIR, _panel_example())


def _panel_example(n_clusters: int = 2) -> pd.DataFrame | None:
    if not paths.INGESTED_PANEL.exists():
        return None
    panel = pd.read_parquet(paths.INGESTED_PANEL)
    if panel.empty:
        return None
    rows = panel[panel["region"] == panel["region"].iloc[0]]
    rows = rows[rows["cluster"].isin(rows["cluster"].drop_duplicates().head(n_clusters))]
    rows = rows.sort_values(["region", "cluster", "year"]).reset_index(drop=True)
    rows.attrs = {}
    return rows


def train_from_params(params_path: str | Path) -> None:
    train(load_params(params_path))
