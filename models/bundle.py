"""The trained stage model as files in the libraries' own formats: XGBoost UBJ plus JSON metadata.

No pickle is involved, so a model folder from anywhere can be loaded without running its code.
The per-year percentile grids (``ModelMeta.year_quantiles``) are several megabytes, so they sit in
their own compact JSON file beside ``model.json``, which stays readable; a folder without that
file (an older model) loads with pooled grids only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from features.errors import InputError
from features.stages import STAGES
from models.bundle_files import BOOSTER_FILE, META_FILE, YEAR_QUANTILES_FILE
from models.calibration import apply_temperature
from models.reference import year_reference

KEYS = ["region", "cluster", "year"]
PROBA_COLUMNS = [f"p_{s}" for s in STAGES]


@dataclass
class ModelMeta:
    """What scoring needs besides the trees."""

    features: list[str]
    classes: list[int]
    temperature: float = 1.0
    params: dict[str, object] = field(default_factory=dict)
    # Per-feature [low, high] of the training rows: scores outside are flagged as out of range.
    ranges: dict[str, list[float]] = field(default_factory=dict)
    # Per-feature percentiles 0, 1, ..., 100 of the training rows: where a scored value stands
    # among the comparative clusters (drivers' percentiles) without shipping the training rows.
    quantiles: dict[str, list[float]] = field(default_factory=dict)
    # The same grids per training year (key: the year as text), among the comparative clusters
    # of that year (``models.reference.year_reference``): nominal levels drift over the years,
    # and ``explain`` ranks a cluster among its own year's clusters too.
    year_quantiles: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # The most model features any training row lacked: a scored row missing more is unlike
    # everything the model learned from (a single cross-section without history, say).
    max_missing: int | None = None
    training_regions: list[str] = field(default_factory=list)
    synthetic: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


class StageModel:
    """A fitted booster with its metadata: predicts stages from a feature frame."""

    def __init__(self, booster: xgb.Booster, meta: ModelMeta) -> None:
        self.booster = booster
        self.meta = meta

    @classmethod
    def load(cls, folder: str | Path) -> StageModel:
        folder = Path(folder)
        try:
            meta = ModelMeta(**json.loads((folder / META_FILE).read_text(encoding="utf-8")))
            by_year = folder / YEAR_QUANTILES_FILE
            if by_year.is_file():
                grids = json.loads(by_year.read_text(encoding="utf-8"))
                if not isinstance(grids, dict):
                    raise ValueError(f"{YEAR_QUANTILES_FILE} does not map years to grids")
                meta.year_quantiles = {str(int(year)): grid for year, grid in grids.items()}
            booster = xgb.Booster()
            booster.load_model(str(folder / BOOSTER_FILE))
        except (OSError, ValueError, TypeError, xgb.core.XGBoostError) as err:
            raise InputError(folder, f"not a clusterstage model folder ({err})") from None
        return cls(booster, meta)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        meta = asdict(self.meta)
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


def feature_ranges(X: pd.DataFrame) -> dict[str, list[float]]:
    """The 1st and 99th percentile of each feature in the training rows."""
    q = X.quantile([0.01, 0.99])
    return {
        c: [float(q.at[0.01, c]), float(q.at[0.99, c])] for c in X.columns if q[c].notna().all()
    }


def feature_quantiles(X: pd.DataFrame) -> dict[str, list[float]]:
    """The percentiles 0, 1, ..., 100 of each feature in the training rows (linear)."""
    q = X.quantile(np.linspace(0.0, 1.0, 101))
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
