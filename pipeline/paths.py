"""Every default path of the project, defined once. Relative to the project root (the cwd)."""

from __future__ import annotations

from pathlib import Path

from models.bundle_files import BOOSTER_FILE, META_FILE, YEAR_QUANTILES_FILE

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
MODEL_META = MODEL_DIR / META_FILE
METRICS = REPORTS / "metrics.json"
PER_REGION = REPORTS / "per_region.csv"
MLFLOW_RUN = REPORTS / "mlflow_run.json"  # the run that later stages add their artifacts to
EXPLANATIONS = REPORTS / "explanations.parquet"
LEVERS = REPORTS / "levers.parquet"
SHAP = REPORTS / "shap"
MEAN_ABS_SHAP = SHAP / "mean_abs_shap.csv"
BEESWARM = "beeswarm_{stage}.png"  # one per stage, in SHAP
RECOMMENDATIONS = REPORTS / "recommendations.jsonl"
PORTFOLIO = REPORTS / "portfolio.json"

# Folders that a stage of dvc.yaml has as a whole output, with the stage and the files it writes
# there (shell patterns). DVC deletes such a folder before the stage runs, or when it checks the
# stage's outputs out of its cache, so a file of anyone else's there would be lost.
STAGE_FOLDERS: dict[Path, tuple[str, tuple[str, ...]]] = {
    REFERENCE: (
        "generate",
        ("firms.parquet", "panel.parquet", "labels.csv", "target_labels.csv", "world.json"),
    ),
    MODEL_DIR: ("train", (META_FILE, BOOSTER_FILE, YEAR_QUANTILES_FILE)),
    SHAP: ("explain", (MEAN_ABS_SHAP.name, BEESWARM.format(stage="*"))),
}
# What pipeline.io.atomic_path names a file while it is written (left behind by a killed write).
PARTIAL_WRITE = ".*.tmp"
# Folders of the pipeline's own outputs: data.dir may neither be nor hold one of them.
OUTPUT_FOLDERS = (INTERIM, PROCESSED, MODEL_DIR, REPORTS)

TRACKING_URI = "sqlite:///mlflow.db"
ARTIFACT_ROOT = Path("mlruns")
EXPERIMENT = "clusterstage"
REGISTERED_MODEL = "clusterstage"
