import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from models.bundle import ModelMeta, StageModel, feature_ranges
from models.estimators import StageClassifier


def test_saved_model_predicts_what_the_estimator_predicts(tmp_path, staged_rows):
    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=30, seed=2).fit(X, y, regions)
    meta = ModelMeta(
        features=list(X.columns),
        classes=clf.classes_.tolist(),
        temperature=clf.temperature_,
        ranges=feature_ranges(X),
    )
    StageModel(clf.booster, meta).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.ubj"]
    loaded = StageModel.load(tmp_path)
    frame = X.assign(region="r", cluster="c", year=2020)
    np.testing.assert_allclose(loaded.predict_proba(frame), clf.predict_proba(X), atol=1e-6)
    out = loaded.predict_frame(frame.head(3))
    assert list(out.columns[:4]) == ["region", "cluster", "year", "stage"]
    assert out.filter(like="p_").sum(axis=1).round(6).eq(1).all()


def test_absent_feature_is_missing_and_text_is_an_error(tmp_path, staged_rows):
    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=10, calibrate=False).fit(X, y, regions)
    model = StageModel(clf.booster, ModelMeta(features=list(X.columns), classes=[0, 1, 2, 3, 4]))
    assert model.predict_proba(X.drop(columns=["noise_b"])).shape == (len(X), 5)
    with pytest.raises(InputError, match="column 'growth'"):
        model.predict_proba(X.assign(growth="high"))


def test_loading_a_folder_without_a_model_is_bad_input(tmp_path):
    with pytest.raises(InputError, match="not a clusterstage model folder"):
        StageModel.load(tmp_path)


def test_feature_ranges_are_robust_percentiles():
    X = pd.DataFrame({"a": np.arange(101, dtype=float), "b": np.nan})
    assert feature_ranges(X) == {"a": [1.0, 99.0]}


@pytest.mark.parametrize("stages", [[2], [1, 3]])
def test_saved_model_of_one_or_two_stages_scores_all_five(tmp_path, staged_rows, stages):
    X, _, regions = staged_rows
    y = np.resize(stages, len(X))
    clf = StageClassifier(n_estimators=10, seed=2).fit(X, y, regions)
    meta = ModelMeta(features=list(X.columns), classes=clf.classes_.tolist())
    meta.temperature = clf.temperature_
    StageModel(clf.booster, meta).save(tmp_path)
    proba = StageModel.load(tmp_path).predict_proba(X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-6)
    absent = [s for s in range(5) if s not in stages]
    assert (proba[:, absent] == 0).all()
    np.testing.assert_allclose(proba[:, stages].sum(axis=1), 1.0)
