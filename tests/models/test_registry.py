import math

from models.registry import champion_decision


def test_first_version_moves_when_it_reaches_the_gate():
    move, reason = champion_decision(0.7, None, 0.5)
    assert move and "no champion" in reason


def test_below_gate_never_moves():
    move, reason = champion_decision(0.4, None, 0.5)
    assert not move and "below the gate" in reason


def test_worse_than_champion_does_not_move():
    move, reason = champion_decision(0.69, 0.70, 0.5)
    assert not move and "champion's 0.7000" in reason


def test_equal_to_champion_moves():
    assert champion_decision(0.70, 0.70, 0.5)[0]


def test_nan_never_moves():
    assert not champion_decision(math.nan, None, 0.0)[0]
