import math

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


def test_a_champion_of_other_labelled_rows_is_not_compared():
    # The champion scored 0.83 on the synthetic world; 0.60 on one's own regions is no worse.
    synthetic = Champion("12", 0.83, "5ynth")
    move, reason = champion_decision(0.60, 0.5, synthetic, "9e4a")
    assert move
    assert reason == (
        "macro-F1 0.6000 reaches the gate 0.5000; the champion (version 12) was cross-validated "
        "on other labelled rows (data hash 5ynth, this run 9e4a), so its macro-F1 0.8300 is not "
        "compared"
    )
    # The gate still holds.
    move, reason = champion_decision(0.40, 0.5, synthetic, "9e4a")
    assert not move and "below the gate" in reason


def test_without_both_hashes_the_gate_alone_decides():
    old = Champion("4", 0.9, None)  # registered before the hash was recorded
    move, reason = champion_decision(0.6, 0.5, old, SAME)
    assert move and "the champion (version 4) records no hash" in reason
    move, reason = champion_decision(0.6, 0.5, Champion("4", 0.9, SAME), None)
    assert move and "this run records no hash" in reason
    move, reason = champion_decision(0.6, 0.5, Champion("4", None, SAME), SAME)
    assert move and "records no macro-F1" in reason
