import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from models.calibration import fit_temperature
from models.estimators import (
    RuleBaseline,
    StageClassifier,
    WeightedBaseline,
    forest_baseline,
    logistic_baseline,
    majority_baseline,
)


def test_stage_classifier_learns_and_is_deterministic(staged_rows):
    X, y, regions = staged_rows
    a = StageClassifier(n_estimators=40, tuning_budget=2, seed=1).fit(X, y, regions)
    b = StageClassifier(n_estimators=40, tuning_budget=2, seed=1).fit(X, y, regions)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # The configured settings and two draws were scored; the best of them was refitted.
    assert len(a.tuning_) == 3 and a.tuning_[0]["n_estimators"] == 40
    best = max(a.tuning_, key=lambda t: t["inner_macro_f1"])
    assert a.best_params_ == {k: v for k, v in best.items() if k != "inner_macro_f1"}
    assert a.model_.get_params()["max_depth"] == a.best_params_["max_depth"]
    assert (a.predict(X) == y).mean() > 0.8
    np.testing.assert_allclose(a.predict_proba(X).sum(axis=1), 1.0)


def test_calibration_is_kept_only_when_it_lowers_ece(staged_rows):
    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=40, calibrate=True, seed=1).fit(X, y, regions)
    cal = clf.calibration_
    if clf.temperature_ != 1.0:
        assert cal["ece_scaled"] < cal["ece_raw"]
    else:
        assert cal["ece_scaled"] >= cal["ece_raw"]


def test_missing_stage_in_training_gets_zero_probability(staged_rows):
    X, y, regions = staged_rows
    keep = y != 4
    clf = StageClassifier(n_estimators=20, calibrate=False).fit(X[keep], y[keep], regions[keep])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 5)
    assert (proba[:, 4] == 0).all()


def test_baselines_return_five_columns(staged_rows):
    X, y, regions = staged_rows
    for model in (logistic_baseline(0), forest_baseline(0, n_jobs=1)):
        proba = model.fit(X, y, regions).predict_proba(X)
        assert proba.shape == (len(X), 5)
        assert (model.predict(X) == y).mean() > 0.6


def test_majority_is_unweighted():
    X = pd.DataFrame({"a": np.zeros(10)})
    y = np.array([2] * 7 + [0] * 3)
    proba = majority_baseline().fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba[0], [0.3, 0, 0.7, 0, 0])


def test_rule_baseline_is_certain_of_its_answer():
    X = pd.DataFrame({"a": [1.0, -1.0]})
    rule = RuleBaseline(lambda f: np.where(f["a"] > 0, 1, 3))
    np.testing.assert_array_equal(rule.fit(X, None).predict_proba(X)[:, [1, 3]], [[1, 0], [0, 1]])


def test_without_a_budget_the_configured_settings_are_fitted(staged_rows):
    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=30, max_depth=3, tuning_budget=0, calibrate=False)
    clf.fit(X, y, regions)
    assert clf.best_params_["max_depth"] == 3
    # the record names the one setting used, with no inner score
    assert len(clf.tuning_) == 1 and clf.tuning_[0]["max_depth"] == 3
    assert np.isnan(clf.tuning_[0]["inner_macro_f1"])
    assert clf.model_.get_params()["n_estimators"] == 30


def test_calibration_uses_the_inner_out_of_fold_predictions(staged_rows):
    from sklearn.model_selection import GroupKFold

    from models.calibration import fit_temperature
    from models.estimators import balanced_weights

    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=30, tuning_budget=0, calibrate=True, seed=2)
    clf.fit(X, y, regions)
    w = balanced_weights(y)
    oof = np.zeros((len(y), 5))
    for train, test in GroupKFold(n_splits=3).split(X, y, regions):
        fold = clf._xgb().fit(X.iloc[train], y[train], sample_weight=w[train])
        oof[test] = fold.predict(X.iloc[test], output_margin=True)
    # Margins and log-probabilities give the same softmax at every temperature.
    assert clf.calibration_["temperature"] == pytest.approx(fit_temperature(oof, y), rel=1e-4)


ESTIMATORS = {
    "xgboost": lambda: StageClassifier(n_estimators=10, tuning_budget=1, calibrate=True, seed=1),
    "logistic_regression": lambda: logistic_baseline(0),
    "random_forest": lambda: forest_baseline(0),
    "majority": majority_baseline,
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fits_any_subset_of_stages_and_answers_over_all_five(name, rare_stage_rows):
    X, y, regions = rare_stage_rows
    model = ESTIMATORS[name]().fit(X, y, regions)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba[:, [2, 4]] == 0).all()  # stages absent from training
    np.testing.assert_array_equal(model.classes_, [0, 1, 3])
    assert set(model.predict(X)) <= {0, 1, 3}
    if name == "majority":
        np.testing.assert_allclose(proba[0], np.bincount(y, minlength=5) / len(y))
    else:
        assert (model.predict(X) == y).mean() > 0.9  # every stage is readable from "growth"


@pytest.mark.parametrize("name", ESTIMATORS)
def test_one_stage_is_certainty_of_that_stage(name, rare_stage_rows):
    X, _, regions = rare_stage_rows
    y = np.full(len(X), 2)
    model = ESTIMATORS[name]().fit(X, y, regions)
    expected = np.zeros((len(X), 5))
    expected[:, 2] = 1.0
    np.testing.assert_allclose(model.predict_proba(X), expected, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X), y)


def german_like(y: np.ndarray) -> np.ndarray:
    """The stages of the reported crash: mature and growth common, a few renewal rows (here every
    eighth row), decline only in r0. Present ids 1..4 encode as 0..3, and an inner fold without
    r0 used to hand XGBoost the labels [0 1 3]."""
    out = np.select([y == 0, y == 1], [2, 1], default=3)
    out[np.arange(len(y)) % 8 == 5] = 4
    return out


@pytest.mark.parametrize("relabel", [None, german_like], ids=["0-1-3", "german-like"])
def test_tuning_and_calibration_survive_an_inner_fold_without_a_stage(rare_stage_rows, relabel):
    from sklearn.model_selection import GroupKFold

    X, y, regions = rare_stage_rows
    y = relabel(y) if relabel else y
    rare = 3  # every stage-3 row is in r0
    absent = [s for s in range(5) if s not in set(y)]
    clf = StageClassifier(n_estimators=10, tuning_budget=2, inner_folds=3, calibrate=True, seed=1)
    clf.fit(X, y, regions)
    assert len(clf.tuning_) == 3
    assert all(0.0 <= t["inner_macro_f1"] <= 1.0 for t in clf.tuning_)
    assert np.isfinite(clf.calibration_["temperature"]) and clf.temperature_ > 0
    # The inner fold that holds r0 out trains without stage 3: its rows get no stage-3
    # probability, while the folds that trained on r0 give it some.
    oof, seen = clf._oof_proba(X, y, regions, 3, clf.best_params_)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, rtol=1e-6)  # XGBoost's float32
    assert (oof[:, absent] == 0).all()
    r0_fold = next(test for _, test in GroupKFold(3).split(X, y, regions) if "r0" in regions[test])
    assert (oof[r0_fold, rare] == 0).all()
    others = np.setdiff1d(np.arange(len(y)), r0_fold)
    assert (oof[others, rare] > 0).all()
    assert set(clf.predict(X)) <= set(y)
    # Only the rows of the stage their fold never saw are unseen, and the temperature is fitted
    # without them: their probability 0 would otherwise dominate the log loss.
    unseen = np.zeros(len(y), dtype=bool)
    unseen[r0_fold] = y[r0_fold] == rare
    np.testing.assert_array_equal(seen, ~unseen)
    log_proba = np.log(np.clip(oof[np.ix_(seen, clf.classes_)], 1e-12, None))
    _, encoded = np.unique(y, return_inverse=True)
    assert clf.calibration_["temperature"] == fit_temperature(log_proba, encoded[seen])


def test_each_inner_fold_is_balanced_on_its_own_training_rows(rare_stage_rows, monkeypatch):
    X, y, regions = rare_stage_rows
    fits = []
    real = StageClassifier._fit_xgb

    def spy(self, X_fit, encoded, w, params):
        fits.append((encoded.copy(), w.copy()))
        return real(self, X_fit, encoded, w, params)

    monkeypatch.setattr(StageClassifier, "_fit_xgb", spy)
    StageClassifier(n_estimators=5, tuning_budget=0, inner_folds=3, seed=1).fit(X, y, regions)
    assert len(fits) == 4  # three inner folds, then the final fit
    for encoded, w in fits:
        totals = np.bincount(encoded, weights=w)
        np.testing.assert_allclose(totals, totals[0])  # every stage the same total weight


def test_a_temperature_that_raises_ece_is_not_kept():
    # inner out-of-fold probabilities, sharpened by a random power, and stages drawn from them:
    # the fitted temperature lowers log loss here but raises the ECE
    rng = np.random.default_rng(0)
    n = int(rng.integers(10, 60))
    p = rng.dirichlet(np.ones(5) * rng.uniform(0.2, 2), size=n)
    q = p ** rng.uniform(0.5, 2)
    q /= q.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(5, p=r) for r in q])
    clf = StageClassifier()
    clf.temperature_ = 1.0
    clf._calibrate(np.log(p), y)
    assert clf.calibration_["ece_scaled"] > clf.calibration_["ece_raw"]
    assert clf.calibration_["temperature"] != 1.0
    assert clf.temperature_ == 1.0


def test_a_tied_inner_score_keeps_the_configured_settings():
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(3), 100)
    X = pd.DataFrame({"a": y * 10.0 + rng.normal(0, 0.1, 300)})  # every setting scores the same
    clf = StageClassifier(tuning_budget=2, calibrate=False, seed=0, n_jobs=1)
    clf.fit(X, y, np.repeat(np.arange(3), 100))
    scores = {t["inner_macro_f1"] for t in clf.tuning_}
    assert len(clf.tuning_) == 3 and len(scores) == 1
    assert clf.best_params_ == clf._configured()


class _WeightSpy(ClassifierMixin, BaseEstimator):
    def fit(self, X, y, sample_weight=None):
        self.sample_weight_ = sample_weight
        self.classes_ = np.unique(y)
        return self


def test_weighted_baseline_fits_with_balanced_weights():
    y = np.array([0] * 8 + [2] * 2)
    X = pd.DataFrame({"a": np.arange(10.0)})
    model = WeightedBaseline(_WeightSpy()).fit(X, y)
    np.testing.assert_allclose(model.model_.sample_weight_, [10 / 16] * 8 + [10 / 4] * 2)


def test_logistic_baseline_learns_from_missingness():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    X.loc[y == 2, "a"] = np.nan  # only the missing flag tells stage 2 apart
    model = logistic_baseline(0).fit(X, y)
    assert (model.predict(X)[y == 2] == 2).all()


def test_max_bin_reaches_the_booster():
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(3), 40)
    X = pd.DataFrame({"a": y + rng.normal(0, 0.5, 120)})
    clf = StageClassifier(n_estimators=3, max_bin=8, tuning_budget=0, calibrate=False)
    clf.fit(X, y, np.repeat(np.arange(3), 40))
    config = json.loads(clf.booster.save_config())
    assert config["learner"]["gradient_booster"]["tree_train_param"]["max_bin"] == "8"
