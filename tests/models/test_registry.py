import math

import pytest

from models.registry import Champion, champion_decision

SAME = "a1b2c3"


def test_first_version_moves_when_it_reaches_the_gate():
    move, reason = champion_decision(0.7, 0.5, None, SAME)
    assert move and "no champion" in reason


def test_below_gate_never_moves():
    move, reason = champion_decision(0.4, 0.5, None, SAME)
    assert not move and "below the gate" in reason


def test_worse_than_champion_does_not_move():
    move, reason = champion_decision(0.69, 0.5, Champion("3", 0.70, SAME), SAME)
    assert not move and "champion's 0.7000" in reason and "version 3" in reason


def test_equal_to_champion_moves():
    assert champion_decision(0.70, 0.5, Champion("3", 0.70, SAME), SAME)[0]


def test_nan_never_moves():
    assert not champion_decision(math.nan, 0.0, None, SAME)[0]


@pytest.mark.parametrize("new_f1", [0.60, 0.99])
def test_a_champion_of_other_labelled_rows_stays(new_f1):
    # 0.60 on one's own regions is no worse than 0.83 on the synthetic world, and 0.99 from a
    # model copying a rule's weak labels is no better: neither moves the alias.
    synthetic = Champion("12", 0.83, "5ynth")
    move, reason = champion_decision(new_f1, 0.5, synthetic, "9e4a")
    assert not move
    assert reason == (
        f"macro-F1 {new_f1:.4f} reaches the gate 0.5000, but the champion (version 12) was "
        "cross-validated on other labelled rows (data hash 5ynth, this run 9e4a), so the "
        f"macro-F1 {new_f1:.4f} and 0.8300 do not say which is better; the champion stays"
    )
    move, reason = champion_decision(0.40, 0.5, synthetic, "9e4a")
    assert not move and "below the gate" in reason


def test_without_both_hashes_the_champion_stays():
    old = Champion("4", 0.9, None)  # registered before the hash was recorded
    move, reason = champion_decision(0.95, 0.5, old, SAME)
    assert not move and "the champion (version 4) records no hash" in reason
    move, reason = champion_decision(0.95, 0.5, Champion("4", 0.9, SAME), None)
    assert not move and "this run records no hash" in reason
    move, reason = champion_decision(0.6, 0.5, Champion("4", None, SAME), SAME)
    assert move and "records no macro-F1" in reason


def test_same_rows_are_compared():
    move, reason = champion_decision(0.71, 0.5, Champion("3", 0.70, SAME), SAME)
    assert move and reason.endswith("the champion's 0.7000 on the same labelled rows")


def test_exactly_at_the_gate_moves():
    move, reason = champion_decision(0.5, 0.5, None, SAME)
    assert move and "reaches the gate" in reason
