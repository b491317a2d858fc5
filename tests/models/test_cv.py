import numpy as np
import pytest

from models.cv import leave_one_region_out
from models.estimators import StageClassifier, logistic_baseline, majority_baseline
from models.metrics import stage_metrics


class SpyModel:
    """Records the regions it was fitted on."""

    seen: list[set[str]] = []

    def fit(self, X, y, groups):
        SpyModel.seen.append(set(groups))
        return self

    def predict_proba(self, X):
        return np.full((len(X), 5), 0.2)


def test_held_out_region_never_reaches_training(staged_rows):
    X, y, regions = staged_rows
    SpyModel.seen = []
    results = leave_one_region_out(X, y, regions, {"spy": SpyModel})
    folds = [f["region"] for f in results["spy"].folds]
    assert sorted(folds) == sorted(set(regions))
    for held_out, seen in zip(folds, SpyModel.seen, strict=True):
        assert held_out not in seen and len(seen) == 5


def test_every_row_gets_an_out_of_fold_prediction(staged_rows):
    X, y, regions = staged_rows
    results = leave_one_region_out(
        X,
        y,
        regions,
        {
            "xgb": lambda: StageClassifier(n_estimators=30, calibrate=False),
            "majority": majority_baseline,
        },
    )
    np.testing.assert_allclose(results["xgb"].proba.sum(axis=1), 1.0)
    assert (results["xgb"].proba.argmax(axis=1) == y).mean() > 0.75


def test_refit_is_the_model_fitted_on_every_region(staged_rows):
    X, y, regions = staged_rows

    def make():
        return StageClassifier(n_estimators=20, calibrate=False, seed=4)

    results = leave_one_region_out(X, y, regions, {"xgb": make}, n_jobs=2, refit="xgb")
    alone = make().fit(X, y, regions)
    np.testing.assert_array_equal(results["xgb"].refitted.predict_proba(X), alone.predict_proba(X))
    assert len(results["xgb"].folds) == 6
    assert leave_one_region_out(X, y, regions, {"xgb": make})["xgb"].refitted is None


def test_a_region_holding_a_stages_only_rows_can_be_held_out(rare_stage_rows):
    from models.estimators import logistic_baseline

    X, y, regions = rare_stage_rows
    make = {
        "xgb": lambda: StageClassifier(n_estimators=10, tuning_budget=1, seed=0),
        "logistic_regression": lambda: logistic_baseline(0),
        "majority": majority_baseline,
    }
    results = leave_one_region_out(X, y, regions, make, refit="xgb")
    held_out = regions == "r0"  # its fold trains on stages {0, 1} only
    for result in results.values():
        np.testing.assert_allclose(result.proba.sum(axis=1), 1.0)
        assert (result.proba[held_out, 3] == 0).all()
        assert (result.proba[:, [2, 4]] == 0).all()
        assert [f["region"] for f in result.folds] == ["r0", "r1", "r2", "r3"]
    xgb = results["xgb"]
    # Away from r0 the rows are stages 0 and 1, readable from "growth".
    assert (xgb.proba[~held_out].argmax(axis=1) == y[~held_out]).mean() > 0.9
    np.testing.assert_array_equal(xgb.refitted.classes_, [0, 1, 3])


def test_fold_metrics_are_those_of_the_held_out_rows(staged_rows):
    X, y, regions = staged_rows
    res = leave_one_region_out(X, y, regions, {"logit": lambda: logistic_baseline(0)})["logit"]
    for fold in res.folds:
        held = regions == fold["region"]
        expected = stage_metrics(y[held], res.proba[held])
        assert fold["accuracy"] == pytest.approx(expected["accuracy"])
        assert fold["macro_f1"] == pytest.approx(expected["macro_f1"])
