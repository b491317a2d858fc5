import numpy as np
import pytest

from models.calibration import apply_temperature, fit_temperature


def test_temperature_one_is_plain_softmax():
    margins = np.array([[1.0, 0.0, -1.0]])
    p = apply_temperature(margins, 1.0)
    expected = np.exp(margins) / np.exp(margins).sum()
    np.testing.assert_allclose(p, expected)


def test_overconfident_margins_get_a_temperature_above_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    # the right class gets a margin lead of 1 only 60 % of the time, but margins are scaled by 5
    lead = np.where(rng.random(2000) < 0.6, y, rng.integers(0, 3, 2000))
    margins = np.zeros((2000, 3))
    margins[np.arange(2000), lead] = 5.0
    t = fit_temperature(margins, y)
    assert t > 2.0
    p = apply_temperature(margins, t)
    assert p.max(axis=1).mean() == pytest.approx(0.6 + 0.4 / 3, abs=0.05)
