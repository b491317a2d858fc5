"""`clusterstage score`: predicted stages for the clusters of any input grain."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from features.errors import InputError
from models.bundle import StageModel
from pipeline import paths
from pipeline.io import write_table

DEFAULT_MODEL = f"models:/{paths.REGISTERED_MODEL}@champion"


def resolve_model(uri: str | None) -> StageModel:
    """A local model folder, or any MLflow model URI (models:/, runs:/, file paths of a pyfunc)."""
    uri = uri or DEFAULT_MODEL
    local = Path(uri)
    if local.is_dir() and (local / "model.json").exists():
        return StageModel.load(local)
    if local.is_dir() and (local / "artifacts" / "model_dir").is_dir():
        return StageModel.load(local / "artifacts" / "model_dir")
    import mlflow

    from pipeline.tracking import use_project_store

    use_project_store()
    try:
        root = mlflow.artifacts.download_artifacts(
            artifact_uri=uri.rstrip("/") + "/artifacts/model_dir",
            dst_path=tempfile.mkdtemp(prefix="clusterstage-model-"),
        )
    except Exception as err:  # MLflow raises several types for a URI it cannot resolve
        raise InputError(uri, f"cannot load the model ({str(err).splitlines()[0]})") from None
    return StageModel.load(root)


def score_frame(features: pd.DataFrame, model: StageModel) -> pd.DataFrame:
    """Stage and per-stage probabilities, plus how many of the model's features were missing."""
    out = model.predict_frame(features)
    X = model.matrix(features)
    out["n_missing_features"] = X.isna().sum(axis=1).to_numpy()
    return out


def score_command(
    input: Path,
    *,
    grain: str,
    out: Path,
    model: str | None,
    top_k: int,
    region: str | None,
) -> None:
    from features.build import build_features
    from features.loaders import load_input

    if Path(out).suffix.lower() not in {".parquet", ".csv", ".jsonl"}:
        raise InputError(out, "expected an output ending in .parquet, .csv or .jsonl")
    stage_model = resolve_model(model)
    features = build_features(load_input(input, grain))
    if region is not None:
        features = features[features["region"] == region]
        if features.empty:
            raise InputError(input, f"no rows for region {region!r}", column="region")
    write_table(score_frame(features, stage_model), out)
