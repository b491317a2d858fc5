"""MLflow at the edge: the project's SQLite store, its experiment, the registry and the gate."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from features.errors import InputError
from models.registry import Champion, champion_decision
from pipeline import paths
from pipeline.io import warn

CHAMPION = "champion"


def store_path() -> Path:
    """The SQLite file of the project's tracking store (``mlflow.db`` in the project root)."""
    return Path(paths.TRACKING_URI.removeprefix("sqlite:///")).resolve()


def require_store() -> Path:
    """The store's file, or an InputError when there is none here: reading a registry that
    does not exist must not leave a new, empty mlflow.db behind in whatever folder this is."""
    db = store_path()
    if not db.is_file():
        raise InputError(
            db,
            "no MLflow tracking store here; expected the project folder (where params.yaml "
            "is) after a `clusterstage run`",
        )
    return db


def use_project_store() -> str:
    """Use sqlite:///mlflow.db with artifacts under ./mlruns, and make the project's experiment
    the active one (runs would otherwise land in MLflow's "Default"); return its id."""
    # Absolute: MLflow caches stores by URI, so a relative one keeps the first cwd's database.
    uri = "sqlite:///" + str(store_path())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(paths.EXPERIMENT)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            paths.EXPERIMENT, artifact_location=paths.ARTIFACT_ROOT.resolve().as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_revision() -> dict[str, str]:
    """The commit and whether the working tree had uncommitted changes."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


def dvc_experiment() -> dict[str, str]:
    """The DVC experiment this run belongs to (``dvc exp run`` names it in DVC_EXP_NAME), so
    that a row of `dvc exp show` and its MLflow run can be matched; empty under `dvc repro`."""
    name = os.environ.get("DVC_EXP_NAME", "").strip()
    return {"dvc_experiment": name} if name else {}


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of a frame (values and column names), stable across runs."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def labelled_rows_hash(keys: pd.DataFrame, y: np.ndarray) -> str:
    """The hash of the labelled rows a model is cross-validated on: keys and stage ids, in key
    order. Two cross-validated macro-F1 compare like for like only when this is equal."""
    rows = keys.reset_index(drop=True).assign(stage=np.asarray(y, dtype=int))
    return frame_hash(rows.sort_values(list(keys.columns), kind="stable").reset_index(drop=True))


def current_champion(client: MlflowClient, name: str) -> Champion | None:
    """What the version under the `champion` alias recorded (tags set by ``register_and_gate``)."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    value = version.tags.get("cv_macro_f1")
    return Champion(
        version=str(version.version),
        macro_f1=float(value) if value is not None else None,
        data_hash=version.tags.get("cv_data_hash"),
    )


def register_and_gate(
    model_uri: str,
    macro_f1: float,
    gate: float,
    data_hash: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, object]:
    """Register a new version; move `champion` to it only if the gate says so.

    ``data_hash`` (``labelled_rows_hash``) names the rows the macro-F1 was cross-validated on,
    so that the reason can say whether the comparison with the champion was like for like;
    ``tags`` go on the version (what it learned from). Returns the record for
    ``reports/mlflow_run.json``, with ``champion_moved`` a real boolean (``run_tags`` gives the
    same as MLflow tag strings); a version that does not become champion is named in the reason.
    """
    client = MlflowClient()
    name = paths.REGISTERED_MODEL
    champion = current_champion(client, name)
    version = mlflow.register_model(model_uri, name)
    # full precision: a rounded tag would make an equally good model look worse
    client.set_model_version_tag(name, version.version, "cv_macro_f1", repr(float(macro_f1)))
    if data_hash is not None:
        client.set_model_version_tag(name, version.version, "cv_data_hash", data_hash)
    for key, value in (tags or {}).items():  # what the version learned from, for the UI
        client.set_model_version_tag(name, version.version, key, value)
    move, reason = champion_decision(macro_f1, gate, champion, data_hash)
    if move:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    else:
        reason += (
            f"; score with this version by naming it: --model models:/{name}/{version.version}"
        )
    record: dict[str, object] = {
        "registered_version": str(version.version),
        "champion_moved": move,
        "champion_reason": reason,
    }
    # on the run as well, so that the MLflow UI shows which runs a macro-F1 compares with
    return record | ({"cv_data_hash": data_hash} if data_hash is not None else {})


def run_tags(record: dict[str, object]) -> dict[str, str]:
    """A record as MLflow run tags: booleans as "true"/"false" like the project's other tags
    (MLflow itself would write str(True) = "True")."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in record.items()}


def artifact_file(path: Path, artifact_path: str | None = None) -> None:
    if path.exists():
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_to_training_run(
    files: Iterable[Path],
    artifact_path: str | Callable[[Path], str],
    what: str,
    run_file: Path = paths.MLFLOW_RUN,
) -> bool:
    """Add files to the MLflow run the train stage recorded in ``run_file``, so that one pipeline
    run stays one MLflow run. Without that record, warn and skip (returns False)."""
    if not run_file.exists():
        warn(f"{run_file} not found; {what} not logged to MLflow")
        return False
    try:
        run_id = str(json.loads(run_file.read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        warn(f"{run_file}: expected JSON with a run_id; {what} not logged to MLflow")
        return False
    use_project_store()
    try:
        with mlflow.start_run(run_id=run_id):
            for path in files:
                where = artifact_path(path) if callable(artifact_path) else artifact_path
                mlflow.log_artifact(str(path), artifact_path=where)
    except mlflow.exceptions.MlflowException as err:
        warn(f"cannot log to MLflow run {run_id} ({str(err).splitlines()[0]})")
        return False
    return True
