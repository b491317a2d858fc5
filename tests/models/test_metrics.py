import numpy as np
import pytest

from models.metrics import (
    adjacent_accuracy,
    confusion,
    expected_calibration_error,
    per_region,
    stage_metrics,
)


def one_hot(ids, n=5):
    out = np.zeros((len(ids), n))
    out[np.arange(len(ids)), ids] = 1.0
    return out


def test_perfect_predictions_score_one():
    y = np.array([0, 1, 2, 3, 4, 0, 1])
    m = stage_metrics(y, one_hot(y))
    assert m["macro_f1"] == 1.0
    assert m["balanced_accuracy"] == 1.0
    assert m["adjacent_accuracy"] == 1.0
    assert m["ece"] == pytest.approx(0.0)
    assert m["recall"]["renewal"] == 1.0
    assert m["support"]["emerging"] == 2


def test_adjacent_accuracy_counts_one_step_on_the_life_cycle():
    y = np.array([0, 1, 2, 3, 4])
    pred = np.array([1, 3, 2, 4, 0])  # ok, two steps, ok, ok, four steps
    assert adjacent_accuracy(y, pred) == pytest.approx(3 / 5)


def test_ece_of_overconfident_model():
    # always 90 % sure, right half the time: a gap of 0.4
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(y, proba) == pytest.approx(0.4)


def test_ece_weights_bins_by_count():
    y = np.array([0, 0, 0, 1])
    proba = np.array([[0.55, 0.45], [0.55, 0.45], [0.95, 0.05], [0.95, 0.05]])
    # bin 0.55: both right -> gap 0.45; bin 0.95: one of two right -> gap 0.45
    assert expected_calibration_error(y, proba) == pytest.approx(0.45)


def test_log_loss_is_finite_for_certain_wrong_answers():
    m = stage_metrics(np.array([0, 1]), one_hot([1, 0]))
    assert np.isfinite(m["log_loss"]) and m["log_loss"] > 10


def test_confusion_has_stage_names():
    cm = confusion(np.array([0, 0, 3]), np.array([0, 1, 3]))
    assert cm.loc["emerging", "growth"] == 1
    assert cm.loc["decline", "decline"] == 1
    assert cm.to_numpy().sum() == 3


def test_per_region_scores_only_stages_the_region_shows():
    regions = np.array(["a", "a", "b", "b"])
    y = np.array([0, 1, 2, 2])
    proba = one_hot([0, 1, 2, 3])
    table = per_region(regions, y, proba).set_index("region")
    assert table.loc["a", "macro_f1"] == 1.0
    assert table.loc["b", "accuracy"] == 0.5
