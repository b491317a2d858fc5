import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from models.dataset import model_features, row_counts, training_set


def frames(stages):
    keys = pd.DataFrame({"region": list("aabbcc"), "cluster": list("xyxyxy"), "year": 2020})
    features = keys.assign(f1=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], f2=np.nan, text="t")
    labels = keys.assign(stage=stages)
    return features, labels


def test_inner_join_excludes_regions_and_maps_stage_ids():
    features, labels = frames(["emerging", "growth", "mature", "decline", "renewal", "growth"])
    data = training_set(features, labels.iloc[:5], ["f1"], exclude_regions=["a"])
    assert data.keys["region"].tolist() == ["b", "b", "c"]
    np.testing.assert_array_equal(data.y, [2, 3, 4])
    np.testing.assert_array_equal(data.X["f1"], [3.0, 4.0, 5.0])


def test_model_features_skip_empty_and_text_columns():
    features, _ = frames(["emerging"] * 6)
    assert model_features(features, ["f1", "f2", "text", "absent"]) == ["f1"]


def test_too_few_stages_is_a_clear_error():
    features, labels = frames(["growth", "growth", "mature", "mature", "growth", "mature"])
    with pytest.raises(InputError) as err:
        training_set(features, labels, ["f1"])
    assert str(err.value) == (
        "column 'stage': the labels hold 2 stage(s) (growth, mature); a stage classifier needs "
        "at least three: give expert labels (data.labels) or choose another labels.source"
    )


def test_training_rows_follow_the_keys_whatever_the_input_order():
    features, labels = frames(["emerging", "growth", "mature", "decline", "renewal", "growth"])
    shuffled = features.sample(frac=1.0, random_state=1)
    data = training_set(shuffled, labels, ["f1"])
    assert list(zip(data.keys["region"], data.keys["cluster"], strict=True)) == [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
        ("b", "y"),
        ("c", "x"),
        ("c", "y"),
    ]
    np.testing.assert_array_equal(data.X["f1"], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_row_counts_say_where_each_comparative_row_went():
    features, labels = frames(["emerging", "growth", "mature", "decline", "renewal", "growth"])
    change = np.array([True, True, False, True, True, True])
    # region a is the target; b's first row has no change; c's last row has no label
    counts = row_counts(features, change, labels.iloc[:5], exclude_regions=["a"])
    assert counts == {"comparative": 4, "first_year": 1, "unlabelled": 1, "used": 2}
