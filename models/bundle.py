"""The trained stage model as files in the libraries' own formats: XGBoost UBJ plus JSON metadata.

No pickle is involved, so a model folder from anywhere can be loaded without running its code.
The per-year percentile grids (``ModelMeta.year_quantiles``) are several megabytes, so they sit in
their own compact JSON file beside ``model.json``, which stays readable; a folder without that
file (an older model) loads with pooled grids only.

A folder may come from anywhere and be edited by hand, so ``StageModel.load`` checks both files
against ``ModelMeta``'s declared types (pydantic, strict: a number as text is not a number) and
against the booster, and says what is wrong in one line naming the file and key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import ErrorDetails

from features.errors import InputError
from features.stages import STAGES
from models.bundle_files import BOOSTER_FILE, META_FILE, YEAR_QUANTILES_FILE
from models.calibration import apply_temperature
from models.reference import year_reference

KEYS = ["region", "cluster", "year"]
PROBA_COLUMNS = [f"p_{s}" for s in STAGES]
QUANTILE_POINTS = 101  # percentiles 0, 1, ..., 100 (``feature_quantiles``)


# What loading checks beyond the types. Each raises with what it found; the error message
# (``_meta_problem``, ``_year_problem``) puts the key and what was expected before it.
def _once_each(items: list[Any]) -> list[Any]:
    for i, item in enumerate(items):
        if item in items[:i]:
            raise ValueError(f"found {item!r} twice")
    return items


def _catalogue_names(names: list[str]) -> list[str]:
    # Scoring reads a feature the frame lacks as missing, so an unknown name would score every
    # row without that feature and say nothing.
    from features.catalogue import FEATURE_NAMES
    from features.lags import base_feature

    for name in names:
        if base_feature(name) not in FEATURE_NAMES:
            raise ValueError(f"found {name!r}")
    return names


def _low_high(pair: list[float]) -> list[float]:
    if pair[0] > pair[1]:
        raise ValueError(f"found {pair!r}")
    return pair


def _non_decreasing(grid: list[float]) -> list[float]:
    for low, high in pairwise(grid):
        if high < low:
            raise ValueError(f"found {high!r} after {low!r}")
    return grid


def _year(key: str) -> str:
    if not (key.isascii() and key.isdigit()):
        raise ValueError(f"found {key!r}")
    return str(int(key))


Finite = Annotated[float, Field(allow_inf_nan=False)]
Grid = Annotated[
    list[Finite],
    Field(min_length=QUANTILE_POINTS, max_length=QUANTILE_POINTS),
    AfterValidator(_non_decreasing),
]
Range = Annotated[list[Finite], Field(min_length=2, max_length=2), AfterValidator(_low_high)]
Year = Annotated[str, AfterValidator(_year)]
StageId = Annotated[int, Field(ge=0, lt=len(STAGES))]


# The annotations are for loading only (``StageModel.load``); a ModelMeta built in code is a
# plain dataclass, unchecked.
@with_config(ConfigDict(strict=True, extra="forbid"))
@dataclass
class ModelMeta:
    """What scoring needs besides the trees."""

    features: Annotated[
        list[str],
        Field(min_length=1),
        AfterValidator(_once_each),
        AfterValidator(_catalogue_names),
    ]
    classes: Annotated[list[StageId], Field(min_length=1), AfterValidator(_once_each)]
    temperature: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    params: dict[str, object] = field(default_factory=dict)
    # Per-feature [low, high] of the training rows: scores outside are flagged as out of range.
    ranges: dict[str, Range] = field(default_factory=dict)
    # Per-feature percentiles 0, 1, ..., 100 of the training rows: where a scored value stands
    # among the comparative clusters (drivers' percentiles) without shipping the training rows.
    quantiles: dict[str, Grid] = field(default_factory=dict)
    # The same grids per training year (key: the year as text), among the comparative clusters
    # of that year (``models.reference.year_reference``): nominal levels drift over the years,
    # and ``explain`` ranks a cluster among its own year's clusters too.
    year_quantiles: dict[Year, dict[str, Grid]] = field(default_factory=dict)
    # The most model features any training row lacked: a scored row missing more is unlike
    # everything the model learned from (a single cross-section without history, say).
    max_missing: Annotated[int, Field(ge=0)] | None = None
    training_regions: list[str] = field(default_factory=list)
    synthetic: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    # SHA-256 of model.ubj as saved (``save`` sets it): a damaged booster file is refused before
    # XGBoost parses it, which some damage makes crash the process. None: an older folder.
    booster_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


_GRIDS = f"{QUANTILE_POINTS} finite non-decreasing numbers"
# What each key of model.json holds, as an error message says it, and for an object of entries
# what an entry is (the message names the entry).
_EXPECTED: dict[str, tuple[str, str | None]] = {
    "features": (
        "a non-empty list of unique names of features of docs/features.md or their lags "
        "<feature>_lag<k>",
        None,
    ),
    "classes": (f"a non-empty list of unique stage ids 0 to {len(STAGES) - 1}", None),
    "temperature": ("a finite number > 0", None),
    "params": ("an object", None),
    "ranges": ("[low, high], two finite numbers with low <= high", "feature"),
    "quantiles": (_GRIDS, "feature"),
    "year_quantiles": (f"an object mapping each feature to {_GRIDS}", "year"),
    "max_missing": ("an integer >= 0 or null", None),
    "training_regions": ("a list of region names", None),
    "synthetic": ("true or false", None),
    "metrics": ("a number", "metric"),
    "booster_sha256": (f"the SHA-256 of {BOOSTER_FILE} in 64 hexadecimal digits, or null", None),
}
_META = TypeAdapter(ModelMeta)
_YEAR_GRIDS = TypeAdapter(dict[Year, dict[str, Grid]], config=ConfigDict(strict=True))


class StageModel:
    """A fitted booster with its metadata: predicts stages from a feature frame."""

    def __init__(self, booster: xgb.Booster, meta: ModelMeta) -> None:
        self.booster = booster
        self.meta = meta

    @classmethod
    def load(cls, folder: str | Path) -> StageModel:
        """The model saved in ``folder``; InputError, one line naming the file and key, where the
        folder is not a whole model or its files are malformed or disagree."""
        folder = Path(folder)
        by_year = folder / YEAR_QUANTILES_FILE
        try:
            text = (folder / META_FILE).read_text(encoding="utf-8")
            year_text = by_year.read_text(encoding="utf-8") if by_year.is_file() else None
            raw = (folder / BOOSTER_FILE).read_bytes()
        except (OSError, ValueError) as err:
            raise InputError(folder, f"not a clusterstage model folder ({err})") from None
        meta = _read_meta(folder / META_FILE, text)
        if (
            meta.booster_sha256 is not None
            and hashlib.sha256(raw).hexdigest() != meta.booster_sha256
        ):
            raise InputError(
                folder / BOOSTER_FILE,
                f"damaged or replaced: its SHA-256 is not the one {META_FILE} records "
                "(key 'booster_sha256'); expected the booster saved with that metadata",
            )
        booster = _read_booster(folder / BOOSTER_FILE, raw)
        _check_booster(meta, booster, folder / META_FILE)
        _only_model_features(folder / META_FILE, "key 'ranges'", meta.ranges, meta.features)
        _only_model_features(folder / META_FILE, "key 'quantiles'", meta.quantiles, meta.features)
        for year, grids in meta.year_quantiles.items():
            where = f"key 'year_quantiles', year {year!r}"
            _only_model_features(folder / META_FILE, where, grids, meta.features)
        if year_text is not None:
            meta.year_quantiles = _read_year_grids(by_year, year_text, meta.features)
        return cls(booster, meta)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        raw = bytes(self.booster.save_raw(raw_format="ubj"))
        (folder / BOOSTER_FILE).write_bytes(raw)
        meta = asdict(self.meta)
        meta["booster_sha256"] = hashlib.sha256(raw).hexdigest()
        by_year = meta.pop("year_quantiles")
        (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if by_year:
            text = json.dumps(by_year, separators=(",", ":"))
            (folder / YEAR_QUANTILES_FILE).write_text(text, encoding="utf-8")

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's feature columns, in order; absent ones are missing, text is an error."""
        X = frame.reindex(columns=self.meta.features)
        for col in self.meta.features:
            if not pd.api.types.is_numeric_dtype(X[col]):
                try:
                    X[col] = pd.to_numeric(X[col])
                except (TypeError, ValueError):
                    raise InputError(None, "expected a number", column=col) from None
        return X.astype("float64")

    def margins(self, X: pd.DataFrame) -> np.ndarray:
        dm = xgb.DMatrix(X, missing=np.nan)
        return self.booster.predict(dm, output_margin=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        X = self.matrix(frame)
        proba = apply_temperature(self.margins(X), self.meta.temperature)
        full = np.zeros((len(X), len(STAGES)))
        full[:, np.asarray(self.meta.classes, dtype=int)] = proba
        return full

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Keys (where given), the predicted stage and one probability column per stage."""
        proba = self.predict_proba(frame)
        out = frame[[k for k in KEYS if k in frame.columns]].reset_index(drop=True).copy()
        out["stage"] = np.asarray(STAGES, dtype=object)[proba.argmax(axis=1)]
        for i, col in enumerate(PROBA_COLUMNS):
            out[col] = proba[:, i]
        return out


def _read_meta(path: Path, text: str) -> ModelMeta:
    try:
        return _META.validate_json(text)
    except ValidationError as err:
        raise InputError(path, _meta_problem(err.errors()[0])) from None


def _read_booster(path: Path, raw: bytes) -> xgb.Booster:
    # XGBoost's message for a file it cannot parse carries a native stack trace over many lines
    # and says little more than this; an empty buffer aborts the process instead of raising.
    problem = "cannot read the booster; expected a whole XGBoost model in UBJ format"
    if not raw:
        raise InputError(path, f"{problem}, found an empty file")
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except (xgb.core.XGBoostError, ValueError):  # ValueError: names that are not UTF-8
        raise InputError(path, problem) from None
    return booster


def _read_year_grids(
    path: Path, text: str, features: list[str]
) -> dict[str, dict[str, list[float]]]:
    try:
        by_year = _YEAR_GRIDS.validate_json(text)
    except ValidationError as err:
        raise InputError(path, _year_problem(err.errors()[0])) from None
    for year, grids in by_year.items():
        _only_model_features(path, f"year {year!r}", grids, features)
    return by_year


def _only_model_features(path: Path, where: str, grids: dict, features: list[str]) -> None:
    # Grids and ranges are looked up by the model's feature names; one of another name is never
    # read, so it is a sign of a file edited or put together by hand.
    known = set(features)
    for name in grids:
        if name not in known:
            raise InputError(
                path,
                f"{where}: expected features of the model ({META_FILE} key 'features') only, "
                f"found {name!r}",
            )


def _check_booster(meta: ModelMeta, booster: xgb.Booster, path: Path) -> None:
    """The metadata describes this booster: a name per feature, in its order, a stage per class.
    Otherwise prediction fails on the shapes, or puts probabilities under the wrong stages."""
    count = booster.num_features()
    if len(meta.features) != count:
        raise InputError(
            path,
            f"key 'features': expected {count} names, one per feature of {BOOSTER_FILE}, "
            f"found {len(meta.features)}",
        )
    names = booster.feature_names  # None for a booster fitted on an array
    if names is not None and list(names) != meta.features:
        theirs, ours = next((a, b) for a, b in zip(names, meta.features, strict=True) if a != b)
        raise InputError(
            path,
            f"key 'features': expected the features of {BOOSTER_FILE} in its order, found "
            f"{ours!r} where it has {theirs!r}",
        )
    learner = json.loads(booster.save_config())["learner"]["learner_model_param"]
    # multi:softprob with one class gives one margin, as would a binary objective (num_class 0).
    count = max(int(learner.get("num_class", "0")), 1)
    if len(meta.classes) != count:
        raise InputError(
            path,
            f"key 'classes': expected {count} stage ids, one per class of {BOOSTER_FILE}, "
            f"found {len(meta.classes)}",
        )


def _meta_problem(error: ErrorDetails) -> str:
    """One pydantic error of model.json as ``key '...': expected ..., found ...``."""
    loc, kind = error["loc"], error["type"]
    if kind == "json_invalid":
        return f"expected JSON ({error['ctx']['error']})"
    if not loc:
        return f"expected an object of model metadata, {_found(error, 0)}"
    key = str(loc[0])
    if kind == "unexpected_keyword_argument":
        return f"key {key!r}: unknown; expected only the keys {', '.join(_EXPECTED)}"
    expected, entry = _EXPECTED[key]
    where, depth = f"key {key!r}", 1
    if entry is not None and len(loc) == 1:
        expected = f"an object mapping each {entry} to {expected}"
    elif entry is not None:
        where, depth = f"{where}, {entry} {loc[1]!r}", 2
        if loc[-1] == "[key]":
            expected = "a year"
    if kind == "missing":
        return f"{where}: missing; expected {expected}"
    return f"{where}: expected {expected}, {_found(error, depth)}"


def _year_problem(error: ErrorDetails) -> str:
    """One pydantic error of year_quantiles.json, as ``_meta_problem`` says it."""
    loc, kind = error["loc"], error["type"]
    if kind == "json_invalid":
        return f"expected JSON ({error['ctx']['error']})"
    if not loc:
        return f"expected an object mapping each year to per-feature grids, {_found(error, 0)}"
    if len(loc) > 1 and loc[1] == "[key]":
        return f"key {loc[0]!r}: expected a year, {_found(error, 2)}"
    if len(loc) == 1:
        return (
            f"year {loc[0]!r}: expected an object mapping each feature to {_GRIDS}, "
            f"{_found(error, 1)}"
        )
    return f"year {loc[0]!r}, feature {loc[1]!r}: expected {_GRIDS}, {_found(error, 2)}"


def _found(error: ErrorDetails, depth: int) -> str:
    """What a value at ``depth`` of the error's location was found to be, or had inside."""
    loc, kind = error["loc"], error["type"]
    if kind == "value_error":  # the checks above say what they found
        return str(error["ctx"]["error"])
    if kind in ("too_short", "too_long"):
        return f"found {error['ctx']['actual_length']} items"
    at = f" at position {loc[-1]}" if len(loc) > depth and isinstance(loc[-1], int) else ""
    shown = repr(error["input"])
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"found {shown}{at}"


def feature_ranges(X: pd.DataFrame) -> dict[str, list[float]]:
    """The 1st and 99th percentile of each feature in the training rows."""
    q = X.quantile([0.01, 0.99])
    return {
        c: [float(q.at[0.01, c]), float(q.at[0.99, c])] for c in X.columns if q[c].notna().all()
    }


def feature_quantiles(X: pd.DataFrame) -> dict[str, list[float]]:
    """The percentiles 0, 1, ..., 100 of each feature in the training rows (linear)."""
    q = X.quantile(np.linspace(0.0, 1.0, QUANTILE_POINTS))
    return {c: [float(v) for v in q[c].to_numpy()] for c in X.columns if q[c].notna().all()}


def year_quantiles(
    X: pd.DataFrame, years: Sequence[int] | np.ndarray
) -> dict[str, dict[str, list[float]]]:
    """``feature_quantiles`` per year of ``years`` (one per row of ``X``), each among the
    comparative rows of that year, widened to the nearest years where a feature has fewer than
    ``MIN_YEAR_ROWS`` values there (``models.reference.year_reference``)."""
    years = np.asarray(years, dtype=float)
    known = np.unique(years[~np.isnan(years)]).astype(int)
    return {str(y): feature_quantiles(year_reference(X, years, int(y))) for y in known}
