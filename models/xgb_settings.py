"""The stage classifier's settings when nobody names others: the defaults of both
``StageClassifier`` and params.yaml's ``train`` section (pipeline/params.py), kept apart from
the estimator so that reading params does not import XGBoost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class XGBSettings:
    n_estimators: int = 200
    max_depth: int = 4
    learning_rate: float = 0.08
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    # Histogram bins per feature. On a few thousand rows the split search over the bins, not the
    # rows, is most of a fit's time: 32 bins fit 3x faster than 128 at the same macro-F1
    # (docs/model-selection.md).
    max_bin: int = 32
    tuning_budget: int = 2
    inner_folds: int = 3
    calibrate: bool = True
    seed: int = 7


DEFAULT_XGB = XGBSettings()
