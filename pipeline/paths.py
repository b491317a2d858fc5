"""Every default path of the project, defined once. Relative to the project root (the cwd)."""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")
DATA = Path("data")
RAW = DATA / "raw"
REFERENCE = RAW / "reference"
INTERIM = DATA / "interim"
PROCESSED = DATA / "processed"
MODEL_DIR = DATA / "model"
REPORTS = Path("reports")

INGESTED_PANEL = INTERIM / "panel.parquet"
INGESTED_LABELS = INTERIM / "labels.parquet"
INGESTED_TARGET_LABELS = INTERIM / "target_labels.parquet"
FEATURES = PROCESSED / "features.parquet"
LABELS = PROCESSED / "labels.parquet"
MLFLOW_RUN = REPORTS / "mlflow_run.json"  # the run that later stages add their artifacts to

TRACKING_URI = "sqlite:///mlflow.db"
ARTIFACT_ROOT = Path("mlruns")
EXPERIMENT = "clusterstage"
REGISTERED_MODEL = "clusterstage"
