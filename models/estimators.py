"""The stage classifiers: the tuned, calibrated XGBoost model and the baselines beside it.

Every estimator here takes ``fit(X, y, groups)`` with integer stage ids and returns
``predict_proba`` with one column per stage of the vocabulary (stages never seen in training get
probability 0), so that all of them can be scored on the same folds by the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, ParameterSampler
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from models.calibration import apply_temperature, fit_temperature
from models.defaults import DEFAULT_XGB
from models.metrics import N_STAGES, expected_calibration_error, macro_f1

# Ranges for the nested search; centred on settings that suit a few thousand rows.
SEARCH_SPACE: dict[str, Any] = {
    "max_depth": randint(2, 7),
    "learning_rate": loguniform(0.02, 0.3),
    "n_estimators": randint(60, 300),
    "min_child_weight": loguniform(0.5, 20),
    "subsample": uniform(0.6, 0.4),
    "colsample_bytree": uniform(0.5, 0.5),
    "reg_lambda": loguniform(0.1, 20),
}


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Sample weights that give every stage the same total weight."""
    return compute_sample_weight("balanced", np.asarray(y))


def encode_stages(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stage ids present in ``y`` (ascending) and ``y`` as positions 0..k-1 among them.

    XGBoost's classifier accepts only the labels 0..k-1, all of them present, so every fit (the
    final one, each inner tuning fold, each outer fold) encodes its own rows: a fold that lacks a
    stage must not leave a gap. ``_expand`` maps the k columns back onto the vocabulary.
    """
    classes, codes = np.unique(np.asarray(y, dtype=int), return_inverse=True)
    return classes, codes


def _expand(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Columns for the classes seen in training, placed into all N_STAGES columns."""
    full = np.zeros((proba.shape[0], N_STAGES))
    full[:, np.asarray(classes, dtype=int)] = proba
    return full


class StageClassifier(ClassifierMixin, BaseEstimator):
    """XGBoost on the stage features, tuned by a group-aware random search, then calibrated.

    The configured settings and ``tuning_budget`` random draws from ``SEARCH_SPACE`` are scored
    by the macro-F1 of their out-of-fold predictions on ``inner_folds`` folds grouped by region,
    inside whatever data ``fit`` is given (so under an outer cross-validation the held-out region
    never takes part); the best is refitted on all of it. Temperature scaling is fitted on the
    winner's out-of-fold predictions and kept only when it lowers their expected calibration
    error.
    """

    def __init__(
        self,
        n_estimators: int = DEFAULT_XGB.n_estimators,
        max_depth: int = DEFAULT_XGB.max_depth,
        learning_rate: float = DEFAULT_XGB.learning_rate,
        subsample: float = DEFAULT_XGB.subsample,
        colsample_bytree: float = DEFAULT_XGB.colsample_bytree,
        min_child_weight: float = DEFAULT_XGB.min_child_weight,
        reg_lambda: float = DEFAULT_XGB.reg_lambda,
        max_bin: int = DEFAULT_XGB.max_bin,
        tuning_budget: int = DEFAULT_XGB.tuning_budget,
        inner_folds: int = DEFAULT_XGB.inner_folds,
        calibrate: bool = DEFAULT_XGB.calibrate,
        seed: int = DEFAULT_XGB.seed,
        n_jobs: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.tuning_budget = tuning_budget
        self.inner_folds = inner_folds
        self.calibrate = calibrate
        self.seed = seed
        self.n_jobs = n_jobs

    def _xgb(self, **overrides: Any) -> xgb.XGBClassifier:
        params = {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
        }
        params.update(overrides)
        return xgb.XGBClassifier(
            objective="multi:softprob",
            tree_method="hist",
            max_bin=self.max_bin,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            **params,
        )

    def _configured(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SEARCH_SPACE}

    def candidates(self) -> list[dict[str, Any]]:
        """The configured settings first, then ``tuning_budget`` random draws around them."""
        drawn = ParameterSampler(SEARCH_SPACE, self.tuning_budget, random_state=self.seed)
        plain = [{k: (v.item() if hasattr(v, "item") else v) for k, v in d.items()} for d in drawn]
        return [self._configured(), *plain]

    def fit(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray) -> StageClassifier:
        y = np.asarray(y, dtype=int)
        groups = np.asarray(groups)
        self.classes_, encoded = encode_stages(y)
        weights = balanced_weights(y)
        n_splits = min(self.inner_folds, len(np.unique(groups)))
        self.best_params_: dict[str, Any] = self._configured()
        self.temperature_ = 1.0
        self.tuning_: list[dict[str, Any]] = []
        if n_splits >= 2 and (self.tuning_budget > 0 or self.calibrate):
            # The configured settings compete with the draws, so tuning never settles for a
            # setting the inner folds rate below them; the winner's out-of-fold probabilities
            # then serve the calibration, with no further fits.
            best_score, best_proba, seen = -np.inf, None, None
            for params in self.candidates():
                proba, known = self._oof_proba(X, y, groups, n_splits, params)
                score = macro_f1(y, proba.argmax(axis=1))
                self.tuning_.append({**params, "inner_macro_f1": score})
                if score > best_score:
                    best_score, best_proba, seen = score, proba, known
                    self.best_params_ = params
            if self.calibrate and seen.any():
                # Only rows whose stage their inner fold could predict: a stage absent from a
                # fold's training rows has probability 0 there, and log 0 would swamp the fit.
                log_proba = np.log(np.clip(best_proba[np.ix_(seen, self.classes_)], 1e-12, None))
                self._calibrate(log_proba, encoded[seen])
        else:
            # nothing competed: the one setting used, unscored, so the record is never empty
            self.tuning_.append({**self.best_params_, "inner_macro_f1": float("nan")})
        self.model_ = self._fit_xgb(X, encoded, weights, self.best_params_)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _fit_xgb(
        self, X: pd.DataFrame, encoded: np.ndarray, w: np.ndarray, params: dict[str, Any]
    ) -> xgb.XGBClassifier:
        """XGBoost on labels 0..k-1 (``encode_stages``); ``num_class`` is set here because the
        wrapper sets it only for k > 2, and multi:softprob needs it for one or two classes."""
        model = self._xgb(num_class=int(encoded.max()) + 1, **params)
        return model.fit(X, encoded, sample_weight=w)

    def _calibrate(self, log_proba: np.ndarray, y: np.ndarray) -> None:
        # softmax(log p / T) = softmax(margin / T): the log-probabilities serve as margins.
        temperature = fit_temperature(log_proba, y)
        raw = expected_calibration_error(y, apply_temperature(log_proba, 1.0))
        scaled = expected_calibration_error(y, apply_temperature(log_proba, temperature))
        if scaled < raw:
            self.temperature_ = temperature
        self.calibration_ = {"ece_raw": raw, "ece_scaled": scaled, "temperature": temperature}

    def _oof_proba(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        groups: np.ndarray,
        n_splits: int,
        params: dict[str, Any],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold probabilities over all N_STAGES of one setting on region-grouped inner
        folds, and per row whether its stage was among its fold's training stages. Each fold is
        encoded and weighted on its own rows, since grouping by region can leave a rare stage out
        of a fold's training rows (it then gets probability 0 in that fold)."""
        # float32, as XGBoost gives them: the calibration's log-probabilities, and so the model,
        # stay bit for bit what they were when scikit-learn's cross_val_predict assembled them.
        proba = np.zeros((len(y), N_STAGES), dtype=np.float32)
        seen = np.zeros(len(y), dtype=bool)
        for train, test in GroupKFold(n_splits=n_splits).split(X, y, groups):
            classes, encoded = encode_stages(y[train])
            model = self._fit_xgb(X.iloc[train], encoded, balanced_weights(y[train]), params)
            # XGBoost's wrapper reads a one-class booster as binary; one class is certainty.
            fold = model.predict_proba(X.iloc[test]) if len(classes) > 1 else 1.0
            proba[np.ix_(test, classes)] = fold
            seen[test] = np.isin(y[test], classes)
        return proba, seen

    @property
    def booster(self) -> xgb.Booster:
        return self.model_.get_booster()

    def predict_margin(self, X: pd.DataFrame) -> np.ndarray:
        """(n, k) margins, one column per stage in ``classes_`` (a one-class booster gives a
        vector)."""
        return self.model_.predict(X, output_margin=True).reshape(len(X), -1)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return _expand(apply_temperature(self.predict_margin(X), self.temperature_), self.classes_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


class WeightedBaseline(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier, fitted with stage-balanced sample weights unless told not to."""

    def __init__(
        self, estimator: BaseEstimator, weight_param: str | None = "sample_weight"
    ) -> None:
        self.estimator = estimator
        self.weight_param = weight_param

    def fit(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None):
        self.classes_, encoded = encode_stages(y)
        if len(self.classes_) == 1:
            # Nothing to learn, and some estimators (logistic regression) refuse one class.
            self.model_ = DummyClassifier(strategy="prior").fit(X, encoded)
            return self
        self.model_ = clone(self.estimator)
        weights = {self.weight_param: balanced_weights(encoded)} if self.weight_param else {}
        self.model_.fit(X, encoded, **weights)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return _expand(self.model_.predict_proba(X), self.classes_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """A rule-based labeller as a classifier: nothing to learn, certainty on its one answer."""

    def __init__(self, rule: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.rule = rule

    def fit(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None):
        self.classes_ = np.arange(N_STAGES)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        stages = np.asarray(self.rule(X), dtype=int)
        proba = np.zeros((len(X), N_STAGES))
        proba[np.arange(len(X)), stages] = 1.0
        return proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.rule(X), dtype=int)


def logistic_baseline(seed: int) -> WeightedBaseline:
    """Multinomial logistic regression with median imputation (plus missing flags) and scaling."""
    pipe = Pipeline(
        [
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            ("logit", LogisticRegression(max_iter=3000, C=0.5, random_state=seed)),
        ]
    )
    return WeightedBaseline(pipe, weight_param="logit__sample_weight")


def forest_baseline(seed: int, n_jobs: int = 1) -> WeightedBaseline:
    """A random forest; scikit-learn's trees route missing values natively."""
    forest = RandomForestClassifier(
        n_estimators=300, min_samples_leaf=3, random_state=seed, n_jobs=n_jobs
    )
    return WeightedBaseline(forest)


def majority_baseline() -> WeightedBaseline:
    """Predicts the most frequent stage with the training stage shares as probabilities.

    Unweighted on purpose: balanced weights would make every stage equally frequent.
    """
    return WeightedBaseline(DummyClassifier(strategy="prior"), weight_param=None)
