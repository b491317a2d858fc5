"""params.yaml as typed, validated settings, loaded once at the edge; libraries get plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline import paths


class ParamsError(ValueError):
    """params.yaml is unreadable or invalid. The CLI prints it as one line and exits 2."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateParams(_Section):
    seed: int = 20240601
    scale: float = Field(1.0, gt=0)


class DataParams(_Section):
    # The folder holding the inputs: the DVC stage `ingest` depends on it as a whole, so that
    # editing any input (or adding labels) re-runs the pipeline from there.
    dir: str = str(paths.REFERENCE)
    grain: Literal["panel", "firms", "cmp"] = "panel"
    path: str = str(paths.REFERENCE / "panel.parquet")
    labels: str | None = str(paths.REFERENCE / "labels.csv")
    # True stages of the target region, used only to report the transfer score.
    target_labels: str | None = str(paths.REFERENCE / "target_labels.csv")
    synthetic: bool = True
    columns: dict[str, str | None] = Field(default_factory=dict)
    total_label: str = "Insgesamt"
    region_totals: str | None = None

    @model_validator(mode="after")
    def _inputs_inside_dir(self) -> DataParams:
        root = Path(self.dir).resolve()
        for key in ("path", "labels", "target_labels", "region_totals"):
            value = getattr(self, key)
            if value is not None and not Path(value).resolve().is_relative_to(root):
                raise ValueError(f"data.{key} ({value}) must lie inside data.dir ({self.dir})")
        return self


class TrainParams(_Section):
    seed: int = 7
    n_estimators: int = Field(300, ge=1)
    max_depth: int = Field(4, ge=1, le=16)
    learning_rate: float = Field(0.08, gt=0, le=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    tuning_budget: int = Field(6, ge=0)  # random-search configurations per training fold
    inner_folds: int = Field(3, ge=2)  # region-grouped folds for tuning and calibration
    calibrate: bool = True  # temperature scaling, kept only where it lowers the ECE
    champion_gate: float = Field(0.5, ge=0, le=1)  # least CV macro-F1 for the champion alias
    features: list[str] | None = None  # None: every feature of the catalogue


class ScoreParams(_Section):
    region: str = "Wenzhou-like"


class QuadrantParams(_Section):
    lq_split: float = Field(1.0, gt=0)
    growth_split: float = 0.0
    decline_threshold: float = Field(0.02, ge=0)
    growth_columns: list[str] = Field(
        default_factory=lambda: ["regional_shift_rate", "growth_vs_national_3y", "emp_cagr_3y"],
        min_length=1,
    )


class TrajectoryParams(_Section):
    pass


class LabelsParams(_Section):
    source: Literal["expert", "quadrant", "trajectory"] = "expert"
    quadrant: QuadrantParams = Field(default_factory=QuadrantParams)
    trajectory: TrajectoryParams = Field(default_factory=TrajectoryParams)


class Params(_Section):
    generate: GenerateParams = Field(default_factory=GenerateParams)
    data: DataParams = Field(default_factory=DataParams)
    labels: LabelsParams = Field(default_factory=LabelsParams)
    train: TrainParams = Field(default_factory=TrainParams)
    score: ScoreParams = Field(default_factory=ScoreParams)


def _describe(err: ValidationError, source: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    if first["type"] == "value_error":
        return f"{source}: key '{key}': {first['msg'].removeprefix('Value error, ')}"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'"
    value = first.get("input")
    return f"{source}: key '{key}': {first['msg']} (got {value!r})"


def parse_params(raw: object, source: Path = paths.PARAMS) -> Params:
    """Validate an already-parsed params mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_describe(err, source)) from None


def load_params(path: str | Path = paths.PARAMS) -> Params:
    """Read and validate params.yaml (safe_load only)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ParamsError(f"{path}: cannot read ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_params(raw, path)


def flatten(params: Params) -> dict[str, object]:
    """Dotted keys for MLflow: {'train.max_depth': 4, ...}."""
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", params.model_dump())
    return out
