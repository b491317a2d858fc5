"""Defaults of the stage classifier and of the scoring and explanation functions
(``models.estimators``, ``models.scoring``, ``models.levers``, ``models.explain``,
``models.pyfunc_model``), and so of params.yaml's ``train`` and ``explain`` sections.

Apart from those modules so that ``pipeline.params`` can take params.yaml's defaults from here
without importing XGBoost or SHAP, which every command would then load before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TOP_K = 3  # drivers per row
DEFAULT_PAIR_FEATURES = 4  # features whose moves the lever search tries in pairs
DEFAULT_BEESWARM_FEATURES = 15  # features shown per beeswarm plot


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
