"""params.yaml as typed, validated settings, loaded once at the edge; libraries get plain values."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from features.errors import InputError, read_utf8
from features.indicators.linkages import DEFAULT_MEASURE
from features.labellers.quadrant import DEFAULT_QUADRANT
from features.labellers.trajectory import DEFAULT_TRAJECTORY
from features.lags import DEFAULT_LAGGED, DEFAULT_LAGS
from features.schemas import TOTAL_LABEL
from models.defaults import (
    DEFAULT_BEESWARM_FEATURES,
    DEFAULT_PAIR_FEATURES,
    DEFAULT_TOP_K,
    DEFAULT_XGB,
)
from pipeline import paths
from policy.guards import DEFAULT_CONFIG, GuardConfig
from policy.ranking import DEFAULT_K, DEFAULT_SCORING, Scoring

PACKAGED_KB = Path("policy/instruments.yaml")  # the project's own copy, a dependency of recommend


class ParamsError(ValueError):
    """params.yaml is unreadable or invalid. The CLI prints it as one line and exits 2."""


def _no_bool(value: object) -> object:
    # YAML's true is an int to Python, which lax float validation would read as 1.0.
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number")
    return value


# Strict, like every other field, except that an int is a number too, and so is a string YAML
# 1.1 leaves unread (PyYAML reads 1e-3 as the text '1e-3').
Real = Annotated[float, Field(strict=False), BeforeValidator(_no_bool)]


class _Section(BaseModel):
    # strict: `n_estimators: true`, `seed: "7"` or `calibrate: "yes"` is a mistake, not 1, 7, True.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _entry_error(entry: str, message: str) -> PydanticCustomError:
    """An error about one entry of a mapping; the message names the key down to that entry."""
    return PydanticCustomError("entry_error", "{message}", {"entry": entry, "message": message})


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


class GenerateParams(_Section):
    # Bounded as `clusterstage generate` bounds --seed and --scale (pipeline/generate.py).
    seed: int = Field(20240601, ge=0)
    scale: Real = Field(1.0, gt=0)

    @field_validator("scale")
    @classmethod
    def _at_most_max_scale(cls, scale: float) -> float:
        from pipeline.generate import MAX_SCALE

        if scale > MAX_SCALE:
            raise ValueError(f"expected a number > 0 and <= {MAX_SCALE:g}, found {scale!r}")
        return scale


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
    total_label: str = TOTAL_LABEL
    region_totals: str | None = None

    @field_validator("dir")
    @classmethod
    def _a_folder_of_inputs(cls, folder: str) -> str:
        here = Path(folder)
        holds_outputs = [
            out for out in paths.OUTPUT_FOLDERS if _inside(out, here) or _inside(here, out)
        ]
        # "", "." or "/" would make the ingest stage depend on the whole project, outputs too.
        if not folder.strip() or _inside(Path.cwd(), here) or holds_outputs:
            raise ValueError(
                "expected a folder inside the project that holds only the inputs "
                f"(data/raw/<name>), found {folder!r}"
            )
        for out, (stage, _) in paths.STAGE_FOLDERS.items():
            if _inside(here, out) and here.resolve() != out.resolve():
                raise ValueError(
                    _in_stage_folder(folder, out, stage, "a folder of its own (data/raw/<name>)")
                )
        return folder

    @field_validator("path", "labels", "target_labels", "region_totals")
    @classmethod
    def _not_in_a_stage_folder(cls, value: str | None) -> str | None:
        if value is not None and (problem := _stage_folder_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("columns")
    @classmethod
    def _contract_columns(
        cls, columns: dict[str, str | None], info: ValidationInfo
    ) -> dict[str, str | None]:
        if not columns:
            return columns
        from features.loaders import _PANEL_KNOWN, normalise_name
        from features.schemas import FIRMS_OPTIONAL, FIRMS_REQUIRED

        grain = info.data.get("grain", "panel")
        known = {"panel": _PANEL_KNOWN, "firms": (*FIRMS_REQUIRED, *FIRMS_OPTIONAL)}.get(grain)
        for contract in columns:
            if known is None:
                raise _entry_error(
                    contract,
                    f"the {grain} grain takes no column mapping (its columns are fixed); "
                    "expected data.columns: {}",
                )
            if normalise_name(contract) not in known:
                raise _entry_error(
                    contract,
                    f"unknown {grain} column {contract!r}; expected one of {', '.join(known)}",
                )
        return columns

    @model_validator(mode="after")
    def _inputs_inside_dir(self) -> DataParams:
        root = Path(self.dir).resolve()
        for key in ("path", "labels", "target_labels", "region_totals"):
            value = getattr(self, key)
            if value is not None and not Path(value).resolve().is_relative_to(root):
                raise ValueError(f"data.{key} ({value}) must lie inside data.dir ({self.dir})")
        return self


def _in_stage_folder(value: str, folder: Path, stage: str, expected: str) -> str:
    return (
        f"{value} lies inside {folder.as_posix()}, the output of the {stage} stage, which DVC "
        f"deletes and writes anew when that stage runs; expected {expected}"
    )


def _stage_folder_problem(value: str) -> str | None:
    """Why an input file may not lie where ``value`` names, if it may not: inside a stage's
    output folder under a name the stage does not write itself."""
    for out, (stage, files) in paths.STAGE_FOLDERS.items():
        if not _inside(Path(value), out):
            continue
        name = Path(value).resolve().relative_to(out.resolve()).as_posix()
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in files):
            return _in_stage_folder(
                value,
                out,
                stage,
                "the file in a folder of its own (data/raw/<name>, named by data.dir)",
            )
    return None


def _input_file_problem(value: str, data: DataParams, stage: str) -> str | None:
    """Why a file a stage reads besides the data may not lie where ``value`` names, if it may
    not. DVC re-runs a stage only when a declared dependency changes, and a path in params.yaml
    can be no dependency of its own (a null would be templated as the text None): the file
    must lie in data.dir, which the stage depends on as a whole."""
    if not _inside(Path(value), Path(data.dir)):
        return (
            f"{value} lies outside data.dir ({data.dir}); expected a file inside it, whose "
            f"changes re-run the {stage} stage (else its results would go stale unnoticed)"
        )
    return _stage_folder_problem(value)


class FeaturesParams(_Section):
    # A US Cluster Mapping related_clusters.json for relatedness density; null: co-location in
    # the data itself. Its measure: see features/indicators/linkages.py.
    relatedness: str | None = None
    relatedness_measure: Literal[
        "cr_lc", "cr_lcemp", "cr_lcest", "cr_io", "cr_occ", "rel_all_90_v3"
    ] = DEFAULT_MEASURE
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
    seed: int = DEFAULT_XGB.seed
    n_estimators: int = Field(DEFAULT_XGB.n_estimators, ge=1)
    max_depth: int = Field(DEFAULT_XGB.max_depth, ge=1, le=16)
    learning_rate: Real = Field(DEFAULT_XGB.learning_rate, gt=0, le=1)
    subsample: Real = Field(DEFAULT_XGB.subsample, gt=0, le=1)
    colsample_bytree: Real = Field(DEFAULT_XGB.colsample_bytree, gt=0, le=1)
    min_child_weight: Real = Field(DEFAULT_XGB.min_child_weight, ge=0)
    reg_lambda: Real = Field(DEFAULT_XGB.reg_lambda, ge=0)
    max_bin: int = Field(DEFAULT_XGB.max_bin, ge=2, le=1024)  # histogram bins per feature
    # random draws scored beside the configured settings
    tuning_budget: int = Field(DEFAULT_XGB.tuning_budget, ge=0)
    # region-grouped folds for tuning and calibration
    inner_folds: int = Field(DEFAULT_XGB.inner_folds, ge=2)
    # temperature scaling, kept only where it lowers the ECE
    calibrate: bool = DEFAULT_XGB.calibrate
    champion_gate: Real = Field(0.5, ge=0, le=1)  # least CV macro-F1 for the champion alias
    bootstrap: int = Field(1000, ge=0)  # region resamples behind the lead's interval; 0: none
    features: list[str] | None = None  # None: every feature of the catalogue
    n_jobs: int = Field(2, ge=1)  # folds fitted in parallel; results do not depend on it

    @field_validator("features")
    @classmethod
    def _some_features_once_each(cls, names: list[str] | None) -> list[str] | None:
        # train reads an empty list as "not given", so [] would silently mean every feature.
        if names == []:
            raise ValueError("expected at least one feature, or null for every feature; found []")
        for i, name in enumerate(names or []):
            if name in names[:i]:
                raise ValueError(f"{name!r} is listed twice; expected each feature once")
        return names


class ScoreParams(_Section):
    # features.reference_world.TARGET_REGION, written out: importing the world's archetypes here
    # would cost every command 16 ms at start-up (tests/pipeline/test_params.py keeps them equal).
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
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=50)  # drivers per cluster
    # Features tried in pairs by the lever search.
    lever_pair_features: int = Field(DEFAULT_PAIR_FEATURES, ge=0, le=20)
    # Features shown per beeswarm plot.
    beeswarm_features: int = Field(DEFAULT_BEESWARM_FEATURES, ge=1, le=100)
    # Comparative rows behind the global SHAP views: a seeded sample above this many.
    global_max_rows: int = Field(5000, ge=100)
    seed: int = 0


class RecommendParams(_Section):
    k: int = Field(DEFAULT_K, ge=1, le=30)  # recommendations per cluster before the guards
    # The packaged policy/instruments.yaml, or a file of that shape inside data.dir. Not null:
    # dvc.yaml hands it to `score` as text, where a null would arrive as "None".
    knowledge_base: str = Field(str(PACKAGED_KB), min_length=1)
    driver_weight: Real = Field(DEFAULT_SCORING.driver_weight, ge=0)
    lever_weight: Real = Field(DEFAULT_SCORING.lever_weight, ge=0)
    # A driver at or above is "high"; at or below low_percentile, "low".
    high_percentile: Real = Field(DEFAULT_SCORING.high_percentile, ge=50, le=100)
    low_percentile: Real = Field(DEFAULT_SCORING.low_percentile, ge=0, le=50)
    # Top two stage probabilities this close: measures fitting both first, and a caveat.
    near_tie_margin: Real = Field(DEFAULT_SCORING.near_tie_margin, ge=0, le=1)
    # A share under 1/4 cannot hold with four aspects present.
    max_aspect_share: Real = Field(DEFAULT_CONFIG.max_aspect_share, ge=0.25, le=1)
    # Below: no heavy instruments.
    min_confidence: Real = Field(DEFAULT_CONFIG.min_confidence, ge=0, le=1)
    # sme_share above: an SME measure is due.
    sme_majority: Real = Field(DEFAULT_CONFIG.sme_majority, ge=0, le=1)

    def scoring(self) -> Scoring:
        """How the recommender ranks instruments, with these settings."""
        return Scoring(
            driver_weight=self.driver_weight,
            lever_weight=self.lever_weight,
            high_percentile=self.high_percentile,
            low_percentile=self.low_percentile,
            near_tie_margin=self.near_tie_margin,
        )

    def guard_config(self) -> GuardConfig:
        """The trap guards' thresholds, with these settings."""
        return GuardConfig(
            max_aspect_share=self.max_aspect_share,
            min_confidence=self.min_confidence,
            sme_majority=self.sme_majority,
        )


class QuadrantParams(_Section):
    lq_split: Real = Field(DEFAULT_QUADRANT.lq_split, gt=0)
    growth_split: Real = DEFAULT_QUADRANT.growth_split
    decline_threshold: Real = Field(DEFAULT_QUADRANT.decline_threshold, ge=0)
    growth_columns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_QUADRANT.growth_columns), min_length=1
    )

    @field_validator("growth_columns")
    @classmethod
    def _catalogue_features(cls, columns: list[str]) -> list[str]:
        # The labeller skips a column a row lacks, so a misspelt name would be skipped silently.
        from features.catalogue import FEATURE_NAMES
        from features.lags import parse_lag

        for column in columns:
            if column not in FEATURE_NAMES and parse_lag(column) is None:
                raise ValueError(
                    f"unknown feature {column!r}; expected features of docs/features.md "
                    "(e.g. growth_vs_national_3y, regional_shift_rate, emp_cagr_3y)"
                )
        return columns


class TrajectoryParams(_Section):
    # Rates per year; the rules are in features/labellers/trajectory.py and docs/labellers.md.
    window: int = Field(DEFAULT_TRAJECTORY.window, ge=1)
    growth_min: Real = DEFAULT_TRAJECTORY.growth_min
    decline_max: Real = DEFAULT_TRAJECTORY.decline_max
    flat_max: Real = DEFAULT_TRAJECTORY.flat_max
    emerging_entry_min: Real = Field(DEFAULT_TRAJECTORY.emerging_entry_min, ge=0)
    growth_entry_min: Real = Field(DEFAULT_TRAJECTORY.growth_entry_min, ge=0)
    renewal_entry_min: Real = Field(DEFAULT_TRAJECTORY.renewal_entry_min, ge=0)
    upgrade_min: Real = DEFAULT_TRAJECTORY.upgrade_min
    innovation_min: Real = DEFAULT_TRAJECTORY.innovation_min
    switch_penalty: Real = Field(DEFAULT_TRAJECTORY.switch_penalty, ge=0)

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

    # Fields are validated in order, so info.data holds `data` (when it was valid) here.
    @field_validator("features", "recommend")
    @classmethod
    def _stage_files_in_data_dir(
        cls, section: FeaturesParams | RecommendParams, info: ValidationInfo
    ) -> FeaturesParams | RecommendParams:
        data = info.data.get("data")
        key, stage = ("relatedness", "features")
        if isinstance(section, RecommendParams):
            key, stage = ("knowledge_base", "recommend")
        value = getattr(section, key)
        # The recommend stage depends on the policy folder already, the packaged file with it.
        if value is None or data is None or _inside(Path(value), PACKAGED_KB):
            return section
        if problem := _input_file_problem(value, data, stage):
            raise _entry_error(key, problem)
        return section

    @field_validator("train")
    @classmethod
    def _train_features_are_built(cls, train: TrainParams, info: ValidationInfo) -> TrainParams:
        # The training matrix takes the named columns the features stage built and skips the
        # rest, so a misspelt name would leave a feature out without a word.
        from features.catalogue import FEATURE_NAMES
        from features.lags import lag_names, parse_lag

        features = info.data.get("features")
        if train.features is None or features is None:
            return train
        built = {*FEATURE_NAMES, *lag_names(features.lagged, features.lags)}
        for name in train.features:
            if name in built:
                continue
            base = (parse_lag(name) or (name, 0))[0]
            if base not in FEATURE_NAMES:
                why = (
                    f"unknown feature {name!r}; expected features of docs/features.md "
                    "or their lags <feature>_lag<k> (e.g. lq, emp_cagr_3y, entry_rate_lag1)"
                )
            elif base not in features.lagged:
                why = f"{name!r} is never built: {base} is not in features.lagged"
            else:
                stop = f"lags stop at _lag{features.lags}" if features.lags else "none is built"
                why = f"{name!r} is never built: features.lags is {features.lags}, so {stop}"
            raise _entry_error("features", why)
        return train


def _describe(err: ValidationError, source: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    if first["type"] == "value_error":
        return f"{source}: key '{key}': {first['msg'].removeprefix('Value error, ')}"
    if first["type"] == "entry_error":
        ctx = first.get("ctx") or {}
        return f"{source}: key '{key}.{ctx['entry']}': {ctx['message']}"
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


_BOOL_TAG = "tag:yaml.org,2002:bool"
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# PyYAML's YAML 1.1 booleans that YAML 1.2, which DVC reads, leaves as text
_YAML11_ONLY_BOOLEANS = frozenset(
    form for word in ("yes", "no", "on", "off") for form in (word, word.title(), word.upper())
)


def _read_differently(node: yaml.Node | None) -> tuple[yaml.Node, str] | None:
    """The first value that this reader and DVC's (YAML 1.2, ruamel) would read differently,
    with what to write instead: a plain yes/no/on/off, a boolean here and text to DVC; a key
    given twice in one mapping, which one reader takes the last of and the other refuses."""
    if isinstance(node, yaml.ScalarNode):
        if not node.style and node.tag == _BOOL_TAG and node.value in _YAML11_ONLY_BOOLEANS:
            return node, (
                f"'{node.value}' is read as a boolean here but as text by DVC (YAML 1.2); "
                "write true or false, or quote it"
            )
        return None
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in seen:
                return key, f"key '{key.value}' is given twice in its section; expected it once"
            seen.add(getattr(key, "value", ""))
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        return None
    for child in children:
        found = _read_differently(child)
        if found is not None:
            return found
    return None


def read_params_yaml(text: str, source: Path) -> object:
    """Parse params.yaml's text (safe_load) as DVC will read it: a one-line ParamsError for text
    that is not YAML, or for a value the two would read differently."""
    try:
        raw = yaml.safe_load(text)
        # compose only resolves tags; it builds no object (libyaml's parser: 0.4 ms, not 8;
        # its plain scalars have style "", the pure-Python one's None)
        different = _read_differently(yaml.compose(text, Loader=_COMPOSER))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ParamsError(f"{source}{where}: not valid YAML ({problem})") from None
    if different is not None:
        node, message = different
        raise ParamsError(f"{source}, line {node.start_mark.line + 1}: {message}")
    return raw


def load_params(path: str | Path = paths.PARAMS) -> Params:
    """Read and validate params.yaml (safe_load only)."""
    path = Path(path)
    try:
        text = read_utf8(path, "a UTF-8 encoded YAML file")
    except OSError as err:
        raise ParamsError(f"{path}: cannot read ({err.strerror})") from None
    except InputError as err:
        raise ParamsError(str(err)) from None
    raw = read_params_yaml(text, path)
    if raw is None:
        # Every default would apply: the synthetic world, not what an emptied file meant.
        raise ParamsError(f"{path}: the file is empty; expected the sections of params.yaml")
    return parse_params(raw, path)


def _section_and_field(key: str) -> tuple[type[_Section], str]:
    section, _, name = key.partition(".")
    model = Params.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, _Section) and name in model.model_fields
    return model, name


def default_of(key: str) -> object:
    """The default of a dotted key ('recommend.k'): what params.yaml holds unless set."""
    model, name = _section_and_field(key)
    return model.model_fields[name].get_default(call_default_factory=True)


def accepts(key: str, value: object) -> bool:
    """Whether params.yaml would accept ``value`` for the dotted key (its section's own checks)."""
    model, name = _section_and_field(key)
    try:
        model.model_validate({name: value})
    except ValidationError:
        return False
    return True


def expected_of(key: str) -> str:
    """What a numeric dotted key takes, in words: 'a whole number from 1 to 30'."""
    model, name = _section_and_field(key)
    field = model.model_fields[name]
    bounds: dict[str, float] = {}
    for rule in field.metadata:
        for kind in ("ge", "gt", "le", "lt"):
            if getattr(rule, kind, None) is not None:
                bounds[kind] = getattr(rule, kind)
    what = {int: "a whole number", float: "a number"}.get(field.annotation, "a value")
    if "ge" in bounds and "le" in bounds:
        return f"{what} from {bounds['ge']:g} to {bounds['le']:g}"
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return " ".join([what, " and ".join(f"{signs[k]} {v:g}" for k, v in bounds.items())]).strip()


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
