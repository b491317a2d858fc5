"""Leave-one-region-out cross-validation: the unit of generalisation is a region."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.model_selection import LeaveOneGroupOut

from models.metrics import N_STAGES, stage_metrics


@dataclass
class CVResult:
    """Out-of-fold probabilities of one model and its metrics per held-out region."""

    name: str
    proba: np.ndarray
    folds: list[dict[str, object]] = field(default_factory=list)
    refitted: BaseEstimator | None = None  # fitted on every region, when asked for
    # Per fold, the settings a tuned model tried, each with its inner score (its ``tuning_``);
    # empty lists for models that tune nothing.
    tuning: list[list[dict[str, object]]] = field(default_factory=list)


def _fit_fold(
    X: pd.DataFrame,
    y: np.ndarray,
    regions: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    make: Callable[[], BaseEstimator],
) -> tuple[np.ndarray, list[dict[str, object]]]:
    model = make().fit(X.iloc[train], y[train], regions[train])
    return model.predict_proba(X.iloc[test]), list(getattr(model, "tuning_", []))


def _refit(
    X: pd.DataFrame, y: np.ndarray, regions: np.ndarray, make: Callable[[], BaseEstimator]
) -> BaseEstimator:
    return make().fit(X, y, regions)


def leave_one_region_out(
    X: pd.DataFrame,
    y: np.ndarray,
    regions: np.ndarray,
    factories: Mapping[str, Callable[[], BaseEstimator]],
    n_jobs: int = 1,
    refit: str | None = None,
) -> dict[str, CVResult]:
    """Fit every model on all regions but one and predict the held-out one, for each region.

    The same folds serve every model. A factory is called afresh per fold, so nothing a model
    learns (tuning, calibration, imputation statistics) crosses from the held-out region. Folds
    run in ``n_jobs`` processes; the result does not depend on how many. ``refit`` names a model
    also fitted on every region, in the same pool (``CVResult.refitted``).
    """
    y = np.asarray(y, dtype=int)
    regions = np.asarray(regions)
    splits = list(LeaveOneGroupOut().split(X, y, regions))
    # One job per model and fold, model by model in the order given, the refit first: the main
    # model comes first and costs the most (it tunes), so the cheap baselines' jobs fill the
    # workers' last gaps instead of one worker finishing a whole fold alone.
    jobs = [delayed(_refit)(X, y, regions, factories[refit])] if refit else []
    jobs += [
        delayed(_fit_fold)(X, y, regions, train, test, make)
        for make in factories.values()
        for train, test in splits
    ]
    fitted = Parallel(n_jobs=n_jobs)(jobs)
    results = {name: CVResult(name, np.zeros((len(y), N_STAGES))) for name in factories}
    if refit:
        results[refit].refitted = fitted.pop(0)
    for name, (_, test), (proba, tuning) in zip(
        [name for name in factories for _ in splits],
        splits * len(factories),
        fitted,
        strict=True,
    ):
        held_out = str(regions[test][0])
        results[name].proba[test] = proba
        results[name].tuning.append(tuning)
        results[name].folds.append({"region": held_out, **_scalar(stage_metrics(y[test], proba))})
    return results


def _scalar(metrics: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}
