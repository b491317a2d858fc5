"""params.yaml as typed, validated settings, loaded once at the edge; libraries get plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from features.lags import DEFAULT_LAGGED, DEFAULT_LAGS
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


class FeaturesParams(_Section):
    # A US Cluster Mapping related_clusters.json for relatedness density; null: co-location in
    # the data itself. Its measure: see features/indicators/linkages.py.
    relatedness: str | None = None
    relatedness_measure: Literal[
        "cr_lc", "cr_lcemp", "cr_lcest", "cr_io", "cr_occ", "rel_all_90_v3"
    ] = "cr_lc"
    # Lagged copies (features/lags.py): years 1..lags of each feature in `lagged`.
    lags: int = Field(DEFAULT_LAGS, ge=0, le=10)
    lagged: list[str] = Field(default_factory=lambda: list(DEFAULT_LAGGED))

    @model_validator(mode="after")
    def _lagged_are_features(self) -> FeaturesParams:
        from features.catalogue import FEATURES

        for name in self.lagged:
            if name not in FEATURES:
                raise ValueError(f"features.lagged: {name!r} is not a feature of the catalogue")
        return self


class TrainParams(_Section):
    seed: int = 7
    n_estimators: int = Field(200, ge=1)
    max_depth: int = Field(4, ge=1, le=16)
    learning_rate: float = Field(0.08, gt=0, le=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    tuning_budget: int = Field(2, ge=0)  # random draws scored beside the configured settings
    inner_folds: int = Field(3, ge=2)  # region-grouped folds for tuning and calibration
    calibrate: bool = True  # temperature scaling, kept only where it lowers the ECE
    champion_gate: float = Field(0.5, ge=0, le=1)  # least CV macro-F1 for the champion alias
    bootstrap: int = Field(1000, ge=0)  # region resamples behind the lead's interval; 0: none
    features: list[str] | None = None  # None: every feature of the catalogue
    n_jobs: int = Field(2, ge=1)  # folds fitted in parallel; results do not depend on it


class ScoreParams(_Section):
    region: str = Field("Wenzhou-like", min_length=1)

    @field_validator("region")
    @classmethod
    def _safe_in_dvc_yaml(cls, region: str) -> str:
        # dvc.yaml puts the region into two shell commands and a file name: these characters
        # would end the quoting, run a command or leave the reports folder.
        bad = sorted({c for c in region if c in '"$`\\/' or ord(c) < 32})
        if bad:
            shown = " ".join(repr(c) for c in bad)
            raise ValueError(f"must not contain {shown} (it is quoted into dvc.yaml's commands)")
        return region


class ExplainParams(_Section):
    top_k: int = Field(3, ge=1, le=50)  # drivers per cluster
    lever_pair_features: int = Field(4, ge=0, le=20)  # features tried in pairs by the lever search
    beeswarm_features: int = Field(15, ge=1, le=100)  # features shown per beeswarm plot
    # Comparative rows behind the global SHAP views: a seeded sample above this many.
    global_max_rows: int = Field(5000, ge=100)
    seed: int = 0


class RecommendParams(_Section):
    k: int = Field(6, ge=1, le=30)  # recommendations per cluster before the guards
    knowledge_base: str | None = None  # None: the packaged policy/instruments.yaml
    driver_weight: float = Field(1.0, ge=0)
    lever_weight: float = Field(1.0, ge=0)
    high_percentile: float = Field(60.0, ge=50, le=100)  # a driver at or above is "high"
    low_percentile: float = Field(40.0, ge=0, le=50)  # a driver at or below is "low"
    # Top two stage probabilities this close: measures fitting both first, and a caveat.
    near_tie_margin: float = Field(0.25, ge=0, le=1)
    # A share under 1/4 cannot hold with four aspects present.
    max_aspect_share: float = Field(0.4, ge=0.25, le=1)
    min_confidence: float = Field(0.6, ge=0, le=1)  # below: no heavy instruments
    sme_majority: float = Field(0.5, ge=0, le=1)  # sme_share above: an SME measure is due


class QuadrantParams(_Section):
    lq_split: float = Field(1.0, gt=0)
    growth_split: float = 0.0
    decline_threshold: float = Field(0.02, ge=0)
    growth_columns: list[str] = Field(
        default_factory=lambda: ["growth_vs_national_3y", "regional_shift_rate", "emp_cagr_3y"],
        min_length=1,
    )


class TrajectoryParams(_Section):
    # Rates per year; the rules are in features/labellers/trajectory.py and docs/labellers.md.
    window: int = Field(3, ge=1)
    growth_min: float = 0.03
    decline_max: float = -0.05
    flat_max: float = 0.02
    emerging_entry_min: float = Field(0.22, ge=0)
    growth_entry_min: float = Field(0.10, ge=0)
    renewal_entry_min: float = Field(0.06, ge=0)
    upgrade_min: float = 0.02
    innovation_min: float = 0.10
    switch_penalty: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> TrajectoryParams:
        if self.window % 2 == 0:
            raise ValueError("window must be an odd number of years")
        if not self.decline_max <= self.flat_max <= self.growth_min:
            raise ValueError("expected decline_max <= flat_max <= growth_min")
        return self


class LabelsParams(_Section):
    source: Literal["expert", "quadrant", "trajectory"] = "expert"
    quadrant: QuadrantParams = Field(default_factory=QuadrantParams)
    trajectory: TrajectoryParams = Field(default_factory=TrajectoryParams)


class Params(_Section):
    generate: GenerateParams = Field(default_factory=GenerateParams)
    data: DataParams = Field(default_factory=DataParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    labels: LabelsParams = Field(default_factory=LabelsParams)
    train: TrainParams = Field(default_factory=TrainParams)
    score: ScoreParams = Field(default_factory=ScoreParams)
    explain: ExplainParams = Field(default_factory=ExplainParams)
    recommend: RecommendParams = Field(default_factory=RecommendParams)


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
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ParamsError(f"{path}{where}: not valid YAML ({problem})") from None
    if raw is None:
        # Every default would apply: the synthetic world, not what an emptied file meant.
        raise ParamsError(f"{path}: the file is empty; expected the sections of params.yaml")
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
