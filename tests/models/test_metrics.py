import numpy as np
import pytest

from models.metrics import (
    adjacent_accuracy,
    confusion,
    confusion_counts,
    expected_calibration_error,
    macro_f1_lead,
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
    pred = np.array([1, 3, 2, 4, 0])  # ok, two steps, ok, ok (decline-renewal), no
    assert adjacent_accuracy(y, pred) == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    ("truth", "predicted", "adjacent"),
    [
        ("emerging", "growth", True),
        ("growth", "mature", True),
        ("mature", "decline", True),
        ("emerging", "mature", False),
        ("growth", "decline", False),
        ("emerging", "decline", False),
        # renewal branches off a mature or declining cluster and leads into new growth
        ("renewal", "mature", True),
        ("renewal", "decline", True),
        ("renewal", "growth", True),
        ("renewal", "emerging", False),
    ],
)
def test_renewal_is_one_step_from_mature_decline_and_growth(truth, predicted, adjacent):
    from features.stages import STAGE_ID

    for a, b in [(truth, predicted), (predicted, truth)]:
        y, pred = np.array([STAGE_ID[a]]), np.array([STAGE_ID[b]])
        assert adjacent_accuracy(y, pred) == float(adjacent)


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


def test_log_loss_is_none_for_a_model_certain_of_every_answer():
    # a rule's one wrong answer makes its log loss infinite: no clipped figure stands in for it
    assert stage_metrics(np.array([0, 1]), one_hot([1, 0]))["log_loss"] is None
    assert stage_metrics(np.array([0, 1]), one_hot([0, 1]))["log_loss"] is None
    proba = np.array([[0.8, 0.2, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])
    assert stage_metrics(np.array([0, 1]), proba)["log_loss"] == pytest.approx(
        -(np.log(0.8) + np.log(0.5)) / 2, abs=1e-5
    )


def test_confusion_has_stage_names():
    cm = confusion(np.array([0, 0, 3]), np.array([0, 1, 3]))
    assert cm.index.name == "true_stage"
    assert cm.loc["emerging", "predicted_growth"] == 1
    assert cm.loc["decline", "predicted_decline"] == 1
    assert cm.to_numpy().sum() == 3
    counts = confusion_counts(np.array([0, 0, 3]), np.array([0, 1, 3]))
    assert counts["emerging"] == {
        "emerging": 1,
        "growth": 1,
        "mature": 0,
        "decline": 0,
        "renewal": 0,
    }
    assert counts["decline"]["decline"] == 1 and counts["growth"]["emerging"] == 0


def test_per_region_scores_only_stages_the_region_shows():
    regions = np.array(["a", "a", "b", "b"])
    y = np.array([0, 1, 2, 2])
    proba = one_hot([0, 1, 2, 3])
    table = per_region(regions, y, proba).set_index("region")
    assert table.loc["a", "macro_f1"] == 1.0
    assert table.loc["b", "accuracy"] == 0.5


def test_per_region_ece_can_be_large_where_the_pooled_one_is_zero():
    # 90 % sure everywhere: right every time in a, in b only 80 % of the time, so pooled the
    # accuracy is 0.9 = the confidence while each region misses it by 0.1
    regions = np.array(["a"] * 10 + ["b"] * 10)
    y = np.zeros(20, dtype=int)
    y[[10, 11]] = 1
    proba = np.tile([0.9, 0.1, 0, 0, 0], (20, 1))
    assert expected_calibration_error(y, proba) == pytest.approx(0.0)
    table = per_region(regions, y, proba).set_index("region")
    assert table["ece"].tolist() == pytest.approx([0.1, 0.1])


def noisy_proba(y, wrong, seed):
    """One-hot predictions that are wrong (shifted by one stage) where ``wrong`` is true."""
    rng = np.random.default_rng(seed)
    pred = np.where(wrong, (y + 1 + rng.integers(0, 4, len(y))) % 5, y)
    return one_hot(pred)


def test_lead_is_the_difference_of_the_two_macro_f1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    regions = np.repeat(["a", "b", "c", "d", "e", "f"], 50)
    model = noisy_proba(y, rng.random(300) < 0.2, 1)
    baseline = noisy_proba(y, rng.random(300) < 0.4, 2)
    lead = macro_f1_lead(y, model, baseline, regions, n_boot=500, seed=3)
    expected = stage_metrics(y, model)["macro_f1"] - stage_metrics(y, baseline)["macro_f1"]
    assert lead["macro_f1"] == pytest.approx(expected, abs=1e-12)
    assert lead["ci_low"] < lead["macro_f1"] < lead["ci_high"]
    assert lead["ci_low"] > 0  # 20 % against 40 % wrong is no accident over 300 rows
    assert lead["regions"] == 6 and lead["n_boot"] == 500 and lead["level"] == 0.95


def test_lead_interval_holds_only_leads_of_resampled_regions():
    # Two regions: every draw is (a, a), (b, b) or (a, b), so each percentile is the lead of one
    # of those three samples, each scored as scikit-learn does.
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])
    regions = np.array(["a"] * 5 + ["b"] * 7)
    model = one_hot([0, 1, 2, 3, 3, 0, 1, 2, 2, 4, 1, 1])
    baseline = one_hot([0, 2, 2, 3, 3, 1, 1, 0, 3, 4, 0, 0])

    def lead_on(rows):
        yy = np.concatenate([y[regions == r] for r in rows])
        m = np.concatenate([model[regions == r] for r in rows])
        b = np.concatenate([baseline[regions == r] for r in rows])
        return stage_metrics(yy, m)["macro_f1"] - stage_metrics(yy, b)["macro_f1"]

    possible = [lead_on(rows) for rows in (["a", "a"], ["b", "b"], ["a", "b"])]
    lead = macro_f1_lead(y, model, baseline, regions, n_boot=200, seed=0)
    for bound in (lead["ci_low"], lead["ci_high"]):
        assert min(abs(bound - p) for p in possible) < 1e-12
    assert lead["ci_low"] < lead["ci_high"]


def test_lead_of_a_model_over_itself_is_zero_and_seeded():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 120)
    regions = np.repeat(["a", "b", "c"], 40)
    proba = noisy_proba(y, rng.random(120) < 0.3, 5)
    same = macro_f1_lead(y, proba, proba, regions, n_boot=100, seed=1)
    assert (same["macro_f1"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    assert same["regions_won"] == same["regions_lost"] == 0
    other = noisy_proba(y, rng.random(120) < 0.3, 6)
    first = macro_f1_lead(y, proba, other, regions, n_boot=100, seed=1)
    assert first == macro_f1_lead(y, proba, other, regions, n_boot=100, seed=1)
    assert first != macro_f1_lead(y, proba, other, regions, n_boot=100, seed=2)


def test_lead_counts_regions_won_and_lost_and_can_skip_the_bootstrap():
    y = np.array([0, 1, 0, 1, 0, 1])
    regions = np.array(["a", "a", "b", "b", "c", "c"])
    model = one_hot([0, 1, 1, 1, 0, 1])  # right in a, half right in b, right in c
    baseline = one_hot([0, 0, 0, 1, 0, 1])  # half right in a, right in b, right in c
    lead = macro_f1_lead(y, model, baseline, regions, n_boot=0)
    assert (lead["regions_won"], lead["regions_lost"], lead["regions"]) == (1, 1, 3)
    assert "ci_low" not in lead and "ci_high" not in lead


def test_macro_f1_averages_only_the_stages_that_occur():
    # Quadrant-style labels: renewal never occurs. One decline row is called mature.
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pred = np.array([0, 0, 1, 1, 2, 2, 3, 2])
    m = stage_metrics(y, one_hot(pred))
    # F1: emerging 1, growth 1, mature 2*2/(2*2+1) = 0.8, decline 2*1/(2*1+1) = 2/3; renewal none
    assert m["macro_f1"] == pytest.approx((1 + 1 + 0.8 + 2 / 3) / 4)
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert m["precision"] == {
        "emerging": 1.0,
        "growth": 1.0,
        "mature": pytest.approx(2 / 3),
        "decline": 1.0,
        "renewal": None,
    }
    assert m["recall"]["decline"] == 0.5 and m["recall"]["renewal"] is None
    assert m["support"]["renewal"] == 0


def test_a_predicted_stage_the_truth_lacks_still_counts():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 4, 1, 1])  # renewal predicted once, wrongly; mature neither
    m = stage_metrics(y, one_hot(pred))
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["precision"]["renewal"] == 0.0 and m["recall"]["renewal"] is None
    assert m["precision"]["mature"] is None and m["recall"]["mature"] is None
    assert per_region(np.array(["a"] * 4), y, one_hot(pred))["macro_f1"][0] == m["macro_f1"]


def test_lead_averages_only_the_stages_that_occur():
    y = np.tile([0, 1, 2, 3], 3)  # no renewal anywhere
    regions = np.repeat(["a", "b", "c"], 4)
    perfect, mature = one_hot(y), one_hot(np.full(12, 2))
    lead = macro_f1_lead(y, perfect, mature, regions, n_boot=50, seed=0)
    # perfect: 1 over four stages; always mature: F1 2*3/(2*3+9) = 0.4 for mature, 0 for three
    assert lead["macro_f1"] == pytest.approx(1.0 - 0.4 / 4)
    # every draw of regions holds the same stage mix, so the lead never moves
    assert lead["ci_low"] == pytest.approx(0.9) and lead["ci_high"] == pytest.approx(0.9)
    expected = stage_metrics(y, perfect)["macro_f1"] - stage_metrics(y, mature)["macro_f1"]
    assert lead["macro_f1"] == pytest.approx(expected, abs=1e-12)


def test_ece_weights_each_bin_by_its_rows():
    # 9 right at 0.9 (gap 0.1) and 1 wrong at 0.5 (gap 0.5): 0.9 * 0.1 + 0.1 * 0.5
    sure = [0.9] + [0.025] * 4
    unsure = [0.5] + [0.125] * 4
    proba = np.array([sure] * 9 + [unsure])
    y = np.array([0] * 9 + [1])
    assert expected_calibration_error(y, proba) == pytest.approx(0.14)


def test_ece_uses_fifteen_bins_by_default():
    # 0.61 and 0.69 fall in bins 9 and 10 of 15 (one bin of 10): gaps 0.39 and 0.69
    def row(c):
        return [c] + [(1 - c) / 4] * 4

    proba = np.array([row(0.61), row(0.69)])
    assert expected_calibration_error(np.array([0, 1]), proba) == pytest.approx(0.54)


def test_lead_interval_is_the_central_level_of_the_bootstrap_leads():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 160)
    regions = np.repeat([f"r{i}" for i in range(8)], 20)
    model = noisy_proba(y, rng.random(160) < 0.3, 2)
    baseline = noisy_proba(y, rng.random(160) < 0.45, 3)
    lead = macro_f1_lead(y, model, baseline, regions, n_boot=300, seed=0)
    # the same draws as the function: region counts, multinomial over the sorted region names
    names = np.unique(regions)
    draws = np.random.default_rng(0).multinomial(
        len(names), np.full(len(names), 1 / len(names)), 300
    )
    leads = []
    for counts in draws:
        rows = np.concatenate(
            [
                np.flatnonzero(regions == r)
                for r, c in zip(names, counts, strict=True)
                for _ in range(c)
            ]
        )
        leads.append(
            stage_metrics(y[rows], model[rows])["macro_f1"]
            - stage_metrics(y[rows], baseline[rows])["macro_f1"]
        )
    low, high = np.percentile(leads, [2.5, 97.5])
    assert lead["ci_low"] == pytest.approx(low, abs=1e-9)
    assert lead["ci_high"] == pytest.approx(high, abs=1e-9)
