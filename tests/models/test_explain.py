"""TreeSHAP contributions, the one-class fast path, drivers and the global views."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.stats import percentileofscore

from features.stages import STAGES
from models.bundle import ModelMeta, StageModel
from models.estimators import StageClassifier
from models.explain import (
    Contributions,
    all_stage_contributions,
    beeswarm_pngs,
    contributions,
    global_importance,
    percentile_among,
    runner_up_stages,
    top_drivers,
)
from models.fast_shap import ClassSplitExplainer, explainer_for, split_by_class

FEATURES = [
    "rd_intensity",
    "entry_rate",
    "lq",
    "emp_cagr_3y",
    "productivity",
    "sme_share",
    "export_intensity",
    "wage",
]


def toy_data(n: int = 400, seed: int = 1, classes: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose stage rises with rd_intensity + entry_rate; 5 % of values missing."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    X = X.mask(rng.random(X.shape) < 0.05)
    score = X["rd_intensity"].fillna(0) + X["entry_rate"].fillna(0) + 0.5 * rng.normal(size=n)
    cuts = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    return X, np.digitize(score, cuts)


def toy_model(
    n: int = 400, seed: int = 1, classes: int = 5, temperature: float = 1.7
) -> tuple[StageModel, pd.DataFrame, np.ndarray]:
    """A small real StageModel (50 rounds) on ``toy_data``; classes < 5 drops the last stages."""
    X, y = toy_data(n, seed, classes)
    clf = StageClassifier(tuning_budget=0, calibrate=False, n_estimators=50, seed=seed, n_jobs=1)
    clf.fit(X, y, np.arange(n) % 4)
    meta = ModelMeta(
        features=FEATURES,
        classes=[int(c) for c in clf.classes_],
        temperature=temperature,
    )
    return StageModel(clf.booster, meta), X, y


@pytest.fixture(scope="module")
def toy() -> tuple[StageModel, pd.DataFrame, np.ndarray]:
    return toy_model()


def _full(model: StageModel, X: pd.DataFrame) -> np.ndarray:
    return model.booster.predict(xgb.DMatrix(X, missing=np.nan), pred_contribs=True)


def test_additivity_for_every_stage(toy):
    model, X, _ = toy
    margins = model.margins(X)
    for k, stage in enumerate(STAGES):
        c = contributions(model, X, stages=stage)
        assert (c.stage == k).all()
        np.testing.assert_allclose(c.values.sum(axis=1) + c.base, margins[:, k], atol=1e-5)
        np.testing.assert_allclose(c.margin, margins[:, k], atol=1e-5)


def test_default_stage_is_the_predicted_one(toy):
    model, X, _ = toy
    c = contributions(model, X)
    predicted = model.predict_frame(X)["stage"].to_numpy()
    assert list(c.stage_name) == list(predicted)
    margins = model.margins(X)
    np.testing.assert_allclose(c.margin, margins[np.arange(len(X)), c.stage], atol=1e-5)
    # Temperature rescales the margin, never the ranking: the predicted stage has the top margin.
    assert (c.margin >= margins.max(axis=1) - 1e-6).all()


def test_fast_path_matches_xgboost_treeshap(toy):
    model, X, _ = toy
    full = _full(model, X)
    explainer = ClassSplitExplainer(model.booster)
    rng = np.random.default_rng(3)
    asked = rng.integers(0, 5, size=len(X))
    fast = explainer.contributions(X, asked)
    assert fast.shape == (len(X), len(FEATURES) + 1)
    assert np.abs(fast - full[np.arange(len(X)), asked, :]).max() <= 1e-5
    classes, own = explainer.predicted_contributions(X)
    assert (classes == model.margins(X).argmax(axis=1)).all()
    assert np.abs(own - full[np.arange(len(X)), classes, :]).max() <= 1e-5


def test_split_boosters_reproduce_each_class_margin(toy):
    model, X, _ = toy
    margins = model.margins(X)
    boosters = split_by_class(model.booster)
    assert len(boosters) == 5
    for k, b in enumerate(boosters):
        single = b.predict(xgb.DMatrix(X, missing=np.nan), output_margin=True)
        assert single.shape == (len(X),)
        np.testing.assert_allclose(single, margins[:, k], atol=1e-5)
        assert b.num_boosted_rounds() == model.booster.num_boosted_rounds()


def test_explainer_is_cached_per_booster(toy):
    model, _, _ = toy
    assert explainer_for(model.booster) is explainer_for(model.booster)


def test_stage_ids_and_missing_stages():
    model, X, y = toy_model(n=300, classes=4)  # stages 0..3 only: renewal never seen
    assert model.meta.classes == [0, 1, 2, 3]
    c = contributions(model, X, stages=np.full(len(X), 3))
    np.testing.assert_allclose(c.margin, model.margins(X)[:, 3], atol=1e-5)
    with pytest.raises(ValueError, match="renewal"):
        contributions(model, X, stages="renewal")
    with pytest.raises(ValueError, match="unknown stage"):
        contributions(model, X, stages="boom")
    with pytest.raises(ValueError, match="one per row"):
        contributions(model, X, stages=[0, 1])


def test_percentile_matches_scipy():
    rng = np.random.default_rng(0)
    ref = np.round(rng.normal(size=50), 1)  # with ties
    values = np.array([-5.0, ref[3], 0.0, 0.05, 9.0])
    got = percentile_among(values, np.append(ref, np.nan))
    want = [percentileofscore(ref, v, kind="mean") for v in values]
    np.testing.assert_allclose(got, want)
    assert np.isnan(percentile_among(np.array([np.nan]), ref)).all()
    assert np.isnan(percentile_among(np.array([1.0]), np.array([np.nan]))).all()


def test_top_drivers_order_values_and_percentiles():
    contribs = Contributions(
        values=np.array([[0.5, -2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.3]]),
        base=np.array([0.1, 0.2]),
        stage=np.array([1, 3]),
        features=["a", "b", "c", "d"],
    )
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, 0.0], "c": [3.0, 3.0], "d": [4.0, 10.0]})
    reference = pd.DataFrame(
        {"a": [0.0, 1.0, 2.0, 3.0], "b": [0.0] * 4, "c": [1.0] * 4, "d": [1.0, 2.0, 3.0, 4.0]}
    )
    drivers = top_drivers(contribs, X, reference, k=3)
    first = drivers[0]
    assert [d["feature"] for d in first] == ["b", "d", "a"]
    assert first[0] == {
        "feature": "b",
        "value": None,
        "percentile": None,
        "contribution": -2.0,
        "direction": "away from",
        "stage": "growth",
    }
    assert first[1]["percentile"] == pytest.approx(87.5)  # 4 among 1..4, ties half
    assert first[1]["direction"] == "towards"
    assert first[2]["percentile"] == pytest.approx(37.5)
    # zero contributions are never drivers
    assert [d["feature"] for d in drivers[1]] == ["d"]
    assert drivers[1][0]["stage"] == "decline"
    assert drivers[1][0]["percentile"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        top_drivers(contribs, X.iloc[:1], reference)


def test_top_drivers_on_a_model_agree_with_contributions(toy):
    model, X, _ = toy
    c = contributions(model, X.iloc[:20])
    drivers = top_drivers(c, X.iloc[:20], X, k=3)
    for i, row in enumerate(drivers):
        assert 1 <= len(row) <= 3
        biggest = np.sort(np.abs(c.values[i]))[::-1][: len(row)]
        np.testing.assert_allclose([abs(d["contribution"]) for d in row], biggest)
        assert all(d["stage"] == c.stage_name[i] for d in row)


def test_drivers_against_the_runner_up_are_the_difference_of_two_stages(toy):
    model, X, _ = toy
    rows = X.iloc[:40]
    runner = runner_up_stages(model, rows)
    margins = model.margins(rows)
    ranked = np.argsort(-margins, axis=1, kind="stable")
    assert (runner == np.asarray(model.meta.classes)[ranked[:, 1]]).all()
    own, versus = contributions(model, rows), contributions(model, rows, runner)
    full = _full(model, rows)
    drivers = top_drivers(own, rows, X, k=3, versus=versus)
    names = list(model.meta.features)
    for i, row in enumerate(drivers):
        for d in row:
            j = names.index(d["feature"])
            expected = full[i, own.stage[i], j] - full[i, runner[i], j]
            assert d["runner_up"] == STAGES[runner[i]]
            assert d["vs_runner_up"] == pytest.approx(expected, abs=1e-5)
    # Over every feature, plus the bases, the differences add up to the margin difference.
    gap = margins[np.arange(40), own.stage] - margins[np.arange(40), runner]
    total = (own.values - versus.values).sum(axis=1) + own.base - versus.base
    np.testing.assert_allclose(total, gap, atol=1e-5)
    assert "runner_up" not in top_drivers(own, rows, X, k=3)[0][0]


def test_global_importance_is_mean_abs_shap(toy):
    model, X, _ = toy
    table = global_importance(model, X)
    assert list(table.columns) == list(STAGES)
    assert set(table.index) == set(FEATURES)
    full = _full(model, X)[:, :, :-1]
    want = np.abs(full).mean(axis=0)  # (K, F)
    for k, stage in enumerate(STAGES):
        np.testing.assert_allclose(table.loc[FEATURES, stage].to_numpy(), want[k], rtol=1e-6)
    assert set(table.index[:2]) == {"rd_intensity", "entry_rate"}  # what the stage is built on
    assert (table.mean(axis=1).diff().dropna() <= 1e-12).all()


def test_all_stage_contributions_shape(toy):
    model, X, _ = toy
    out = all_stage_contributions(model, X.iloc[:7])
    assert out.shape == (7, 5, len(FEATURES) + 1)


def test_beeswarm_pngs_one_per_stage(toy):
    model, X, _ = toy
    pngs = beeswarm_pngs(model, X.iloc[:150], max_display=5)
    assert sorted(pngs) == sorted(STAGES)
    for png in pngs.values():
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(png) > 5000


def test_beeswarm_pngs_are_seeded_and_leave_numpy_global_state_alone(toy):
    model, X, _ = toy
    np.random.seed(123)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = beeswarm_pngs(model, X.iloc[:150], max_display=5, stages=["growth"])
    b = beeswarm_pngs(model, X.iloc[:150], max_display=5, stages=["growth"])
    c = beeswarm_pngs(model, X.iloc[:150], max_display=5, stages=["growth"], seed=1)
    assert a["growth"] == b["growth"]
    assert a["growth"] != c["growth"]  # the seed moves the jitter
    assert (np.random.get_state()[1] == before).all()  # noqa: NPY002


def test_empty_input(toy):
    model, X, _ = toy
    c = contributions(model, X.iloc[:0])
    assert c.values.shape == (0, len(FEATURES)) and c.stage.shape == (0,)
    assert top_drivers(c, X.iloc[:0], X) == []
    table = global_importance(model, X.iloc[:0])
    assert table.shape == (len(FEATURES), 5) and (table.to_numpy() == 0).all()
