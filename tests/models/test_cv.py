import numpy as np

from models.cv import leave_one_region_out
from models.estimators import StageClassifier, majority_baseline


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
