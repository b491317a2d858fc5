import json

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from models.bundle import (
    YEAR_QUANTILES_FILE,
    ModelMeta,
    StageModel,
    feature_ranges,
    year_quantiles,
)
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


def test_year_quantiles_rank_among_the_same_years_rows():
    X = pd.DataFrame({"wage": np.r_[np.arange(40.0), 100.0 + np.arange(40.0)]})
    years = np.repeat([2001, 2024], 40)
    grids = year_quantiles(X, years)
    assert sorted(grids) == ["2001", "2024"]
    assert grids["2001"]["wage"][0] == 0.0 and grids["2001"]["wage"][-1] == 39.0
    assert grids["2024"]["wage"][50] == pytest.approx(119.5)
    # 10 of 2024 are too few to rank among: the nearest years are added
    few = year_quantiles(X.iloc[:50], years[:50])
    assert few["2024"]["wage"][0] == 0.0 and few["2024"]["wage"][-1] == 109.0
    assert few["2001"]["wage"][-1] == 39.0


def test_year_quantiles_sit_in_their_own_file_and_load_back(tmp_path, staged_rows):
    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=10, calibrate=False).fit(X, y, regions)
    grids = {"2020": {"growth": [float(v) for v in range(101)]}}
    meta = ModelMeta(features=list(X.columns), classes=[0, 1, 2, 3, 4], year_quantiles=grids)
    StageModel(clf.booster, meta).save(tmp_path)
    assert "year_quantiles" not in json.loads((tmp_path / "model.json").read_text())
    assert StageModel.load(tmp_path).meta.year_quantiles == grids
    # a model saved before per-year grids existed loads with none
    (tmp_path / YEAR_QUANTILES_FILE).unlink()
    assert StageModel.load(tmp_path).meta.year_quantiles == {}
    (tmp_path / YEAR_QUANTILES_FILE).write_text('{"next year": {}}', encoding="utf-8")
    with pytest.raises(InputError, match="not a clusterstage model folder"):
        StageModel.load(tmp_path)
    (tmp_path / YEAR_QUANTILES_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="does not map years to grids"):
        StageModel.load(tmp_path)
